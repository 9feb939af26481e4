package sol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// PayloadConn carries SOL payloads on a session. *rmcpplus.PayloadConn
// implements it; tests use fakes.
type PayloadConn interface {
	// Send transmits one payload. It must not keep payload after it
	// returns: the Console reuses the buffer.
	Send(payload []byte) error
	// Recv yields inbound payloads; it is closed when the connection or
	// its session ends.
	Recv() <-chan []byte
	Close() error
}

// ClientSession is what a Console needs from an established RMCP+ session.
// *rmcpplus.Session satisfies ClientSession[*rmcpplus.PayloadConn]; Open
// infers C, so callers write sol.Open(ctx, sess, opts).
//
// Optional methods, checked at Open (*rmcpplus.Session has them all but
// CipherSuite):
//
//   - `CipherSuite() rmcpplus.CipherSuite`: Activate Payload asks for
//     encryption and authentication exactly when the suite has them;
//     without it the Console asks for both, as ipmitool does (a BMC
//     applies them only if the session can).
//   - `Err() error`: the Console reports that error when the session ends.
//   - `OpenPayloadFunc(pt rmcpplus.PayloadType, port int, handler func([]byte)) (C, error)`:
//     the Console opens the payload with it and handles each SOL packet on
//     the session's reading goroutine (engine step, ACK sent, characters
//     buffered for Read) instead of receiving it from Recv on a goroutine
//     of its own: no goroutine hand-off per packet.
//   - `RemotePort() int`: the session's BMC port, for the rules on the
//     port Activate Payload names (see solPort); and
//     `OpenPayloadEither(pt, port, handler) (C, error)`, a payload sent to
//     both the session's port and port until one answers (C then has
//     `Port() int`, 0 until it has).
//   - `BMCSessionID() uint32` and `ConsoleSessionID() uint32`: to tell our
//     activation from another session's in Get Payload Instance Info.
type ClientSession[C PayloadConn] interface {
	Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)
	OpenPayload(pt rmcpplus.PayloadType, port int) (C, error)
	Done() <-chan struct{}
}

// The real session and payload connection fit, the session with the
// direct path Open looks for; the Console and the BMC endpoint are byte
// streams.
var (
	_ ClientSession[*rmcpplus.PayloadConn] = (*rmcpplus.Session)(nil)
	_ interface {
		OpenPayloadFunc(pt rmcpplus.PayloadType, port int, handler func([]byte)) (*rmcpplus.PayloadConn, error)
	} = (*rmcpplus.Session)(nil)
	_ interface{ CipherSuite() rmcpplus.CipherSuite } = (*rmcpplus.Session)(nil)
	_ io.ReadWriteCloser                              = (*Console)(nil)
	_ io.ReadWriteCloser                              = (*BMCEndpoint)(nil)
)

// Console defaults, used for zero ConsoleOptions fields.
const (
	DefaultMaxTakeOverAttempts = 3
	DefaultKeepaliveInterval   = 15 * time.Second // ipmitool's SOL_KEEPALIVE_TIMEOUT
	DefaultKeepaliveTimeout    = 10 * time.Second
	DefaultConsoleBuffer       = 64 << 10
	deactivateTimeout          = 5 * time.Second
)

