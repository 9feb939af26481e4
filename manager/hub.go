package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The console hub follows conman: one driver console per node, whatever the
// number of viewers, and a reader goroutine that copies every byte into each
// viewer's own bounded ring and into a per-node scrollback ring. Writing into
// a ring never blocks: when a viewer falls more than its ring behind, its
// oldest unread bytes are overwritten and, at that point of its stream, it
// reads a marker line
//
//	\r\n[obmd: 12345 bytes dropped: viewer too slow]\r\n
//
// so the gap is visible. A slow viewer therefore never slows the BMC session
// or the other viewers; it skips ahead to recent output instead. (Blocking
// would stall everyone on the slowest reader; dropping silently would hide
// the gap.)
//
// The console is opened for the first viewer and closed Linger after the last
// one leaves, so that a reconnecting viewer does not cost a new SOL
// activation. If the driver's stream ends while viewers are connected (BMC
// reset, session lost), the hub reopens it with backoff and writes
//
//	\r\n[obmd: console reconnected after 1.2s]\r\n
//
// so viewers stay connected across the gap.

// Why a viewer's stream ended (what Viewer.Read returns).
var (
	ErrViewerClosed = errors.New("console viewer closed")
	ErrTokenRevoked = errors.New("console closed: the node's token was replaced or revoked")
	ErrNodeDeleted  = errors.New("console closed: the node was deleted")
	ErrShuttingDown = errors.New("console closed: obmd is shutting down")
)

// HubConfig tunes the console hub. Zero values take the defaults.
type HubConfig struct {
	// Linger is how long a node's console stays open after its last viewer
	// leaves (default 30 s; negative means close at once).
	Linger time.Duration
	// ViewerBuffer is each viewer's ring size in bytes (default 64 KiB).
	ViewerBuffer int
	// Scrollback is the per-node replay ring size in bytes (default 64 KiB);
	// it bounds ?replay=N.
	Scrollback int
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Linger == 0 {
		c.Linger = 30 * time.Second
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.ViewerBuffer <= 0 {
		c.ViewerBuffer = 64 << 10
	}
	if c.Scrollback <= 0 {
		c.Scrollback = 64 << 10
	}
	return c
}

// Reconnect backoff: the first reopen after a stream that stayed up for
// stableAfter is immediate; each failure or quick loss doubles the wait
// from backoffMin up to backoffMax.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
	stableAfter = 10 * time.Second
)

func nextBackoff(d time.Duration) time.Duration {
	if d < backoffMin {
		return backoffMin
	}
	return min(2*d, backoffMax)
}

func droppedMarker(n int) []byte {
	return fmt.Appendf(nil, "\r\n[obmd: %d bytes dropped: viewer too slow]\r\n", n)
}

func reconnectMarker(gap time.Duration) []byte {
	return fmt.Appendf(nil, "\r\n[obmd: console reconnected after %s]\r\n", gap.Round(time.Millisecond))
}

// consoleStats are counters shared by all hubs of a Manager.
type consoleStats struct {
	viewers    atomic.Int64
	bytes      atomic.Int64 // read from drivers
	dropped    atomic.Int64 // overwritten in slow viewers' rings
	reconnects atomic.Int64
}

// hub fans one node's console out to its viewers.
type hub struct {
	cfg   HubConfig
	open  func(ctx context.Context) (io.ReadCloser, error)
	log   *slog.Logger
	stats *consoleStats

	mu         sync.Mutex
	viewers    map[*Viewer]struct{}
	scrollback byteRing
	sess       *consoleSession // nil when no console is open or opening
	lastDone   chan struct{}   // closed when the latest session has stopped
	linger     *time.Timer
	closed     error // why the hub was closed, or nil
}

// consoleSession is one lifetime of the node's console: from the first
// viewer to the linger timeout (reopened streams included).
type consoleSession struct {
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed when the first open has succeeded or failed
	err    error         // the first open's error; read after ready
	rc     *onceCloser   // current stream; guarded by hub.mu
	done   chan struct{} // closed when the session's goroutine returns
}

func newHub(cfg HubConfig, open func(context.Context) (io.ReadCloser, error), log *slog.Logger, stats *consoleStats) *hub {
	cfg = cfg.withDefaults()
	return &hub{
		cfg:        cfg,
		open:       open,
		log:        log,
		stats:      stats,
		viewers:    make(map[*Viewer]struct{}),
		scrollback: newByteRing(cfg.Scrollback),
	}
}

