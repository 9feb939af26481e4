package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"obmd/bmc"
	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// The "ipmi" driver: one node's power, boot device and serial console over
// IPMI v2.0 / RMCP+, through package bmc (power and boot commands) and
// package sol (the Serial-over-LAN console).
//
// Sessions are costly to open (Get Channel Authentication Capabilities,
// Open Session, RAKP 1-4, Set Session Privilege Level: about eight round
// trips and two HMAC key derivations), so the driver keeps them warm in a
// small per-node pool, which owns their whole life (sessionpool.go): when
// to dial, reuse, retry on a fresh session, and close. What a handshake
// learned about the BMC (the cipher suite that works, its quirks) is kept
// in the node's rmcpplus.Profile, so the next session starts from it and
// the operator sees it (Status).
//
// The console runs on a session of its own: an active SOL payload ties up
// its session (IPMI v2.0 section 24.1), and power operations must keep
// working while someone watches the console.

// IPMIDriverConfig tunes the ipmi driver. Zero values take the defaults
// noted.
type IPMIDriverConfig struct {
	// IdleTimeout closes a warm session nobody used for this long
	// (default 60 s). Until then the rmcpplus keepalive holds it open.
	IdleTimeout time.Duration
	// SoftOffGrace is how long a soft power cycle waits for the operating
	// system to turn the node off before forcing it off (default 30 s). The
	// wait also ends early enough to leave the forced off and the power on
	// room within the operation's deadline.
	SoftOffGrace time.Duration
	// PowerPollInterval paces power-state polling while waiting for a node
	// to turn off (default 250 ms).
	PowerPollInterval time.Duration
	// AttemptTimeout and Retries drive RMCP+ retransmission (package
	// rmcpplus: default 1 s and 3; Retries < 0 means none). A request the
	// BMC never answers fails after AttemptTimeout x (Retries+1).
	AttemptTimeout time.Duration
	Retries        int
	// ReuseTimeout bounds a request on a reused session before the session
	// is presumed forgotten by the BMC and the request is retried on a new
	// one (default 2 x AttemptTimeout; never more than half the time left
	// to the operation).
	ReuseTimeout time.Duration
	// SOL configures the console; the driver fills in Logger and the
	// fields the node's quirks control (MaxData, IgnorePayloadPort). A
	// zero KeepaliveInterval or KeepaliveTimeout takes the driver's
	// defaults below, not package sol's.
	SOL sol.ConsoleOptions
}

// IPMI driver defaults.
const (
	DefaultIPMIIdleTimeout       = 60 * time.Second
	DefaultIPMISoftOffGrace      = 30 * time.Second
	DefaultIPMIPowerPollInterval = 250 * time.Millisecond
	// maxIdleSessions: one for power operations and one a console gives
	// back when it closes; more would only sit idle on the BMC, whose
	// session table is small (often 4 to 8 slots).
	maxIdleSessions = 2
	// The SOL keepalive (Get Payload Activation Status, IPMI v2.0 section
	// 24.4) is how an open console notices that its BMC is gone: while the
	// host prints, only the BMC sends SOL data, and the console's
	// acknowledgements are never retransmitted, so nothing else times out.
	// A BMC that reboots forgets the session without a word and, once
	// back, ignores its packets (section 13.6). The console must notice
	// and reopen within 5 s of the BMC answering again however short the
	// reboot, so interval + timeout stays well under that (3 s); the
	// remaining time covers the hub's first reopen. One request a second
	// per open console costs the BMC next to nothing; ipmitool's 15 s
	// (package sol's default) would leave a rebooted BMC's console dark
	// for up to 25 s. The timeout leaves the session's retransmissions
	// (at 0, 0.4 and 1.2 s with the default 1 s attempt timeout) their
	// chance on a lossy network.
	DefaultIPMISOLKeepaliveInterval = time.Second
	DefaultIPMISOLKeepaliveTimeout  = 2 * time.Second
)

func (c IPMIDriverConfig) withDefaults() IPMIDriverConfig {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIPMIIdleTimeout
	}
	if c.SoftOffGrace <= 0 {
		c.SoftOffGrace = DefaultIPMISoftOffGrace
	}
	if c.PowerPollInterval <= 0 {
		c.PowerPollInterval = DefaultIPMIPowerPollInterval
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = rmcpplus.DefaultTimeout
	}
	if c.ReuseTimeout <= 0 {
		c.ReuseTimeout = 2 * c.AttemptTimeout
	}
	if c.SOL.KeepaliveInterval <= 0 {
		c.SOL.KeepaliveInterval = DefaultIPMISOLKeepaliveInterval
	}
	if c.SOL.KeepaliveTimeout <= 0 {
		c.SOL.KeepaliveTimeout = DefaultIPMISOLKeepaliveTimeout
	}
	return c
}

// requestBudget is how long one request to a silent BMC takes to fail.
func (c IPMIDriverConfig) requestBudget() time.Duration {
	attempts := rmcpplus.DefaultRetries + 1
	switch {
	case c.Retries < 0:
		attempts = 1
	case c.Retries > 0:
		attempts = c.Retries + 1
	}
	return c.AttemptTimeout * time.Duration(attempts)
}

