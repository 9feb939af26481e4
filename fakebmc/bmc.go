package fakebmc

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
	"obmd/sol"
)

// User is an account on a simulated BMC.
type User struct {
	Name     string
	Password []byte // in clear: fakebmc is test infrastructure; never logged
	// MaxPrivilege is the highest privilege the user may hold; zero means
	// administrator.
	MaxPrivilege ipmi.PrivilegeLevel
}

// ConsoleMode selects what the simulated host writes to its serial port.
type ConsoleMode string

// Console modes.
const (
	// ConsoleCounter prints decimal lines "0\n1\n2\n..." at the baud rate,
	// so a lost, duplicated or reordered byte is detectable.
	ConsoleCounter ConsoleMode = "counter"
	// ConsoleEcho sends every byte typed into SOL back as console output.
	ConsoleEcho ConsoleMode = "echo"
)

// Console speeds for BMCConfig.Baud.
const (
	DefaultBaud = 115200
	// UnlimitedBaud makes the counter console write as fast as the SOL
	// session takes the bytes.
	UnlimitedBaud = -1
)

// BMCConfig configures one simulated BMC. Zero fields take the defaults
// noted.
type BMCConfig struct {
	Users        []User  // at least one
	Kg           []byte  // BMC key; empty means the user's password
	CipherSuites []uint8 // offered; nil means rmcpplus's default (17, 3, 2, 1)
	AllowSuite0  bool
	MaxSessions  int           // zero: rmcpplus's default
	IdleTimeout  time.Duration // zero: rmcpplus's default
	Console      ConsoleMode   // zero: ConsoleCounter
	// Baud is the serial speed in bits per second (10 bits per character,
	// 8N1); zero means DefaultBaud, UnlimitedBaud as fast as SOL takes it.
	Baud   int
	Faults FaultPlan // applied to every datagram of this BMC
	// Behaviour is how the BMC itself misbehaves (reboots, a stale SOL,
	// a full session table, ...); zero: it behaves.
	Behaviour BehaviourPlan
	// Quirks are the documented protocol deviations of real BMCs this one
	// reproduces (see Quirk); nil: none.
	Quirks  Quirks
	Timing  PowerTiming // zero fields: DefaultPowerTiming
	StartOn bool        // initial power state of the standard SimMachine
	// Machine replaces the standard SimMachine (Timing and StartOn are
	// then unused).
	Machine Machine
	// GUID is the system GUID sent in RAKP 2; zero means one derived from
	// the BMC's number in its fleet.
	GUID [16]byte
	// SOLRetryUnit is the unit of the SOL retry interval (SOL configuration
	// parameter 4); zero means the spec's 10 ms. Tests that push megabytes
	// through a lossy link use 1 ms so that each loss costs a millisecond.
	SOLRetryUnit time.Duration
	// Redfish, if set, makes the BMC also serve Redfish over HTTPS on TCP
	// at its port number (see redfish.go); nil: IPMI only.
	Redfish *RedfishConfig
	// SOLAcceptMax, if positive, makes the BMC accept at most this many
	// characters of each SOL packet from the console, answering a partial
	// accept for the rest (IPMI v2.0 section 15.9, "accepted character
	// count"), as BMCs with a small serial buffer do; the console must
	// resend the rest under a new sequence number.
	SOLAcceptMax int
	// HostInputMax bounds the host's record of typed bytes (HostInput);
	// zero means 64 KiB. Tests that type megabytes raise it to check every
	// byte.
	HostInputMax int
	// SOLStealEvery is the period of the sol-steal quirk (zero:
	// DefaultSOLStealEvery).
	SOLStealEvery time.Duration
	// dropSOLToConsole, if set, loses the SOL packets to the console it
	// returns true for, as a lossy network would: tests use it to lose
	// one chosen ACK (sol-strict-seq shows only then).
	dropSOLToConsole func(sol.Packet) bool
}

