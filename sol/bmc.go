package sol

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"
)

// ErrClosed is returned by a closed Console or BMCEndpoint.
var ErrClosed = errors.New("sol: closed")

// BMCEndpoint defaults, used for zero EndpointConfig fields.
const (
	DefaultEndpointRetryInterval = 1 * time.Second // ipmi_sim resends every second
	DefaultEndpointRetries       = 4               // and gives up after 4 (we keep trying; see EndpointConfig.Retries)
	DefaultEndpointReceiveBuffer = 4 << 10
	DefaultEndpointMaxPending    = 4 << 10
)

// EndpointConfig configures a BMCEndpoint.
type EndpointConfig struct {
	// Send transmits one SOL payload to the console. fakebmc binds it to
	// ServerSession.SendPayload(rmcpplus.PayloadSOL, b). It must not call
	// back into the endpoint and should not block long: it is called with
	// the endpoint's lock held so packets leave in order.
	Send func(payload []byte) error
	// MaxData is the most characters per packet to the console: the
	// outbound payload size announced in Activate Payload minus the
	// 4-byte header (MaxDataForPayloadSize). Zero means MaxCharacters.
	MaxData int
	// RetryInterval and Retries drive retransmission (the SOL Retry
	// configuration parameter of IPMI v2.0 section 26.3; zero means the
	// defaults, a negative Retries none). After Retries unanswered
	// retransmissions OnEvent gets EventPeerNotAnswering; the endpoint
	// keeps retransmitting and never drops console output while attached.
	RetryInterval time.Duration
	Retries       int
	// ReceiveBuffer bounds what the console typed and the host has not
	// read; when full the console is NACKed.
	ReceiveBuffer int
	// MaxPending bounds the host output queued towards the console; Write
	// blocks beyond it.
	MaxPending int
	// AcceptMax, if positive, accepts at most this many characters of each
	// packet from the console (see Config.AcceptMax): a BMC that partially
	// accepts every long packet.
	AcceptMax int
	// OnEvent, if set, receives the console's operations (break, flush,
	// CTS pause, ...) and EventPeerNotAnswering. It runs on the caller's
	// goroutine (the session reader or the timer) and must not block.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// BMCEndpoint is the BMC side of one active SOL payload instance, for
// fakebmc: a thin shell that feeds an Engine (BMCSide) from the session's
// inbound payloads, the simulated host's console output and a timer.
//
// The host writes console output with Write, which blocks while the console
// is not taking data (it never drops while attached), and reads what the
// console typed with Read, in order. HandlePayload never blocks. An idle
// endpoint owns no goroutine: retransmission runs from time.AfterFunc.
type BMCEndpoint struct {
	cfg EndpointConfig

	mu       sync.Mutex
	canWrite sync.Cond // host writers wait here for the console to take data
	canRead  sync.Cond // host readers wait here for typed input
	e        *Engine
	typed    ring // delivered console input the host has not read
	timer    *time.Timer
	due      time.Time
	cts      bool // console deasserted CTS: the host must pause
	closed   bool
	events   []Event // collected under mu, reported after
}

// NewBMCEndpoint returns an endpoint ready for HandlePayload and Write.
func NewBMCEndpoint(cfg EndpointConfig) *BMCEndpoint {
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultEndpointRetryInterval
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultEndpointRetries
	}
	if cfg.ReceiveBuffer <= 0 {
		cfg.ReceiveBuffer = DefaultEndpointReceiveBuffer
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultEndpointMaxPending
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &BMCEndpoint{cfg: cfg}
	b.canWrite.L = &b.mu
	b.canRead.L = &b.mu
	b.e = NewEngine(Config{
		Role:          BMCSide,
		MaxData:       cfg.MaxData,
		RetryInterval: cfg.RetryInterval,
		Retries:       cfg.Retries,
		ReceiveBuffer: cfg.ReceiveBuffer,
		AcceptMax:     cfg.AcceptMax,
	})
	return b
}

// HandlePayload takes one SOL payload from the console (the session's
// payload handler). Malformed payloads are dropped.
func (b *BMCEndpoint) HandlePayload(payload []byte) {
	p, err := ParsePacket(payload)
	if err != nil {
		b.cfg.Logger.Debug("dropping malformed SOL payload", "err", err, "len", len(payload))
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.apply(b.e.Receive(time.Now(), p))
	b.unlockAndReport()
}

// Write queues host console output for the console. It blocks while more
// than MaxPending bytes await acknowledgement or the console has paused the
// host (CTS), and returns ErrClosed once the endpoint is closed.
func (b *BMCEndpoint) Write(p []byte) (int, error) {
	written := 0
	b.mu.Lock()
	for written < len(p) {
		for !b.closed && (b.cts || b.e.Pending() >= b.cfg.MaxPending) {
			b.canWrite.Wait()
		}
		if b.closed {
			b.mu.Unlock()
			return written, ErrClosed
		}
		n := min(len(p)-written, b.cfg.MaxPending-b.e.Pending())
		b.apply(b.e.Write(time.Now(), p[written:written+n]))
		written += n
	}
	b.unlockAndReport()
	return written, nil
}

// Read returns what the console typed, in order, blocking until some is
// there. After Close it returns what is left, then io.EOF.
func (b *BMCEndpoint) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b.mu.Lock()
	for b.typed.len() == 0 && !b.closed {
		b.canRead.Wait()
	}
	if b.typed.len() == 0 {
		b.mu.Unlock()
		return 0, io.EOF
	}
	n := b.typed.read(p)
	if !b.closed {
		b.apply(b.e.Consume(time.Now(), n))
	}
	b.unlockAndReport()
	return n, nil
}

// Break reports a serial break from the host to the console ("break
// detected" status).
func (b *BMCEndpoint) Break() { b.Signal(StatusBreakDetected) }

// Signal sends one-shot status bits to the console after the output already
// written (fault injection: StatusTransmitOverrun, StatusBreakDetected).
func (b *BMCEndpoint) Signal(status Op) {
	b.mu.Lock()
	if !b.closed {
		b.apply(b.e.Signal(time.Now(), status))
	}
	b.unlockAndReport()
}

// SetTransferUnavailable sets or clears the "character transfer
// unavailable" status.
func (b *BMCEndpoint) SetTransferUnavailable(on bool) {
	b.mu.Lock()
	if !b.closed {
		b.apply(b.e.SetLevel(time.Now(), StatusTransferUnavailable, on))
	}
	b.unlockAndReport()
}

// Close deactivates the endpoint: the console is told once with the "SOL
// deactivating" status (IPMI v2.0 section 15.9, Table 15-3), blocked
// writers get ErrClosed and readers drain what is left, then io.EOF.
func (b *BMCEndpoint) Close() error {
	b.end(true)
	return nil
}

// Abandon ends the endpoint without a word to the console: unlike Close
// it sends no "SOL deactivating" status, as a BMC that hands the instance
// to another session silently does (fakebmc's sol-steal). Blocked writers
// get ErrClosed, readers drain what is left.
func (b *BMCEndpoint) Abandon() { b.end(false) }

// end stops the endpoint once, sending the "SOL deactivating" status first
// if tell (Close) and nothing if not (Abandon).
func (b *BMCEndpoint) end(tell bool) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if tell {
		b.apply(b.e.Close(time.Now()))
	}
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.canWrite.Broadcast()
	b.canRead.Broadcast()
	b.unlockAndReport()
}

