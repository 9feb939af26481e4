package sol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// PayloadConn carries SOL payloads on a session. *rmcpplus.PayloadConn
// implements it; tests use fakes.
type PayloadConn interface {
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
// If the session also has `CipherSuite() rmcpplus.CipherSuite`, Activate
// Payload asks for encryption and authentication exactly when the suite
// has them; otherwise it asks for both, as ipmitool does (a BMC applies
// them only if the session can). If it has `Err() error`, the Console
// reports that error when the session ends.
type ClientSession[C PayloadConn] interface {
	Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)
	OpenPayload(pt rmcpplus.PayloadType, port int) (C, error)
	Done() <-chan struct{}
}

// The real session and payload connection fit; the Console and the BMC
// endpoint are byte streams.
var (
	_ ClientSession[*rmcpplus.PayloadConn] = (*rmcpplus.Session)(nil)
	_ io.ReadWriteCloser                   = (*Console)(nil)
	_ io.ReadWriteCloser                   = (*BMCEndpoint)(nil)
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
	// the Activate Payload response). For BMCs that report nonsense sizes
	// (FreeIPMI's "solpayloadsize" workaround).
	MaxData int
	// IgnorePayloadPort sends SOL to the session's port whatever Activate
	// Payload says (FreeIPMI's "solport" workaround).
	IgnorePayloadPort bool
	// SkipStartupPacket: do not open with an empty data packet. The
	// Console normally sends one so that a BMC remembering the sequence
	// number of an earlier session cannot drop our first keystrokes as a
	// duplicate (ipmi_sim does), and so that CTS and DCD/DSR are asserted
	// at once. For a BMC that mishandles an empty data packet.
	SkipStartupPacket bool
	Logger            *slog.Logger
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
)

// Activation describes an activated SOL payload (IPMI v2.0 section 24.1,
// Table 24-3).
type Activation struct {
	Instance            uint8
	InboundPayloadSize  int // largest payload the BMC takes from us
	OutboundPayloadSize int // largest payload the BMC sends
	Port                int // UDP port for SOL, as reported
	TakeOvers           int // stale activations deactivated first
}

// Console is an active SOL session from the remote console side: Read
// returns the host's serial output, Write types to it. It is a thin shell
// around an Engine: one goroutine owns the Engine, the payload connection
// and the timers.
type Console struct {
	opts       ConsoleOptions
	do         func(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error)
	sessDone   <-chan struct{}
	sessErr    func() error
	conn       PayloadConn
	activation Activation

	events    chan Event
	writeCh   chan writeReq
	breakCh   chan chan error
	consumed  chan struct{} // poke: the reader freed buffer space
	closeCh   chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	readable sync.Cond
	rbuf     ring
	freed    int   // bytes Read since the loop last told the Engine
	err      error // why the Console stopped; nil while running
}