// join adds a viewer, preloaded with up to replay bytes of scrollback, and
// starts the console if it is not running. It never blocks on the driver,
// so callers may hold the node's lock (token checks and revocations are
// atomic with respect to joining).
func (h *hub) join(replay int) (*Viewer, *consoleSession, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		return nil, nil, h.closed
	}
	v := &Viewer{hub: h, ring: newByteRing(h.cfg.ViewerBuffer), wake: make(chan struct{}, 1), done: make(chan struct{})}
	if replay > 0 {
		v.ring.write(h.scrollback.tail(min(replay, h.cfg.ViewerBuffer)))
	}
	h.viewers[v] = struct{}{}
	h.stats.viewers.Add(1)
	if h.linger != nil {
		h.linger.Stop()
		h.linger = nil
	}
	if h.sess == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s := &consoleSession{ctx: ctx, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
		prev := h.lastDone
		h.sess, h.lastDone = s, s.done
		go h.run(s, prev)
	}
	return v, h.sess, nil
}

// wait blocks until s's console is open, or fails with the open's error.
func (h *hub) wait(ctx context.Context, v *Viewer, s *consoleSession) error {
	select {
	case <-s.ready:
		if s.err != nil {
			v.Close()
			return s.err
		}
		return nil
	case <-ctx.Done():
		v.Close()
		return ctx.Err()
	}
}

// detach removes v; with no viewers left, the console closes after Linger.
func (h *hub) detach(v *Viewer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.viewers[v]; !ok {
		return
	}
	delete(h.viewers, v)
	h.stats.viewers.Add(-1)
	h.maybeLingerLocked()
}

func (h *hub) maybeLingerLocked() {
	if len(h.viewers) > 0 || h.sess == nil || h.linger != nil || h.closed != nil {
		return
	}
	s := h.sess
	h.linger = time.AfterFunc(h.cfg.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.sess == s && len(h.viewers) == 0 {
			h.linger = nil
			h.stopSessionLocked()
		}
	})
}

// stopSessionLocked ends the current session: its stream is closed (which
// unblocks the reader) and a later viewer starts a new one.
func (h *hub) stopSessionLocked() {
	s := h.sess
	if s == nil {
		return
	}
	h.sess = nil
	s.cancel()
	if s.rc != nil {
		go s.rc.Close() // a driver's Close may talk to the BMC: not under h.mu
	}
}

// kick disconnects every viewer with reason; the console lingers.
func (h *hub) kick(reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kickLocked(reason)
	h.maybeLingerLocked()
}

func (h *hub) kickLocked(reason error) {
	for v := range h.viewers {
		v.end(reason)
		delete(h.viewers, v)
		h.stats.viewers.Add(-1)
	}
}

// refuse disconnects every viewer with reason and refuses new ones; the
// console stream itself is left to close.
func (h *hub) refuse(reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed == nil {
		h.closed = reason
	}
	h.kickLocked(reason)
}

// close disconnects every viewer with reason, refuses new ones, stops the
// console and waits until its stream is closed or ctx is done.
func (h *hub) close(ctx context.Context, reason error) error {
	h.mu.Lock()
	if h.closed == nil {
		h.closed = reason
	}
	h.kickLocked(reason)
	if h.linger != nil {
		h.linger.Stop()
		h.linger = nil
	}
	h.stopSessionLocked()
	done := h.lastDone
	h.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("console still closing: %w", ctx.Err())
	}
}

// run is a session's reader goroutine.
func (h *hub) run(s *consoleSession, prev chan struct{}) {
	defer close(s.done)
	if prev != nil {
		<-prev // one stream per node: the previous one must be closed first
	}
	var rc io.ReadCloser
	err := s.ctx.Err()
	if err == nil {
		rc, err = h.open(s.ctx)
	}
	h.mu.Lock()
	if err == nil && s.ctx.Err() != nil {
		rc.Close()
		err = ErrViewerClosed
	}
	if err != nil {
		s.err = err
		close(s.ready)
		if h.sess == s {
			h.sess = nil
			h.kickLocked(err)
		}
		h.mu.Unlock()
		h.log.Warn("console open failed", "err", err)
		return
	}
	s.rc = &onceCloser{rc: rc}
	close(s.ready)
	h.mu.Unlock()
	h.log.Info("console opened")

	buf := make([]byte, 16<<10)
	backoff := time.Duration(0)
	openedAt := time.Now()
	cur := s.rc
	for {
		n, err := cur.Read(buf)
		if n > 0 {
			h.broadcast(s, buf[:n])
		}
		if err == nil {
			continue
		}
		cur.Close()
		if s.ctx.Err() != nil {
			h.log.Info("console closed")
			return
		}
		h.log.Warn("console stream ended; reopening", "err", err)
		if time.Since(openedAt) >= stableAfter {
			backoff = 0
		} else {
			backoff = nextBackoff(backoff)
		}
		cur, backoff = h.reopen(s, backoff)
		if cur == nil {
			return
		}
		openedAt = time.Now()
	}
}