// ConsoleOptions configures Open. Zero values mean the defaults.
type ConsoleOptions struct {
	// Instance is the SOL payload instance (1..15); default 1, as ipmitool.
	Instance uint8
	// TakeOver: when Activate Payload answers 0x80 "payload already
	// active" (a client that died left it active), deactivate that
	// instance and try again, at most MaxTakeOverAttempts times. nil means
	// true.
	TakeOver            *bool
	MaxTakeOverAttempts int
	// RetryInterval and Retries drive SOL retransmission; after Retries
	// unanswered retransmissions of one packet the BMC counts as dead.
	RetryInterval time.Duration
	Retries       int
	// ReadBuffer bounds console output received and not yet Read; when it
	// is full the BMC is NACKed (it waits; nothing is lost).
	ReadBuffer int
	// MaxPending bounds bytes written and not yet acknowledged; Write
	// blocks beyond it.
	MaxPending int
	// KeepaliveInterval: every this long the Console sends Get Payload
	// Activation Status (IPMI v2.0 section 24.4), which keeps the session
	// alive on BMCs that time sessions out on IPMI traffic alone, proves
	// the BMC is there and that our payload is still active. ipmitool
	// likewise sends Get Device ID every 15 s whatever the SOL traffic.
	// KeepaliveTimeout bounds the wait for the answer. A dead BMC is
	// therefore noticed within KeepaliveInterval + KeepaliveTimeout, and
	// within RetryInterval*(Retries+1) when data is waiting to be
	// acknowledged.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// MaxData overrides the characters per packet to the BMC (0: from
	// the Activate Payload response, or SafePayloadSize's when that is
	// nonsense). The "solpayloadsize" named quirk sets it.
	MaxData int
	// IgnorePayloadPort sends SOL to the session's port whatever Activate
	// Payload says (the "solport" named quirk; FreeIPMI's workaround of
	// that name). Without it the Console follows the port rules of solPort
	// on its own.
	IgnorePayloadPort bool
	// Aux is Activate Payload auxiliary data to try first (a value the BMC
	// accepted before, from Activation.Aux); nil: ipmitool's, then the
	// alternatives (see activate).
	Aux *[4]byte
	// SkipStartupPacket: do not open with an empty data packet, and do not
	// probe with one at each keepalive. The Console normally sends one so
	// that a BMC remembering the sequence number of an earlier session
	// cannot drop our first keystrokes as a duplicate (ipmi_sim does), and
	// so that CTS and DCD/DSR are asserted at once; the probes notice a SOL
	// instance taken over silently. For a BMC that mishandles an empty data
	// packet.
	SkipStartupPacket bool
	// OnAdapt, if set, is told of each Adaptation the first time the
	// Console makes it. It may run with the Console's locks held: it must
	// not block or call the Console.
	OnAdapt func(Adaptation)
	Logger  *slog.Logger
}