type writeReq struct {
	data []byte
	done chan error
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
	act, err := activate(ctx, sess.Do, opts, ipmi.SOLActivationAux(encrypt, authenticate))
	if err != nil {
		return nil, err
	}
	port := act.Port
	if opts.IgnorePayloadPort {
		port = 0
	}
	conn, err := sess.OpenPayload(rmcpplus.PayloadSOL, port)
	if err != nil {
		deactivate(sess.Do, opts.Instance)
		return nil, fmt.Errorf("sol: opening the SOL payload channel to port %d: %w", port, err)
	}
	c := &Console{
		opts:       opts,
		do:         sess.Do,
		sessDone:   sess.Done(),
		sessErr:    func() error { return nil },
		conn:       conn,
		activation: act,
		events:     make(chan Event, 64),
		writeCh:    make(chan writeReq),
		breakCh:    make(chan chan error),
		consumed:   make(chan struct{}, 1),
		closeCh:    make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	if s, ok := any(sess).(interface{ Err() error }); ok {
		c.sessErr = s.Err
	}
	c.readable.L = &c.mu
	maxData := MaxDataForPayloadSize(act.InboundPayloadSize)
	if opts.MaxData > 0 {
		maxData = min(opts.MaxData, MaxCharacters)
	}
	e := NewEngine(Config{
		Role:          ConsoleSide,
		MaxData:       maxData,
		RetryInterval: opts.RetryInterval,
		Retries:       opts.Retries,
		ReceiveBuffer: opts.ReadBuffer,
	})
	c.emit(EventActivated)
	opts.Logger.Debug("SOL activated", "instance", act.Instance, "inbound", act.InboundPayloadSize,
		"outbound", act.OutboundPayloadSize, "port", act.Port, "takeovers", act.TakeOvers)
	go c.loop(e)
	return c, nil
}

// activate sends Activate Payload (IPMI v2.0 section 24.1), taking over a
// stale activation when allowed.
func activate(ctx context.Context, do func(context.Context, ipmi.NetFn, ipmi.Command, []byte) ([]byte, error),
	opts ConsoleOptions, aux [4]byte) (Activation, error) {
	req := ipmi.ActivatePayloadReq{PayloadType: ipmi.PayloadTypeSOL, Instance: opts.Instance, Aux: aux}
	takeOvers := 0
	for {
		data, err := do(ctx, ipmi.NetFnApp, ipmi.CmdActivatePayload, req.Marshal())
		var ce *ipmi.CompletionError
		if errors.As(err, &ce) && ce.Code == ipmi.CCPayloadAlreadyActive && *opts.TakeOver &&
			takeOvers < opts.MaxTakeOverAttempts {
			// IPMI v2.0 section 24.2: Deactivate Payload from another
			// session ends the stale activation (a client killed with SOL
			// up leaves it active until its session times out).
			takeOvers++
			opts.Logger.Info("SOL payload already active; deactivating the stale instance",
				"instance", opts.Instance, "attempt", takeOvers)
			if derr := deactivateCtx(ctx, do, opts.Instance); derr != nil {
				return Activation{}, fmt.Errorf("sol: SOL payload already active and taking it over failed: %w", derr)
			}
			continue
		}
		if err != nil {
			if ce != nil && ce.Code == ipmi.CCPayloadAlreadyActive {
				return Activation{}, fmt.Errorf("sol: %w (after %d takeover attempts)", err, takeOvers)
			}
			return Activation{}, fmt.Errorf("sol: activating SOL: %w", err)
		}
		var rsp ipmi.ActivatePayloadRsp
		if err := rsp.Unmarshal(data); err != nil {
			return Activation{}, fmt.Errorf("sol: activating SOL: %w", err)
		}
		return Activation{
			Instance:            opts.Instance,
			InboundPayloadSize:  int(rsp.InboundPayloadSize),
			OutboundPayloadSize: int(rsp.OutboundPayloadSize),
			Port:                int(rsp.Port),
			TakeOvers:           takeOvers,
		}, nil
	}
}

// deactivateCtx sends Deactivate Payload (IPMI v2.0 section 24.2); 0x80
// "already deactivated" counts as success.
func deactivateCtx(ctx context.Context, do func(context.Context, ipmi.NetFn, ipmi.Command, []byte) ([]byte, error),
	instance uint8) error {
	req := ipmi.DeactivatePayloadReq{PayloadType: ipmi.PayloadTypeSOL, Instance: instance}
	_, err := do(ctx, ipmi.NetFnApp, ipmi.CmdDeactivatePayload, req.Marshal())
	var ce *ipmi.CompletionError
	if errors.As(err, &ce) && ce.Code == 0x80 {
		return nil
	}
	return err
}

func deactivate(do func(context.Context, ipmi.NetFn, ipmi.Command, []byte) ([]byte, error), instance uint8) error {
	ctx, cancel := context.WithTimeout(context.Background(), deactivateTimeout)
	defer cancel()
	return deactivateCtx(ctx, do, instance)
}

// Activation returns what Activate Payload reported.
func (c *Console) Activation() Activation { return c.activation }

// Events reports activation, BMC status and the end of the Console. It is
// closed when the Console stops. Events are dropped when nobody reads them.
func (c *Console) Events() <-chan Event { return c.events }

func (c *Console) emit(ev Event) {
	select {
	case c.events <- ev:
	default:
	}
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
	c.freed += n
	c.mu.Unlock()
	select {
	case c.consumed <- struct{}{}:
	default:
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
	req := writeReq{data: p, done: make(chan error, 1)}
	select {
	case c.writeCh <- req:
	case <-c.loopDone:
		return 0, c.stopErr()
	}
	if err := <-req.done; err != nil {
		return 0, err
	}
	return len(p), nil
}

// SendBreak sends a serial break to the host after the bytes already
// written (IPMI v2.0 section 15.9, "generate break").
func (c *Console) SendBreak() error {
	done := make(chan error, 1)
	select {
	case c.breakCh <- done:
	case <-c.loopDone:
		return c.stopErr()
	}
	return <-done
}

// Close deactivates the payload (Deactivate Payload, best effort) and stops
// the Console. Bytes not yet acknowledged are discarded. It does not close
// the session.
func (c *Console) Close() error {
	c.closeOnce.Do(func() { close(c.closeCh) })
	<-c.loopDone
	return c.closeErr
}

func (c *Console) stopErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// stop records why the Console ended and wakes readers; the first reason
// wins.
func (c *Console) stop(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.readable.Broadcast()
	c.mu.Unlock()
}

// loop owns the Engine, the payload connection and the timers.
func (c *Console) loop(e *Engine) {
	defer close(c.loopDone)
	defer close(c.events)
	defer c.conn.Close()

	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	keepalive := time.NewTimer(c.opts.KeepaliveInterval)
	defer keepalive.Stop()
	kaResult := make(chan error, 1)
	kaRunning := false
	var writers []writeReq // accepted, waiting for MaxPending room

	failWriters := func(err error) {
		for _, w := range writers {
			w.done <- err
		}
		writers = nil
	}
	// handle carries out an Engine output; it returns a terminal error.
	handle := func(o Output) error {
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
			default:
				c.emit(ev)
			}
		}
		if len(o.Deliver) > 0 {
			c.mu.Lock()
			c.rbuf.write(o.Deliver)
			c.readable.Broadcast()
			c.mu.Unlock()
		}
		for i := range o.Send {
			if err := c.conn.Send(o.Send[i].Marshal()); err != nil {
				c.opts.Logger.Debug("sending SOL payload failed", "err", err)
			}
		}
		retry.Stop()
		if !o.Deadline.IsZero() {
			retry.Reset(time.Until(o.Deadline))
		}
		for len(writers) > 0 && e.Pending() <= c.opts.MaxPending {
			writers[0].done <- nil
			writers = writers[1:]
		}
		return fatal
	}

	// Step past a sequence number the BMC may remember from an earlier
	// session (ipmi_sim does, and drops such a "duplicate"); the empty
	// packet also asserts CTS and DCD/DSR, completing the startup
	// handshake ipmitool's activation bits ask for.
	var err error
	if !c.opts.SkipStartupPacket {
		err = handle(e.Signal(time.Now(), 0))
	}
	recv := c.conn.Recv()
	for err == nil {
		select {
		case b, ok := <-recv:
			if !ok {
				var cause error // the session's own reason, if it has one
				if c.sessErr() == nil {
					cause = errors.New("the SOL payload channel was closed")
				}
				err = c.sessionLost(cause)
				break
			}
			p, perr := ParsePacket(b)
			if perr != nil {
				c.opts.Logger.Debug("dropping malformed SOL payload", "err", perr)
				continue
			}
			err = handle(e.Receive(time.Now(), p))
		case w := <-c.writeCh:
			writers = append(writers, w)
			err = handle(e.Write(time.Now(), w.data))
		case <-c.consumed:
			c.mu.Lock()
			n := c.freed
			c.freed = 0
			c.mu.Unlock()
			err = handle(e.Consume(time.Now(), n))
		case done := <-c.breakCh:
			err = handle(e.Break(time.Now()))
			done <- nil
		case <-retry.C:
			err = handle(e.Tick(time.Now()))
		case <-keepalive.C:
			if !kaRunning {
				kaRunning = true
				go func() { kaResult <- c.keepalive() }()
			}
		case kerr := <-kaResult:
			kaRunning = false
			err = kerr
			keepalive.Reset(c.opts.KeepaliveInterval)
		case <-c.sessDone:
			err = c.sessionLost(nil)
		case <-c.closeCh:
			e.Close(time.Now())
			failWriters(ErrClosed)
			c.stop(ErrClosed)
			if c.sessionAlive() {
				if derr := deactivate(c.do, c.activation.Instance); derr != nil {
					c.closeErr = fmt.Errorf("sol: deactivating SOL: %w", derr)
				}
			}
			if kaRunning {
				<-kaResult
			}
			return
		}
	}
	// Stopped by the BMC or the session: tell readers and writers. A BMC
	// that stopped acknowledging may still answer commands: release the
	// payload so the next Open need not take it over.
	c.opts.Logger.Info("SOL console stopped", "err", err)
	e.Close(time.Now())
	failWriters(err)
	c.stop(err)
	if errors.Is(err, ErrPeerNotAnswering) && c.sessionAlive() {
		deactivate(c.do, c.activation.Instance)
	}
	if kaRunning {
		<-kaResult
	}
}

// keepalive asks for the payload's activation status (IPMI v2.0 section
// 24.4). Any answer proves the BMC alive; a missing answer means the
// session is lost; an answer saying our instance is inactive means the BMC
// deactivated it.
func (c *Console) keepalive() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.KeepaliveTimeout)
	defer cancel()
	req := ipmi.GetPayloadActivationStatusReq{PayloadType: ipmi.PayloadTypeSOL}
	data, err := c.do(ctx, ipmi.NetFnApp, ipmi.CmdGetPayloadActivationStatus, req.Marshal())
	var ce *ipmi.CompletionError
	switch {
	case errors.As(err, &ce):
		return nil // answered, if only to say it does not know the command
	case err != nil:
		return c.sessionLost(fmt.Errorf("keepalive (Get Payload Activation Status): %w", err))
	}
	var rsp ipmi.GetPayloadActivationStatusRsp
	if rsp.Unmarshal(data) == nil && !rsp.InstanceActive(int(c.activation.Instance)) {
		c.emit(EventDeactivatedByBMC)
		return fmt.Errorf("%w (Get Payload Activation Status shows instance %d inactive)",
			ErrDeactivated, c.activation.Instance)
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
