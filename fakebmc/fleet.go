package fakebmc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// FleetConfig configures a Fleet of simulated BMCs on consecutive UDP ports.
type FleetConfig struct {
	// Addr is host:port of the first BMC; BMC i listens on port+i. Port 0
	// picks a free run of Count ports (what tests want).
	Addr  string
	Count int // zero means 1
	// BMC is the configuration of every BMC. Each BMC i gets
	// BMC.Faults.Seed+i as its fault seed, so BMCs fail differently but
	// reproducibly.
	BMC BMCConfig
	// Misbehave makes some BMCs misbehave: each BMC it chooses gets its
	// plan as BMCConfig.Behaviour (before Configure runs).
	Misbehave FaultSpread
	// Configure, if set, adjusts BMC i's copy of the configuration (a quirk
	// or a fault plan for one BMC).
	Configure func(i int, c *BMCConfig)
	Logger    *slog.Logger // nil: discard
}

// Fleet is a set of simulated BMCs served from one process, each with its
// own machine, boot flags, sessions and console. An idle BMC costs a socket
// and one goroutine blocked reading it (about 9 KiB: 10,000 idle BMCs take
// under 100 MiB); its console runs nothing while unattached. An active SOL
// session adds a session watcher, the host's reader and, in counter mode,
// its writer, all woken by one ticker shared by the fleet (consoleHub).
type Fleet struct {
	bmcs []*BMC
	hub  *consoleHub
	// redfishCertPEM is the certificate every BMC's Redfish service
	// presents (nil without Redfish).
	redfishCertPEM []byte
}

// PortInUseError says a BMC's port is taken.
type PortInUseError struct {
	Addr string
	// Proto is "UDP" (IPMI) or "TCP" (Redfish); empty means UDP.
	Proto string
	Err   error
}