func (o ConsoleOptions) withDefaults() ConsoleOptions {
	if o.Instance == 0 || o.Instance > 15 {
		o.Instance = 1
	}
	if o.TakeOver == nil {
		t := true
		o.TakeOver = &t
	}
	if o.MaxTakeOverAttempts <= 0 {
		o.MaxTakeOverAttempts = DefaultMaxTakeOverAttempts
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultConsoleBuffer
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultConsoleBuffer
	}
	if o.KeepaliveInterval <= 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Errors a Console's Read and Write return once it has stopped. They are
// wrapped with details; test with errors.Is.
var (
	ErrDeactivated      = errors.New("sol: SOL deactivated by the BMC")
	ErrPeerNotAnswering = errors.New("sol: BMC stopped acknowledging SOL data")
	ErrSessionLost      = errors.New("sol: IPMI session lost")
	// ErrSOLStolen: the session answers but SOL does not; the BMC gave the
	// instance to another session without telling us (BMC-QUIRKS.md "SOL
	// stolen silently").
	ErrSOLStolen = errors.New("sol: SOL stopped answering on a live session (taken over by another session)")
)

// Activation describes an activated SOL payload (IPMI v2.0 section 24.1,
// Table 24-3).
type Activation struct {
	Instance            uint8
	InboundPayloadSize  int // largest payload the BMC takes from us
	OutboundPayloadSize int // largest payload the BMC sends
	Port                int // UDP port for SOL, as reported
	TakeOvers           int // activations of other sessions deactivated first
	// EnableToggled: Deactivate Payload did not free the instance, and
	// SOL Enable was turned off and on to.
	EnableToggled bool
	// Aux is the auxiliary request data the BMC accepted.
	Aux [4]byte
}

// Console is an active SOL session from the remote console side: Read
// returns the host's serial output, Write types to it. It is a thin shell
// around an Engine.
//
// Every input drives the Engine under one lock (emu), on the goroutine it
// arrives on, and what the Engine asks to send is sent there, in order: a
// SOL packet on the session's reading goroutine (see ClientSession), Write
// and SendBreak on the caller's, retransmissions on a timer's. So a packet
// from the BMC is acknowledged without waking any other goroutine; the
// reader is woken only when it is waiting for output. One supervising
// goroutine watches the session, the keepalive and Close.
type Console struct {
	opts       ConsoleOptions
	do         func(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)
	sessDone   <-chan struct{}
	sessErr    func() error
	conn       PayloadConn
	activation Activation
	// namedPort is the port Activate Payload named when the payload goes
	// to it and the session's until one answers (OpenPayloadEither); 0
	// otherwise. portOf reports the port that answered (0: none yet).
	namedPort int
	portOf    func() int
	portSeen  atomic.Bool // the answering port has been reported
	ownIDs    []uint32    // our session's IDs as a BMC may name them; nil: unknown

	adaptMu sync.Mutex
	adapted []Adaptation

	events   chan Event
	evMu     sync.Mutex // orders emit against closing events
	evClosed bool

	closeCh   chan struct{}
	stopped   chan struct{} // poked (capacity 1) when the Console stops: the supervisor winds down
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error

	// noInstanceInfo: the BMC does not answer Get Payload Instance Info;
	// used by one keepalive goroutine at a time.
	noInstanceInfo bool

	// The Engine side, guarded by emu.
	emu      sync.Mutex
	e        *Engine
	out      Output // reused by the per-packet Engine steps
	pkt      []byte // a marshalled SOL payload, reused
	retry    *time.Timer
	due      time.Time // what retry is set for
	canWrite sync.Cond // on emu: writers wait for room under MaxPending
	end      error     // why the Console stopped; nil while running

	// Keepalive state, guarded by emu. Each keepalive sends a probe (see
	// Engine.Probe) and asks the BMC whose the instance is. An answer
	// that it is inactive or another session's is a claim, proved by the
	// probe going unanswered and disproved by a SOL packet after it.
	probeAt   time.Time // when the last probe left
	claim     error     // the latest unresolved claim, wrapping ErrDeactivated or ErrSOLStolen
	claimAt   time.Time
	probeLost bool // the last probe went unanswered before the session showed life

	// Bytes Read and not yet reported to the Engine. The next packet
	// reports them (the Engine needs the count only to accept a packet),
	// unless the Engine NACKed for want of room: then Read reports them at
	// once, so the BMC resumes without waiting for its retry.
	freed  atomic.Int64
	nacked atomic.Bool

	// The reader side, guarded by mu.
	mu       sync.Mutex
	readable sync.Cond
	rbuf     ring  // delivered output not yet Read
	err      error // why the Console stopped; nil while running
}

// Open activates SOL on sess and returns the running Console. ctx bounds
// the activation only, not the Console's life; Close ends that.
func Open[C PayloadConn](ctx context.Context, sess ClientSession[C], opts ConsoleOptions) (*Console, error) {
	opts = opts.withDefaults()
	encrypt, authenticate := true, true
	if s, ok := any(sess).(interface{ CipherSuite() rmcpplus.CipherSuite }); ok {
		suite := s.CipherSuite()
		encrypt = suite.Confidentiality != rmcpplus.ConfNone
		authenticate = suite.Integrity != rmcpplus.IntegrityNone
	}
	c := &Console{
		opts:     opts,
		do:       sess.Do,
		sessDone: sess.Done(),
		sessErr:  func() error { return nil },
		events:   make(chan Event, 64),
		closeCh:  make(chan struct{}),
		stopped:  make(chan struct{}, 1),
		loopDone: make(chan struct{}),
	}
	act, err := activate(ctx, sess.Do, opts, ipmi.SOLActivationAux(encrypt, authenticate), c.adapt)
	if err != nil {
		return nil, err
	}
	c.activation = act
	if s, ok := any(sess).(interface{ Err() error }); ok {
		c.sessErr = s.Err
	}
	if s, ok := any(sess).(interface {
		BMCSessionID() uint32
		ConsoleSessionID() uint32
	}); ok {
		c.ownIDs = []uint32{s.BMCSessionID(), s.ConsoleSessionID()}
	}
	c.readable.L = &c.mu
	c.canWrite.L = &c.emu

	sessionPort := 0
	if s, ok := any(sess).(interface{ RemotePort() int }); ok {
		sessionPort = s.RemotePort()
	}
	port, either, swapped := solPort(act.Port, sessionPort, opts.IgnorePayloadPort)
	if swapped {
		c.adapt(Adaptation{Quirk: QuirkSOLPort, Evidence: fmt.Sprintf(
			"Activate Payload named port %d, the session's port %d byte-swapped; used %d", act.Port, sessionPort, sessionPort)})
	}
	openEither, canEither := any(sess).(interface {
		OpenPayloadEither(pt rmcpplus.PayloadType, port int, handler func([]byte)) (C, error)
	})
	if either && !canEither {
		either = false // a session that cannot try both: the port as named
	}

	maxData := MaxDataForPayloadSize(act.InboundPayloadSize)
	switch {
	case opts.MaxData > 0:
		maxData = min(opts.MaxData, MaxCharacters)
	case !sensiblePayloadSize(act.InboundPayloadSize):
		maxData = MaxDataForPayloadSize(SafePayloadSize)
		c.adapt(Adaptation{Quirk: QuirkSOLPayloadSize, Evidence: fmt.Sprintf(
			"Activate Payload reported payload sizes %d in, %d out; sending %d characters per packet",
			act.InboundPayloadSize, act.OutboundPayloadSize, maxData)})
	}
	c.e = NewEngine(Config{
		Role:          ConsoleSide,
		MaxData:       maxData,
		RetryInterval: opts.RetryInterval,
		Retries:       opts.Retries,
		ReceiveBuffer: opts.ReadBuffer,
	})

	// Packets may arrive as soon as the payload is open: emu holds them
	// back until the Console is complete.
	c.emu.Lock()
	var conn C
	if either {
		conn, err = openEither.OpenPayloadEither(rmcpplus.PayloadSOL, port, c.receive)
		if err == nil {
			c.namedPort = port
			if p, ok := any(conn).(interface{ Port() int }); ok {
				c.portOf = p.Port
			}
		}
	} else if s, ok := any(sess).(interface {
		OpenPayloadFunc(pt rmcpplus.PayloadType, port int, handler func([]byte)) (C, error)
	}); ok {
		conn, err = s.OpenPayloadFunc(rmcpplus.PayloadSOL, port, c.receive)
	} else {
		conn, err = sess.OpenPayload(rmcpplus.PayloadSOL, port)
	}
	if err != nil {
		c.emu.Unlock()
		deactivate(sess.Do, opts.Instance)
		return nil, fmt.Errorf("sol: opening the SOL payload channel to port %d: %w", port, err)
	}
	c.conn = conn
	c.emit(EventActivated)
	opts.Logger.Debug("SOL activated", "instance", act.Instance, "inbound", act.InboundPayloadSize,
		"outbound", act.OutboundPayloadSize, "port", act.Port, "either", either, "takeovers", act.TakeOvers,
		"aux", fmt.Sprintf("%02X", act.Aux[0]))
	now := time.Now()
	c.probeAt = now
	if !opts.SkipStartupPacket {
		// Step past a sequence number the BMC may remember from an
		// earlier session (ipmi_sim does, and drops such a "duplicate");
		// the empty packet also asserts CTS and DCD/DSR, completing the
		// startup handshake ipmitool's activation bits ask for, and it is
		// the first probe: on a BMC whose named port has to be tried, the
		// one that answers it wins.
		o := c.e.Signal(now, 0)
		c.apply(&o)
	}
	c.emu.Unlock()
	go c.supervise()
	return c, nil
}

// Activation returns what Activate Payload reported.
func (c *Console) Activation() Activation { return c.activation }

// Adaptations lists what the Console did differently because its BMC bends
// IPMI, in the order it did them.
func (c *Console) Adaptations() []Adaptation {
	c.adaptMu.Lock()
	defer c.adaptMu.Unlock()
	return append([]Adaptation(nil), c.adapted...)
}

// adapt records a, once per quirk, and tells OnAdapt.
func (c *Console) adapt(a Adaptation) {
	c.adaptMu.Lock()
	for _, x := range c.adapted {
		if x.Quirk == a.Quirk {
			c.adaptMu.Unlock()
			return
		}
	}
	c.adapted = append(c.adapted, a)
	c.adaptMu.Unlock()
	c.opts.Logger.Info("adapting to the BMC", "quirk", a.Quirk, "evidence", a.Evidence)
	if c.opts.OnAdapt != nil {
		c.opts.OnAdapt(a)
	}
}

// LastHeard is when the last SOL packet came from the BMC (zero: none
// yet). With the keepalive probing a quiet console, a SOL instance that
// answers is heard from at least once per KeepaliveInterval.
func (c *Console) LastHeard() time.Time {
	c.emu.Lock()
	defer c.emu.Unlock()
	return c.e.LastHeard()
}

// Events reports activation, BMC status and the end of the Console. It is
// closed when the Console stops. Events are dropped when nobody reads them.
func (c *Console) Events() <-chan Event { return c.events }

func (c *Console) emit(ev Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.evClosed {
		return
	}
	select {
	case c.events <- ev:
	default:
	}
}

func (c *Console) closeEvents() {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.evClosed = true
	close(c.events)
}

// Read returns the host's serial output, blocking until there is some.
// Once the Console has stopped it returns what is left, then the reason
// (ErrClosed, or an error wrapping ErrDeactivated, ErrPeerNotAnswering or
// ErrSessionLost). A slow reader is not a loss: the BMC is NACKed and waits.
func (c *Console) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	for c.rbuf.len() == 0 && c.err == nil {
		c.readable.Wait()
	}
	if c.rbuf.len() == 0 {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	n := c.rbuf.read(p)
	c.mu.Unlock()
	c.freed.Add(int64(n))
	// Paired with noteRoom: either this sees the NACK, or noteRoom sees
	// the bytes just freed.
	if c.nacked.Load() {
		c.emu.Lock()
		if c.end == nil {
			c.noteRoom(time.Now())
		}
		c.emu.Unlock()
	}
	return n, nil
}

// Write types p on the host's serial console. It returns once p is queued
// and no more than MaxPending bytes await acknowledgement. On error some
// of p may have been sent.
func (c *Console) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return 0, c.end
	}
	o := c.e.Write(time.Now(), p)
	c.apply(&o)
	for c.end == nil && c.e.Pending() > c.opts.MaxPending {
		c.canWrite.Wait()
	}
	if c.end != nil {
		return 0, c.end
	}
	return len(p), nil
}