// validate reports every problem with c at once.
func (c *BMCConfig) validate() error {
	var errs []error
	if len(c.Users) == 0 {
		errs = append(errs, errors.New("no user configured"))
	}
	for _, u := range c.Users {
		if u.Name == "" || len(u.Name) > 16 {
			errs = append(errs, errors.New("user name must be 1 to 16 characters (IPMI v2.0 section 13.20)"))
		}
		if len(u.Password) > 20 {
			errs = append(errs, errors.New("password longer than 20 bytes (IPMI v2.0 section 13.31)"))
		}
	}
	switch c.Console {
	case "", ConsoleCounter, ConsoleEcho:
	default:
		errs = append(errs, errors.New("console mode "+string(c.Console)+" is not counter or echo"))
	}
	if c.SOLRetryUnit < 0 {
		errs = append(errs, errors.New("SOL retry unit is negative"))
	}
	if c.SOLAcceptMax < 0 || c.SOLAcceptMax > 255 {
		errs = append(errs, errors.New("SOL accept limit must be 0 (none) to 255 characters"))
	}
	if c.HostInputMax < 0 {
		errs = append(errs, errors.New("host input record size is negative"))
	}
	if c.SOLStealEvery < 0 {
		errs = append(errs, errors.New("SOL steal period is negative"))
	}
	if c.Baud < UnlimitedBaud {
		errs = append(errs, errors.New("baud rate is negative"))
	}
	if err := c.Faults.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Behaviour.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// BMC is one simulated BMC: an RMCP+ server on its own UDP socket, the
// command table's handlers, a Machine and a serial console.
type BMC struct {
	addr    *net.UDPAddr
	cfg     BMCConfig
	machine Machine
	sim     *SimMachine // the standard machine, nil if cfg.Machine was given
	server  *rmcpplus.Server
	conn    net.PacketConn
	gate    *gateConn // the BMC's own misbehaviour, between conn and server
	log     *slog.Logger
	console *console
	served  chan struct{} // closed when Serve returns

	mu        sync.Mutex
	boot      bootOptions
	sol       solConfig
	active    *solPayload   // the active SOL payload instance, nil if none
	solChange chan struct{} // closed and replaced when SOL (de)activates

	redfish *redfishServer // nil without BMCConfig.Redfish

	rebootTimer *time.Timer // periodic reboots (BehaviourPlan.RebootEvery)
	stopped     bool        // close has begun: no more reboots

	// Quirks at run time (quirks_sol.go).
	bogusSOL  net.PacketConn // the port solport-bogus names; never read
	quirkStop chan struct{}  // closed by close
	stealing  uint32         // while StealSOL runs, the victim's session ID (mu)
}

// newBMC assembles a BMC; it does not serve yet.
func newBMC(index int, cfg BMCConfig, addr *net.UDPAddr, hub *consoleHub, log *slog.Logger) *BMC {
	if cfg.Console == "" {
		cfg.Console = ConsoleCounter
	}
	if cfg.Baud == 0 {
		cfg.Baud = DefaultBaud
	}
	if cfg.GUID == ([16]byte{}) {
		cfg.GUID = derivedGUID(index)
	}
	b := &BMC{
		addr:      addr,
		cfg:       cfg,
		machine:   cfg.Machine,
		log:       log,
		served:    make(chan struct{}),
		sol:       defaultSOLConfig(cfg.Baud),
		solChange: make(chan struct{}),
		gate:      newGateConn(nil), // its socket comes with serve
	}
	if b.machine == nil {
		b.sim = NewSimMachine(cfg.Timing, cfg.StartOn)
		b.machine = b.sim
	}
	b.console = newConsole(hub, cfg.Console, cfg.Baud)
	if cfg.HostInputMax > 0 {
		b.console.inputMax = cfg.HostInputMax
	}
	b.server = rmcpplus.NewServer(rmcpplus.ServerConfig{
		GUID:         cfg.GUID,
		Users:        b.lookupUser,
		Kg:           cfg.Kg,
		CipherSuites: cfg.CipherSuites,
		AllowSuite0:  cfg.AllowSuite0,
		MaxSessions:  cfg.MaxSessions,
		IdleTimeout:  cfg.IdleTimeout,
		Handler:      serverHandler{b},
		Logger:       log,
		Quirks:       cfg.Quirks.serverQuirks(),
	})
	return b
}

// derivedGUID makes a stable, distinct GUID per BMC number: a fixed
// random-looking prefix and the number.
func derivedGUID(index int) [16]byte {
	g := [16]byte{0xfa, 0x4e, 0xb3, 0xc0, 0x6d, 0x1a, 0x4b, 0x8e, 0x9a, 0x11, 0x0b, 0x3d}
	binary.BigEndian.PutUint32(g[12:], uint32(index))
	return g
}

func (b *BMC) lookupUser(name string) ([]byte, ipmi.PrivilegeLevel, bool) {
	for _, u := range b.cfg.Users {
		if u.Name == name {
			p := u.MaxPrivilege
			if p == 0 {
				p = ipmi.PrivilegeAdministrator
			}
			return u.Password, p, true
		}
	}
	return nil, 0, false
}

// serve runs the RMCP+ server on conn, through the misbehaviour gate,
// until it is closed, and puts the configured behaviour into effect.
func (b *BMC) serve(conn net.PacketConn) {
	b.conn = conn
	b.gate.conn = conn
	b.startBehaviour()
	b.startQuirks()
	go func() {
		defer close(b.served)
		err := b.server.Serve(b.gate)
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, rmcpplus.ErrServerClosed) {
			b.log.Warn("BMC stopped serving", "err", err)
		}
	}()
}