func (e *PortInUseError) Error() string {
	proto := e.Proto
	if proto == "" {
		proto = "UDP"
	}
	return fmt.Sprintf("%s port %s is already in use (another fakebmc or BMC simulator?): stop it or choose another -addr", proto, e.Addr)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// StartFleet binds every BMC's socket, then starts serving; it fails, with
// nothing left running, if any socket cannot be bound (a *PortInUseError
// for a port in use). ctx bounds the start only; Close stops the fleet.
func StartFleet(ctx context.Context, cfg FleetConfig) (*Fleet, error) {
	if cfg.Count <= 0 {
		cfg.Count = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := cfg.Misbehave.Validate(cfg.Count); err != nil {
		return nil, fmt.Errorf("fakebmc: %w", err)
	}
	misbehaviour := cfg.Misbehave.Assign(cfg.Count)
	configs := make([]BMCConfig, cfg.Count)
	for i := range configs {
		c := cfg.BMC
		c.Users = append([]User(nil), cfg.BMC.Users...)
		c.Faults.Seed += int64(i)
		if k := misbehaviour[i]; k >= 0 {
			c.Behaviour = cfg.Misbehave.Plans[k]
		}
		if cfg.Configure != nil {
			cfg.Configure(i, &c)
		}
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("fakebmc: BMC %d: %w", i, err)
		}
		configs[i] = c
	}
	withTCP := slices.ContainsFunc(configs, func(c BMCConfig) bool { return c.Redfish != nil })
	ports, err := bindConsecutive(ctx, cfg.Addr, cfg.Count, withTCP)
	if err != nil {
		return nil, err
	}
	f := &Fleet{hub: newConsoleHub()}
	var cert tls.Certificate
	if withTCP {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		if cert, f.redfishCertPEM, err = newRedfishCertificate(host); err != nil {
			for _, p := range ports {
				p.close()
			}
			return nil, err
		}
	}
	for i, p := range ports {
		addr := p.udp.LocalAddr().(*net.UDPAddr)
		blog := log.With("bmc", i, "addr", addr.String())
		b := newBMC(i, configs[i], addr, f.hub, blog)
		if rc := configs[i].Redfish; rc != nil {
			b.redfish = newRedfishServer(b, *rc, p.tcp, cert, blog)
			b.redfish.serve()
		} else if p.tcp != nil {
			p.tcp.Close()
		}
		b.serve(NewFaultyConn(p.udp, configs[i].Faults))
		f.bmcs = append(f.bmcs, b)
	}
	if err := f.leaveStaleSOLs(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// leaveStaleSOLs leaves a stale SOL (BehaviourPlan.StaleSOL) on every BMC
// whose plan asks for one, a few BMCs at a time: each is a login with its
// key exchange, run on the BMC's own goroutines.
func (f *Fleet) leaveStaleSOLs(ctx context.Context) error {
	const parallel = 8
	sem := make(chan struct{}, parallel)
	errs := make([]error, len(f.bmcs))
	var wg sync.WaitGroup
	for i, b := range f.bmcs {
		if !b.cfg.Behaviour.StaleSOL {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fmt.Errorf("fakebmc: leaving stale SOL payloads: %w", ctx.Err())
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.LeaveStaleSOL(); err != nil {
				errs[i] = fmt.Errorf("BMC %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// boundPort is one BMC's sockets: UDP for IPMI and, with Redfish, a TCP
// listener on the same port number.
type boundPort struct {
	udp net.PacketConn
	tcp net.Listener // nil without Redfish
}

func (p boundPort) close() {
	p.udp.Close()
	if p.tcp != nil {
		p.tcp.Close()
	}
}

// bindConsecutive binds count UDP sockets on consecutive ports, and with
// withTCP a TCP listener on each of the same ports. With port 0 it asks
// the kernel for a free first port and retries elsewhere if a later one
// is taken.
func bindConsecutive(ctx context.Context, addr string, count int, withTCP bool) ([]boundPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("fakebmc: address %q is not host:port: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("fakebmc: port %q in address %q is not a number from 0 to 65535", portStr, addr)
	}
	if port+count-1 > 65535 {
		return nil, fmt.Errorf("fakebmc: %d BMCs from port %d would need ports above 65535", count, port)
	}
	var lc net.ListenConfig
	if port != 0 {
		return bindRun(ctx, &lc, host, port, count, withTCP)
	}
	var lastErr error
	for range 20 {
		first, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("fakebmc: bind %s: %w", net.JoinHostPort(host, "0"), err)
		}
		base := first.LocalAddr().(*net.UDPAddr).Port
		if base+count-1 > 65535 {
			first.Close()
			continue
		}
		fp := boundPort{udp: first}
		if withTCP {
			if fp.tcp, err = lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(base))); err != nil {
				first.Close()
				lastErr = err
				continue
			}
		}
		rest, err := bindRun(ctx, &lc, host, base+1, count-1, withTCP)
		if err == nil {
			return append([]boundPort{fp}, rest...), nil
		}
		fp.close()
		lastErr = err
	}
	return nil, fmt.Errorf("fakebmc: no run of %d free consecutive ports found: %w", count, lastErr)
}

func bindRun(ctx context.Context, lc *net.ListenConfig, host string, port, count int, withTCP bool) ([]boundPort, error) {
	ports := make([]boundPort, 0, count)
	fail := func(err error, proto, a string) ([]boundPort, error) {
		for _, p := range ports {
			p.close()
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &PortInUseError{Addr: a, Proto: proto, Err: err}
		}
		return nil, fmt.Errorf("fakebmc: bind %s %s: %w", proto, a, err)
	}
	for i := range count {
		a := net.JoinHostPort(host, strconv.Itoa(port+i))
		c, err := lc.ListenPacket(ctx, "udp", a)
		if err != nil {
			return fail(err, "UDP", a)
		}
		p := boundPort{udp: c}
		if withTCP {
			if p.tcp, err = lc.Listen(ctx, "tcp", a); err != nil {
				c.Close()
				return fail(err, "TCP", a)
			}
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// Len is the number of BMCs.
func (f *Fleet) Len() int { return len(f.bmcs) }

// BMC returns BMC i (0-based).
func (f *Fleet) BMC(i int) *BMC { return f.bmcs[i] }

// Addr is BMC i's UDP address as host:port.
func (f *Fleet) Addr(i int) string { return f.bmcs[i].addr.String() }

// Close stops every BMC and waits for them.
func (f *Fleet) Close() error {
	for _, b := range f.bmcs {
		b.close()
	}
	f.hub.close()
	return nil
}