// DiscardInput drops what was written and not yet sent to the BMC (at
// most MaxPending bytes plus the last Write) and a break not yet sent, and
// returns the bytes dropped; the one packet in flight still goes. Blocked
// writers return.
func (c *Console) DiscardInput() int {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return 0
	}
	n := c.e.DropQueued()
	c.canWrite.Broadcast()
	return n
}

// SendBreak sends a serial break to the host after the bytes already
// written (IPMI v2.0 section 15.9, "generate break").
func (c *Console) SendBreak() error {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return c.end
	}
	o := c.e.Break(time.Now())
	c.apply(&o)
	return nil
}

// Close deactivates the payload (Deactivate Payload, best effort) and stops
// the Console. Bytes not yet acknowledged are discarded. It does not close
// the session.
func (c *Console) Close() error {
	c.closeOnce.Do(func() { close(c.closeCh) })
	<-c.loopDone
	return c.closeErr
}

// receive handles one SOL payload from the BMC: on the session's reading
// goroutine (OpenPayloadFunc; b is valid only during the call) or on the
// supervisor's (Recv).
func (c *Console) receive(b []byte) {
	p, err := ParsePacket(b)
	if err != nil {
		c.opts.Logger.Debug("dropping malformed SOL payload", "err", err)
		return
	}
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return
	}
	now := time.Now()
	if n := c.freed.Swap(0); n > 0 {
		c.e.ConsumeTo(&c.out, now, int(n))
		c.apply(&c.out)
	}
	c.e.ReceiveTo(&c.out, now, p)
	c.apply(&c.out)
	c.noteRoom(now)
	if c.namedPort != 0 && c.portOf != nil && !c.portSeen.Load() {
		if used := c.portOf(); used != 0 {
			c.portSeen.Store(true)
			c.adapt(Adaptation{Quirk: QuirkSOLPort, Evidence: fmt.Sprintf(
				"Activate Payload named port %d; SOL tried there and on the session's port, and port %d answered", c.namedPort, used)})
		}
	}
}