// reopen reopens the session's stream after it ended, waiting backoff
// before the first attempt and longer after each failure. It gives up
// (returning nil) when the session stops or no viewer is left.
func (h *hub) reopen(s *consoleSession, backoff time.Duration) (*onceCloser, time.Duration) {
	lostAt := time.Now()
	for {
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil, backoff
			}
		}
		h.mu.Lock()
		if h.sess == s && len(h.viewers) == 0 {
			h.stopSessionLocked() // nobody is watching: do not reconnect
		}
		h.mu.Unlock()
		if s.ctx.Err() != nil {
			return nil, backoff
		}
		rc, err := h.open(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil, backoff
			}
			backoff = nextBackoff(backoff)
			h.log.Warn("console reopen failed", "err", err, "retry_in", backoff)
			continue
		}
		h.mu.Lock()
		if s.ctx.Err() != nil {
			h.mu.Unlock()
			rc.Close()
			return nil, backoff
		}
		s.rc = &onceCloser{rc: rc}
		gap := time.Since(lostAt)
		h.broadcastLocked(reconnectMarker(gap))
		h.mu.Unlock()
		h.stats.reconnects.Add(1)
		h.log.Info("console reopened", "gap", gap)
		return s.rc, backoff
	}
}

func (h *hub) broadcast(s *consoleSession, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess != s {
		return // a stopped session's last bytes
	}
	h.stats.bytes.Add(int64(len(p)))
	h.broadcastLocked(p)
}

func (h *hub) broadcastLocked(p []byte) {
	h.scrollback.write(p)
	for v := range h.viewers {
		if lost := v.deliver(p); lost > 0 {
			h.stats.dropped.Add(int64(lost))
		}
	}
}

// Viewer is one client's view of a node's console: an io.ReadCloser whose
// Read returns console bytes as they arrive, a drop marker where bytes were
// lost to a full ring, and an error (ErrTokenRevoked, ErrNodeDeleted,
// ErrShuttingDown, ErrViewerClosed) once it is disconnected.
type Viewer struct {
	hub  *hub
	wake chan struct{} // capacity 1: "something changed"
	done chan struct{} // closed when the viewer is disconnected

	mu      sync.Mutex
	ring    byteRing
	dropped int    // bytes lost since the last Read
	pending []byte // rest of a marker not yet read
	err     error  // set once the viewer is disconnected
}

// deliver queues p without blocking and returns how many bytes were lost.
func (v *Viewer) deliver(p []byte) int {
	v.mu.Lock()
	lost := 0
	if v.err == nil {
		lost = v.ring.write(p)
		v.dropped += lost
	}
	v.mu.Unlock()
	v.signal()
	return lost
}

func (v *Viewer) signal() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// end disconnects the viewer: Read returns reason at once, even with bytes
// still queued.
func (v *Viewer) end(reason error) {
	v.mu.Lock()
	if v.err == nil {
		v.err = reason
		close(v.done)
	}
	v.mu.Unlock()
	v.signal()
}

// Done is closed when the viewer is disconnected, for a caller blocked
// elsewhere than in Read (writing to a slow client, say).
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Read blocks until console bytes arrive or the viewer is disconnected.
func (v *Viewer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		v.mu.Lock()
		switch {
		case v.err != nil:
			err := v.err
			v.mu.Unlock()
			return 0, err
		case len(v.pending) > 0:
			n := copy(p, v.pending)
			v.pending = v.pending[n:]
			v.mu.Unlock()
			return n, nil
		case v.dropped > 0:
			// The lost bytes preceded everything still in the ring.
			v.pending = droppedMarker(v.dropped)
			v.dropped = 0
			v.mu.Unlock()
			continue
		case v.ring.len() > 0:
			n := v.ring.read(p)
			v.mu.Unlock()
			return n, nil
		}
		v.mu.Unlock()
		<-v.wake
	}
}

// Close disconnects the viewer. It is safe to call more than once and
// concurrently with Read.
func (v *Viewer) Close() error {
	v.end(ErrViewerClosed)
	v.hub.detach(v)
	return nil
}

// onceCloser makes a driver stream's Close idempotent: the hub may close it
// both to stop the session and after the stream ended by itself.
type onceCloser struct {
	rc   io.ReadCloser
	once sync.Once
	err  error
}

func (o *onceCloser) Read(p []byte) (int, error) { return o.rc.Read(p) }

func (o *onceCloser) Close() error {
	o.once.Do(func() { o.err = o.rc.Close() })
	return o.err
}