// IPMIDriverType is the "ipmi" driver type with cfg, for a daemon that
// tunes the driver: register it in its own Registry in place of the one
// BuiltinDrivers holds (which uses the zero config).
func IPMIDriverType(cfg IPMIDriverConfig) DriverType {
	return typedDriver("ipmi", ParseIPMIInfo, func(info IPMIInfo, env DriverEnv) (Driver, error) {
		return NewIPMIDriver(info, env, cfg)
	})
}

// NewIPMIDriver builds the driver of one IPMI node. It does no network
// I/O: the first operation opens the session. Quirks bmc does not know are
// an ErrInvalid.
func NewIPMIDriver(info IPMIInfo, env DriverEnv, cfg IPMIDriverConfig) (Driver, error) {
	return newIPMIDriver(info, env, cfg)
}

func newIPMIDriver(info IPMIInfo, env DriverEnv, cfg IPMIDriverConfig) (*ipmiDriver, error) {
	quirks, err := bmc.ParseQuirks(info.Quirks)
	if err != nil {
		return nil, Invalidf("invalid ipmi info: %v", err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("driver", "ipmi")
	d := &ipmiDriver{
		info:     info,
		cfg:      cfg.withDefaults(),
		quirks:   quirks,
		bmcLog:   log, // bmc and rmcpplus add the "bmc" attribute themselves
		log:      log.With("bmc", info.Addr),
		profile:  rmcpplus.NewProfile(),
		dialBMC:  bmc.Dial,
		counters: env.Counters,
		consoles: make(map[*ipmiConsole]struct{}),
	}
	d.pool = &sessionPool{
		dial:         d.dial,
		idleTimeout:  d.cfg.IdleTimeout,
		reuseTimeout: d.cfg.ReuseTimeout,
		maxIdle:      maxIdleSessions,
		log:          d.log,
	}
	return d, nil
}

// ipmiDriver is the Driver of one IPMI node.
type ipmiDriver struct {
	info   IPMIInfo // holds the password: never log it, log info (its LogValue) instead
	cfg    IPMIDriverConfig
	quirks bmc.Quirks
	log    *slog.Logger
	bmcLog *slog.Logger
	pool   *sessionPool
	// profile is what the node's sessions learned about its BMC.
	profile *rmcpplus.Profile
	// dialBMC opens a session; bmc.Dial except in tests, which count
	// handshakes through it.
	dialBMC func(ctx context.Context, cfg bmc.Config) (*bmc.Client, error)

	counters *DriverCounters

	mu       sync.Mutex
	consoles map[*ipmiConsole]struct{} // open consoles
	closed   bool
	// What the node's consoles learned (ipmiconsole.go): detected quirks
	// by name, and the SOL activation auxiliary data the BMC accepted.
	learned map[string]QuirkStatus
	solAux  *[4]byte
}

func (d *ipmiDriver) bmcConfig() bmc.Config {
	return bmc.Config{
		Addr:        d.info.Addr,
		Username:    d.info.User,
		Password:    []byte(d.info.Pass),
		Kg:          d.info.Kg,
		CipherSuite: d.info.CipherSuite,
		Privilege:   d.info.Privilege,
		Timeout:     d.cfg.AttemptTimeout,
		Retries:     d.cfg.Retries,
		Quirks:      d.info.Quirks,
		Profile:     d.profile,
		Logger:      d.bmcLog,
	}
}

func (d *ipmiDriver) dial(ctx context.Context) (*bmc.Client, error) {
	c, err := d.dialBMC(ctx, d.bmcConfig())
	d.counters.CountDial(dialResult(err))
	if err != nil {
		return nil, err
	}
	if s := c.Session(); s != nil {
		n := s.Negotiation()
		d.log.Debug("BMC session opened", "suite", n.Suite, "privilege", n.Privilege, "handshakes", n.Handshakes)
		for _, q := range n.Detected {
			d.log.Info("BMC deviation detected and worked around", "quirk", q.Name, "evidence", q.Evidence)
		}
	}
	return c, nil
}

// dialResult sorts a dial's error for the metrics.
func dialResult(err error) DialResult {
	var te interface{ Timeout() bool }
	switch {
	case err == nil:
		return DialOK
	case errors.Is(err, context.Canceled):
		return DialCanceled
	case errors.Is(err, bmc.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return DialTimeout
	case errors.Is(err, bmc.ErrWrongPassword), errors.Is(err, bmc.ErrUnknownUser):
		return DialAuth
	}
	return DialError
}

// classify gives an error from bmc, sol or rmcpplus its manager kind: no
// answer is ErrTimeout (504), anything else from the BMC is ErrBMC (502).
// The texts come from those packages, which never include a password.
func (d *ipmiDriver) classify(op string, err error) error {
	var te interface{ Timeout() bool }
	var opErr *bmc.OpError
	switch {
	case err == nil, hasKind(err), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, bmc.ErrTimeout):
		return TimeoutError(op, err)
	case errors.Is(err, context.DeadlineExceeded):
		return TimeoutError(fmt.Sprintf("%s: BMC %s did not answer within the operation's time limit", op, d.info.Addr), nil)
	case errors.As(err, &te) && te.Timeout():
		return TimeoutError(op, err)
	case errors.Is(err, bmc.ErrClosed), errors.Is(err, errPoolClosed):
		return &Error{Kind: ErrInternal, Reason: op + ": the node's driver is closed", Err: err}
	case errors.Is(err, bmc.ErrWrongPassword), errors.Is(err, bmc.ErrUnknownUser):
		return CredentialsError(fmt.Sprintf("%s (BMC %s)", op, d.info.Addr), err)
	case errors.As(err, &opErr):
		return &Error{Kind: ErrBMC, Err: err} // names the BMC and the operation
	}
	return BMCError(fmt.Sprintf("%s (BMC %s)", op, d.info.Addr), err)
}

// PowerOn turns the node on (Chassis Control power up).
func (d *ipmiDriver) PowerOn(ctx context.Context) error {
	return d.call(ctx, "power on", func(ctx context.Context, c *bmc.Client) error { return c.PowerOn(ctx) })
}

// PowerOff cuts the node's power at once (Chassis Control power down).
func (d *ipmiDriver) PowerOff(ctx context.Context) error {
	return d.call(ctx, "power off", func(ctx context.Context, c *bmc.Client) error { return c.PowerOff(ctx) })
}

// PowerStatus is "on" or "off" (Get Chassis Status).
func (d *ipmiDriver) PowerStatus(ctx context.Context) (string, error) {
	on, err := d.powerIsOn(ctx)
	if err != nil {
		return "", err
	}
	if on {
		return "on", nil
	}
	return "off", nil
}

func (d *ipmiDriver) powerIsOn(ctx context.Context) (bool, error) {
	on, c, err := withSession(ctx, d, "power status", func(ctx context.Context, c *bmc.Client) (bool, error) {
		return c.PowerStatus(ctx)
	})
	d.release(c, err)
	return on, err
}

// PowerCycle with force is a hard reset (bmc.Reset powers on a node that
// is off). Without force it is an ACPI soft off, a wait until the node is
// off (forced off after SoftOffGrace), and a power on; a node that is off
// is just powered on.
func (d *ipmiDriver) PowerCycle(ctx context.Context, force bool) error {
	if force {
		return d.call(ctx, "forced power cycle", func(ctx context.Context, c *bmc.Client) error { return c.Reset(ctx) })
	}
	on, err := d.powerIsOn(ctx)
	if err != nil {
		return err
	}
	if !on {
		d.log.Debug("node is off; powering it on instead of cycling it")
		return d.PowerOn(ctx)
	}
	if err := d.call(ctx, "soft power off", func(ctx context.Context, c *bmc.Client) error { return c.SoftOff(ctx) }); err != nil {
		return err
	}
	asked := time.Now()
	return d.powerSteps().finishSoftCycle(ctx, asked, d.graceEnd(ctx))
}

// graceEnd is when a soft power cycle stops waiting for the OS, keeping at
// most two unanswered requests' worth for the forced off and power on.
func (d *ipmiDriver) graceEnd(ctx context.Context) time.Time {
	return graceEnd(ctx, d.cfg.SoftOffGrace, 2*d.cfg.requestBudget())
}

// powerSteps are the driver's steps for the end of a soft power cycle.
func (d *ipmiDriver) powerSteps() powerSteps {
	return powerSteps{isOn: d.powerIsOn, forceOff: d.PowerOff, powerOn: d.PowerOn,
		classify: d.classify, poll: d.cfg.PowerPollInterval, log: d.log}
}

// bootDevices maps the API's boot device names to boot flag selectors
// (IPMI v2.0 section 28.13, Table 28-14).
var bootDevices = map[string]ipmi.BootDevice{
	"pxe":  ipmi.BootDevicePXE,
	"disk": ipmi.BootDeviceDisk,
	"none": ipmi.BootDeviceNone, // no override: the BIOS boot order
}

// parseBootDevice turns an API boot device name into its selector.
func parseBootDevice(name string) (ipmi.BootDevice, error) {
	dev, ok := bootDevices[name]
	if !ok {
		return 0, Invalidf("unknown boot device %q (want \"pxe\", \"disk\" or \"none\")", name)
	}
	return dev, nil
}

// SetBootDevice writes the persistent boot device (Set System Boot Options
// parameter 5, valid and persistent bits set; "none" clears the override).
func (d *ipmiDriver) SetBootDevice(ctx context.Context, name string) error {
	dev, err := parseBootDevice(name)
	if err != nil {
		return err
	}
	return d.call(ctx, "set boot device "+name, func(ctx context.Context, c *bmc.Client) error {
		return c.SetBootDevice(ctx, dev, true)
	})
}

// Close closes any console still open and every pooled session (Close
// Session, best effort), and waits for that.
func (d *ipmiDriver) Close() error {
	d.mu.Lock()
	d.closed = true
	open := make([]*ipmiConsole, 0, len(d.consoles))
	for ic := range d.consoles {
		open = append(open, ic)
	}
	d.mu.Unlock()
	for _, ic := range open {
		ic.Close()
	}
	d.pool.close()
	return nil
}