// noteRoom publishes whether the Engine is NACKing for want of room and,
// if it is, reports the bytes Read meanwhile; emu is held.
func (c *Console) noteRoom(now time.Time) {
	for c.end == nil {
		nacked := c.e.lastNACKed
		c.nacked.Store(nacked)
		if !nacked {
			return
		}
		n := c.freed.Swap(0)
		if n == 0 {
			return
		}
		c.e.ConsumeTo(&c.out, now, int(n))
		c.apply(&c.out)
	}
}

// apply carries out an Engine output; emu is held. The packets leave
// first: the BMC's next packet waits for our ACK, the reader does not.
func (c *Console) apply(o *Output) {
	var fatal error
	for _, ev := range o.Events {
		switch ev {
		case EventDeactivating:
			c.emit(EventDeactivatedByBMC)
			fatal = fmt.Errorf("%w (status bit in a SOL packet)", ErrDeactivated)
		case EventPeerNotAnswering:
			c.emit(EventPeerNotAnswering)
			fatal = fmt.Errorf("%w: no acknowledgement after %d retransmissions %v apart",
				ErrPeerNotAnswering, c.opts.Retries, c.opts.RetryInterval)
		case EventAssumedDelivered:
			c.emit(ev)
			c.adapt(Adaptation{Quirk: QuirkStrictSeq, Evidence: fmt.Sprintf(
				"a SOL packet went unacknowledged through %d retransmissions while the BMC kept answering; counted delivered",
				c.e.Config().AssumeDeliveredAfter)})
		case EventSeqRestart:
			c.emit(ev)
			c.adapt(Adaptation{Quirk: QuirkSeqRestart,
				Evidence: "a SOL packet under an old sequence number carried new output; taken as new data"})
		case EventProbeUnanswered:
			c.emit(ev)
			if !c.e.aliveAt.Before(c.probeAt) {
				fatal = c.solGone()
			} else {
				c.probeLost = true // the keepalive's answer decides
			}
		default:
			c.emit(ev)
		}
	}
	for i := range o.Send {
		c.pkt = o.Send[i].AppendTo(c.pkt[:0])
		if err := c.conn.Send(c.pkt); err != nil {
			c.opts.Logger.Debug("sending SOL payload failed", "err", err)
		}
	}
	if len(o.Deliver) > 0 {
		c.mu.Lock()
		c.rbuf.write(o.Deliver)
		c.readable.Broadcast() // wakes a reader only if one is waiting
		c.mu.Unlock()
	}
	c.schedule(o.Deadline)
	if c.e.Pending() <= c.opts.MaxPending {
		c.canWrite.Broadcast()
	}
	if fatal != nil {
		c.failLocked(fatal)
	}
}