// close stops the BMC: SOL ends, sessions are dropped, the socket closes.
func (b *BMC) close() {
	b.stopBehaviour()
	b.stopQuirks()
	b.mu.Lock()
	p := b.active
	b.mu.Unlock()
	if p != nil {
		b.deactivate(p, "BMC shut down")
	}
	if b.redfish != nil {
		b.redfish.close()
	}
	_ = b.server.Close()
	if b.conn != nil {
		_ = b.gate.Close() // and conn
		<-b.served
	}
}

// serverHandler adapts the command table to rmcpplus.Handler.
type serverHandler struct{ b *BMC }

func (h serverHandler) ServeIPMI(s *rmcpplus.ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte) {
	cc, data := h.b.dispatch(s, req)
	if cc != ipmi.CCOK {
		h.b.log.Debug("command failed", "command", ipmi.CommandName(req.NetFn, req.Cmd), "code", cc.String(), "session", s.ID())
	}
	return cc, data
}

// Addr is the BMC's UDP address.
func (b *BMC) Addr() *net.UDPAddr { return b.addr }

// Machine is the machine behind the BMC.
func (b *BMC) Machine() Machine { return b.machine }

// Sim is the standard simulated machine, or nil when BMCConfig.Machine
// replaced it.
func (b *BMC) Sim() *SimMachine { return b.sim }

// PowerOn reports whether the machine is on.
func (b *BMC) PowerOn() bool { return b.machine.PowerOn() }

// BootFlags decodes System Boot Options parameter 5 as stored.
func (b *BMC) BootFlags() ipmi.BootFlags {
	raw := b.machine.BootFlags()
	var f ipmi.BootFlags
	_ = f.Unmarshal(raw[:]) // 5 bytes always decode
	return f
}

// BootDevice is the boot device override in the boot flags (whether or not
// its valid bit is set; see BootFlags).
func (b *BMC) BootDevice() ipmi.BootDevice { return b.BootFlags().Device }

// SOLActive reports whether the SOL payload is active.
func (b *BMC) SOLActive() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active != nil
}

// WaitSOL waits until the SOL payload's activation state is active, or ctx
// ends.
func (b *BMC) WaitSOL(ctx context.Context, active bool) error {
	for {
		b.mu.Lock()
		done := (b.active != nil) == active
		ch := b.solChange
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			state := "inactive"
			if active {
				state = "active"
			}
			return errors.New("fakebmc: SOL did not become " + state + ": " + ctx.Err().Error())
		}
	}
}

// HostInput returns the most recent bytes typed into the console (up to
// BMCConfig.HostInputMax, 64 KiB by default), in the order the simulated
// host received them.
func (b *BMC) HostInput() []byte { return b.console.hostInput() }

// OpenSessionRequests is the number of RMCP+ Open Session Requests the
// BMC's session layer received: one per handshake a client started.
func (b *BMC) OpenSessionRequests() uint64 { return b.server.OpenSessionRequests() }

// HostInputTotal is how many bytes were ever typed into the console.
func (b *BMC) HostInputTotal() int64 { return b.console.inputTotal() }

// WaitHostInput waits until at least n bytes were ever typed into the
// console, or ctx ends.
func (b *BMC) WaitHostInput(ctx context.Context, n int64) error {
	return b.console.waitInput(ctx, func() bool { return b.console.inputTotal() >= n })
}

// Breaks is how many serial breaks the console sent (SOL "generate
// break", IPMI v2.0 section 15.9, Table 15-2).
func (b *BMC) Breaks() int { return b.console.breakCount() }

// WaitBreaks waits until at least n breaks arrived, or ctx ends.
func (b *BMC) WaitBreaks(ctx context.Context, n int) error {
	return b.console.waitInput(ctx, func() bool { return b.console.breakCount() >= n })
}

// DropAllSessions ends every session, as a BMC reboot would.
func (b *BMC) DropAllSessions() { b.server.DropAllSessions() }