// RestartNumbering makes the endpoint's next new packet sequence number 1
// (Engine.RestartNumbering), as a BMC that restarts SOL numbering when the
// host power-cycles does (fakebmc's solseq-restart).
func (b *BMCEndpoint) RestartNumbering() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.e.RestartNumbering()
}

// apply carries out an Engine output; b.mu is held.
func (b *BMCEndpoint) apply(o Output) {
	for _, ev := range o.Events {
		switch ev {
		case EventFlushInbound:
			b.typed.reset()
		case EventCTSPause:
			b.cts = true
		case EventCTSResume:
			b.cts = false
		}
		b.events = append(b.events, ev)
	}
	if len(o.Deliver) > 0 {
		b.typed.write(o.Deliver)
		b.canRead.Broadcast()
	}
	for i := range o.Send {
		if err := b.cfg.Send(o.Send[i].Marshal()); err != nil {
			b.cfg.Logger.Debug("sending SOL payload failed", "err", err)
		}
	}
	if !b.cts && b.e.Pending() < b.cfg.MaxPending {
		b.canWrite.Broadcast()
	}
	b.schedule(o.Deadline)
}

// schedule arms the timer for the Engine's deadline; b.mu is held.
func (b *BMCEndpoint) schedule(at time.Time) {
	if b.closed || at.IsZero() || at.Equal(b.due) {
		return
	}
	b.due = at
	d := at.Sub(time.Now())
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.tick)
		return
	}
	b.timer.Reset(d)
}

func (b *BMCEndpoint) tick() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.due = time.Time{}
	b.apply(b.e.Tick(time.Now()))
	b.unlockAndReport()
}

// unlockAndReport releases b.mu, then hands collected events to OnEvent.
func (b *BMCEndpoint) unlockAndReport() {
	evs := b.events
	b.events = nil
	b.mu.Unlock()
	if b.cfg.OnEvent != nil {
		for _, ev := range evs {
			b.cfg.OnEvent(ev)
		}
	}
}