// schedule sets the retransmission timer for the Engine's deadline; emu is
// held. A timer left set for a deadline that went away fires harmlessly:
// Tick does nothing before its time.
func (c *Console) schedule(at time.Time) {
	if c.end != nil || at.IsZero() || at.Equal(c.due) {
		return
	}
	c.due = at
	d := time.Until(at)
	if c.retry == nil {
		c.retry = time.AfterFunc(d, c.tick)
		return
	}
	c.retry.Reset(d)
}

func (c *Console) tick() {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return
	}
	c.due = time.Time{}
	before := c.e.Retransmissions()
	o := c.e.Tick(time.Now())
	consoleTotals.retransmits.Add(c.e.Retransmissions() - before)
	c.apply(&o)
}

// fail stops the Console for err unless it has stopped already.
func (c *Console) fail(err error) {
	c.emu.Lock()
	c.failLocked(err)
	c.emu.Unlock()
}

// failLocked records why the Console stopped (the first reason wins),
// ends the Engine, fails waiting writers, wakes readers and tells the
// supervisor; emu is held.
func (c *Console) failLocked(err error) {
	if c.end != nil {
		return
	}
	c.end = err
	c.e.Close(time.Now())
	if c.retry != nil {
		c.retry.Stop()
	}
	c.canWrite.Broadcast()
	c.mu.Lock()
	c.err = err
	c.readable.Broadcast()
	c.mu.Unlock()
	select {
	case c.stopped <- struct{}{}:
	default:
	}
}

func (c *Console) endErr() error {
	c.emu.Lock()
	defer c.emu.Unlock()
	return c.end
}

// supervise watches the session, runs the keepalive, takes payloads from
// Recv when the session cannot hand them over directly, and winds the
// Console down when it stops or is closed.
func (c *Console) supervise() {
	defer close(c.loopDone)
	defer c.closeEvents()
	defer c.conn.Close()

	keepalive := time.NewTimer(c.opts.KeepaliveInterval)
	defer keepalive.Stop()
	kaResult := make(chan error, 1)
	kaRunning := false

	recv := c.conn.Recv()
	var err error
	for err == nil {
		select {
		case b, ok := <-recv:
			if !ok {
				recv = nil
				var cause error // the session's own reason, if it has one
				if c.sessErr() == nil {
					cause = errors.New("the SOL payload channel was closed")
				}
				c.fail(c.sessionLost(cause))
				err = c.endErr()
				break
			}
			c.receive(b)
		case <-c.stopped:
			err = c.endErr()
		case <-keepalive.C:
			if !kaRunning {
				kaRunning = true
				c.probe()
				go func() { kaResult <- c.keepalive() }()
			}
		case kerr := <-kaResult:
			kaRunning = false
			if kerr != nil {
				c.fail(kerr)
				err = c.endErr()
				break
			}
			keepalive.Reset(c.opts.KeepaliveInterval)
		case <-c.sessDone:
			c.fail(c.sessionLost(nil))
			err = c.endErr()
		case <-c.closeCh:
			c.fail(ErrClosed)
			err = c.endErr()
		}
	}
	if err == ErrClosed {
		// Closed by the user: deactivate, as the user asked.
		if c.sessionAlive() {
			if derr := deactivate(c.do, c.activation.Instance); derr != nil {
				c.closeErr = fmt.Errorf("sol: deactivating SOL: %w", derr)
			}
		}
	} else {
		// Stopped by the BMC or the session. A BMC that stopped
		// acknowledging may still answer commands: release the payload
		// so the next Open need not take it over.
		c.opts.Logger.Info("SOL console stopped", "err", err)
		if errors.Is(err, ErrPeerNotAnswering) && c.sessionAlive() {
			deactivate(c.do, c.activation.Instance)
		}
	}
	if kaRunning {
		<-kaResult
	}
}

// probe starts a keepalive round on the SOL side: it resolves the last
// round's claim against what was heard since, and sends an empty data
// packet the BMC must answer within KeepaliveTimeout (Engine.Probe).
func (c *Console) probe() {
	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return
	}
	now := time.Now()
	if c.claim != nil && c.e.LastHeard().After(c.claimAt) {
		// SOL answered after the BMC said the instance was not ours.
		c.opts.Logger.Debug("ignoring the BMC's word: SOL answers", "claim", c.claim)
		c.adapt(Adaptation{Quirk: QuirkActivationStatusLies, Evidence: fmt.Sprintf(
			"the BMC said %v while SOL packets kept coming; the claim is ignored", claimText(c.claim))})
		c.claim = nil
	}
	c.probeAt = now
	c.probeLost = false
	if !c.opts.SkipStartupPacket {
		o := c.e.Probe(now, c.opts.KeepaliveTimeout)
		c.apply(&o)
	}
}

// claimText is what a claim said, for the operator.
func claimText(err error) string {
	if errors.Is(err, ErrSOLStolen) {
		return "the instance belonged to another session"
	}
	return "the instance was inactive"
}

// solGone is the error for a probe left unanswered by a live session: the
// BMC's claim if it made one (it said so, and the silence proves it), else
// a silent steal; emu is held.
func (c *Console) solGone() error {
	if c.claim != nil && errors.Is(c.claim, ErrDeactivated) {
		c.emit(EventDeactivatedByBMC)
		return c.claim
	}
	err := fmt.Errorf("%w: no SOL packet within %v of a probe while the session answered", ErrSOLStolen,
		c.opts.KeepaliveTimeout)
	if c.claim != nil {
		err = c.claim
	}
	c.adapt(Adaptation{Quirk: QuirkSOLStolen, Evidence: err.Error()})
	return err
}

// keepalive asks the BMC whose the SOL instance is: Get Payload Instance
// Info (IPMI v2.0 section 24.5), or Get Payload Activation Status (24.4)
// from a BMC that does not know that command. Any answer proves the BMC
// and the session alive (which ipmitool checks with Get Device ID every
// 15 s); a missing answer means the session is lost. An answer that the
// instance is inactive or another session's is only a claim: some BMCs
// say so while SOL flows (BMC-QUIRKS.md "activation status lies"), so the
// probe sent with it decides (see probe and EventProbeUnanswered).
func (c *Console) keepalive() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.KeepaliveTimeout)
	defer cancel()
	var claim error
	answered := false
	if !c.noInstanceInfo && c.ownIDs != nil {
		req := ipmi.GetPayloadInstanceInfoReq{PayloadType: ipmi.PayloadTypeSOL, Instance: c.activation.Instance}
		data, err := c.do(ctx, ipmi.NetFnApp, ipmi.CmdGetPayloadInstanceInfo, req.Marshal())
		var ce *ipmi.CompletionError
		var rsp ipmi.GetPayloadInstanceInfoRsp
		switch {
		case errors.As(err, &ce), err == nil && rsp.Unmarshal(data) != nil:
			c.noInstanceInfo = true // not known here: ask the activation status from now on
		case err != nil:
			return c.sessionLost(fmt.Errorf("keepalive (Get Payload Instance Info): %w", err))
		default:
			answered = true
			switch {
			case !rsp.Active():
				claim = fmt.Errorf("%w (Get Payload Instance Info shows instance %d inactive)", ErrDeactivated, c.activation.Instance)
			case !slices.Contains(c.ownIDs, rsp.SessionID):
				claim = fmt.Errorf("%w (Get Payload Instance Info shows instance %d active for session %08x)",
					ErrSOLStolen, c.activation.Instance, rsp.SessionID)
			}
		}
	}
	if !answered {
		req := ipmi.GetPayloadActivationStatusReq{PayloadType: ipmi.PayloadTypeSOL}
		data, err := c.do(ctx, ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, req.Marshal())
		var ce *ipmi.CompletionError
		var rsp ipmi.GetPayloadActivationStatusRsp
		switch {
		case errors.As(err, &ce):
			// answered, if only to say it does not know the command
		case err != nil:
			return c.sessionLost(fmt.Errorf("keepalive (Get Payload Activation Status): %w", err))
		case rsp.Unmarshal(data) == nil && !rsp.InstanceActive(int(c.activation.Instance)):
			claim = fmt.Errorf("%w (Get Payload Activation Status shows instance %d inactive)", ErrDeactivated, c.activation.Instance)
		}
	}

	c.emu.Lock()
	defer c.emu.Unlock()
	if c.end != nil {
		return nil
	}
	now := time.Now()
	c.e.Alive(now)
	if claim != nil && c.claim == nil {
		// Tested by this round's probe: disproved by any SOL packet
		// after it left.
		c.claim, c.claimAt = claim, c.probeAt
	}
	if c.probeLost {
		// The probe went unanswered and the session answers: SOL is
		// gone from this session.
		c.probeLost = false
		return c.solGone()
	}
	return nil
}

func (c *Console) sessionAlive() bool {
	select {
	case <-c.sessDone:
		return false
	default:
		return true
	}
}

func (c *Console) sessionLost(cause error) error {
	c.emit(EventSessionLost)
	if cause == nil {
		cause = c.sessErr()
	}
	if cause == nil {
		return ErrSessionLost
	}
	return fmt.Errorf("%w: %w", ErrSessionLost, cause)
}
