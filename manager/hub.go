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
// number of viewers, and one ring per node holding the console's latest
// output (the scrollback, HubConfig.Scrollback bytes, allocated when the
// console first opens). A reader goroutine appends what the driver sends to
// the ring and wakes the viewers; it never waits for them. Each viewer is
// only a cursor into the ring (an absolute stream offset), and on waking it
// takes everything from its cursor to the head in one go: one write and one
// flush per wake-up, however many chunks arrived meanwhile, with no delay
// added. A viewer that falls more than the ring behind finds its cursor
// overwritten; it skips to the oldest byte held and, at that point of its
// stream, reads a marker line
//
//	\r\n[obmd: 12345 bytes dropped: viewer too slow]\r\n
//
// so the gap is visible. A slow viewer therefore never slows the BMC session
// or the other viewers; it skips ahead to recent output instead. (Blocking
// would stall everyone on the slowest reader; dropping silently would hide
// the gap.) ?replay=N is a cursor that starts N bytes back.
//
// A node changes hands when its token is replaced or revoked: that starts
// a new tenancy, and no viewer of the new one may read what the console
// printed before (HIL reassigns nodes between projects). The hub keeps the
// ring offset where the current tenancy began and never starts a cursor
// before it, whatever ?replay asks, across linger closes too; a deleted
// node's hub goes with it.
//
// The console is opened for the first viewer and closed Linger after the last
// one leaves, so that a reconnecting viewer does not cost a new SOL
// activation. If the driver's stream ends while viewers are connected (BMC
// reset, session lost), the hub reopens it with backoff and writes
//
//	\r\n[obmd: console reconnected after 1.2s]\r\n
//
// so viewers stay connected across the gap. The gap runs from the last
// sign of the console: the last byte read, or, for a driver stream that
// knows it (consoleLiveness), the last word from the BMC, whichever is
// later; not from when the end was noticed. A console reopened after a
// linger close, with earlier output still in the ring, is marked the same
// way ("console reopened after ..."), so a replay never glues the old
// session's last line to the new one's first. What a driver stream has to
// say about its opening (consoleNotes: a SOL instance taken over from
// another session, say) follows as marker lines too.

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
	// Scrollback is the size in bytes of the node's console ring (default
	// 64 KiB): it bounds ?replay=N and how far a viewer may fall behind
	// before it loses bytes.
	Scrollback int
	// KeepOpen keeps the console open whether or not anyone watches (for
	// console logs): it opens when the hub starts, never lingers to a
	// close, and is reopened after any failure, viewers or not (with a
	// longer backoff while nobody watches).
	KeepOpen bool
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Linger == 0 {
		c.Linger = 30 * time.Second
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.Scrollback <= 0 {
		c.Scrollback = 64 << 10
	}
	return c
}

// Reconnect backoff: the first reopen after a stream that stayed up for
// stableAfter is immediate; each failure or quick loss doubles the wait
// from backoffMin up to backoffMax.
//
// backoffMax bounds how late a console comes back after its BMC answers
// again (a BMC reboot takes from seconds to minutes, long enough to reach
// the cap): the BMC may come back just after an attempt's last
// retransmission, which then fails its remaining wait (at most 1.6 s with
// rmcpplus's default 1 s and 3 retries), and the next attempt follows
// after backoffMax. With 2 s that is under 4 s, inside the 5 s a console
// must be back in. Each attempt against a silent BMC costs four datagrams,
// so trying every 6 s or so costs nothing worth saving.
const (
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 2 * time.Second
	stableAfter = 10 * time.Second
)

func nextBackoff(d time.Duration) time.Duration {
	if d < backoffMin {
		return backoffMin
	}
	return min(2*d, backoffMax)
}

// idleBackoffMax caps the reopen backoff of a kept-open console nobody
// watches: a BMC that refuses obmd's password must not see a login every
// 2 s (many lock the user out after a few failures), and a viewer who
// arrives cuts the wait short.
const idleBackoffMax = 30 * time.Second

// nextBackoffLocked is nextBackoff, with idleBackoffMax while a kept-open
// console has no viewer; h.mu is held.
func (h *hub) nextBackoffLocked(d time.Duration) time.Duration {
	if !h.cfg.KeepOpen || len(h.viewers) > 0 {
		return nextBackoff(d)
	}
	if d < backoffMin {
		return backoffMin
	}
	return min(2*d, idleBackoffMax)
}

// readChunk is the reader's buffer: SOL delivers at most a few hundred
// bytes per packet, so larger buffers would only cost memory per node.
const readChunk = 4 << 10

// copyBufs lend Viewer.WriteTo a buffer only while it writes, so that an
// idle viewer holds none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func reconnectMarker(gap time.Duration) []byte {
	return fmt.Appendf(nil, "\r\n[obmd: console reconnected after %s]\r\n", gap.Round(time.Millisecond))
}

func reopenMarker(gap time.Duration) []byte {
	return fmt.Appendf(nil, "\r\n[obmd: console reopened after %s]\r\n", gap.Round(time.Millisecond))
}

// consoleLiveness is implemented by driver streams that know when the BMC
// last sent anything on the console, output or not (the ipmi driver's SOL
// console hears from it at least once per keepalive).
type consoleLiveness interface{ LastHeard() time.Time }

// consoleNotes is implemented by driver streams with something to tell
// viewers about how they opened; each note becomes a marker line.
type consoleNotes interface{ Notes() []string }

// appendNotesLocked writes rc's notes, if any, as marker lines. Callers
// hold h.mu.
func (h *hub) appendNotesLocked(rc io.ReadCloser) {
	if n, ok := rc.(consoleNotes); ok {
		for _, note := range n.Notes() {
			h.appendLocked(fmt.Appendf(nil, "\r\n[obmd: %s]\r\n", note))
		}
	}
}

// lastSign is when the console last showed life: its last byte, the
// stream's opening, or its last word from the BMC, whichever is latest.
func (h *hub) lastSign(rc io.ReadCloser, openedAt time.Time) time.Time {
	h.mu.Lock()
	t := h.lastOutput
	h.mu.Unlock()
	if openedAt.After(t) {
		t = openedAt
	}
	if l, ok := rc.(consoleLiveness); ok {
		if heard := l.LastHeard(); heard.After(t) {
			t = heard
		}
	}
	return t
}

// consoleStats are counters shared by all hubs of a Manager.
type consoleStats struct {
	viewers    atomic.Int64
	bytes      atomic.Int64 // read from drivers
	dropped    atomic.Int64 // skipped by viewers the writer overtook
	viewerGaps atomic.Int64 // drop markers, one per skip
	reconnects atomic.Int64
	lost       atomic.Int64 // streams that ended while wanted
	gapNanos   atomic.Int64 // time without output, from loss to reopen
}

// hub fans one node's console out to its viewers.
type hub struct {
	cfg   HubConfig
	open  func(ctx context.Context) (io.ReadCloser, error)
	log   *slog.Logger
	stats *consoleStats

	mu       sync.Mutex // guards the fields below; taken before ringMu
	viewers  map[*Viewer]struct{}
	sess     *consoleSession // nil when no console is open or opening
	lastDone chan struct{}   // closed when the latest session has stopped
	linger   *time.Timer
	closed   error // why the hub was closed, or nil
	// tenancyFrom is the ring offset where the current tenancy began: no
	// cursor starts before it.
	tenancyFrom uint64
	// For status: output read, and the stream's reconnections.
	readBytes     uint64
	lastOutput    time.Time // when the last byte was read
	reconnecting  bool
	reconnects    int64
	lastReconnect time.Time

	// The console ring: the reader writes under ringMu, viewers read under
	// its read lock. A viewer that finds nothing to read takes wake and sets
	// waiting; the next append closes that channel (waking every such
	// viewer at once) and puts a fresh one in its place.
	ringMu  sync.RWMutex
	ring    consoleRing // no buffer (and no bytes) until the console first opens
	wake    chan struct{}
	waiting atomic.Bool

	// recorder, if set, gets every byte the ring gets and the tenancy
	// boundaries, in order, under mu (the node's console log).
	recorder consoleRecorder
	// With KeepOpen: retry restarts the console after a failed first open
	// (openBackoff later); poke cuts a reopen's backoff short when a
	// viewer arrives. Guarded by mu.
	retry       *time.Timer
	openBackoff time.Duration
	poke        chan struct{}

	// The input path (hubinput.go): inputSlot holds one token while a
	// writer uses the stream; streamCh (guarded by mu) is closed and
	// replaced whenever the stream opens, ends, reopens or stops.
	inputSlot chan struct{}
	streamCh  chan struct{}
}

// consoleRecorder receives a node's console output and its tenancy
// boundaries in order. The hub calls it with its lock held, from the
// reader goroutine: it must never block (see consolelog.go).
type consoleRecorder interface {
	record(p []byte, at time.Time)
	newTenancy(at time.Time)
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
		cfg:       cfg,
		open:      open,
		log:       log,
		stats:     stats,
		viewers:   make(map[*Viewer]struct{}),
		wake:      make(chan struct{}),
		poke:      make(chan struct{}, 1),
		inputSlot: make(chan struct{}, 1),
		streamCh:  make(chan struct{}),
	}
}

// keepOpen starts a KeepOpen hub's console (nothing if it runs already).
func (h *hub) keepOpen() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg.KeepOpen && h.closed == nil && h.sess == nil {
		h.startSessionLocked()
	}
}

// startSessionLocked starts a console session; h.mu is held.
func (h *hub) startSessionLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	s := &consoleSession{ctx: ctx, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	prev := h.lastDone
	h.sess, h.lastDone = s, s.done
	go h.run(s, prev)
}

// join adds a viewer whose cursor starts up to replay bytes back in the
// ring, and starts the console if it is not running. It never blocks on the
// driver, so callers may hold the node's lock (token checks and revocations
// are atomic with respect to joining).
func (h *hub) join(replay int) (*Viewer, *consoleSession, error) {
	return h.joinAs(replay, false)
}

// joinAs is join for a viewer that is another cluster instance's stream
// (forwarded) or a client's.
func (h *hub) joinAs(replay int, forwarded bool) (*Viewer, *consoleSession, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		return nil, nil, h.closed
	}
	h.ringMu.RLock()
	start := max(h.ring.replayFrom(replay), h.tenancyFrom)
	h.ringMu.RUnlock()
	v := &Viewer{hub: h, cursor: ringCursor{off: start}, forwarded: forwarded}
	v.ended, v.setEnded = context.WithCancel(context.Background())
	h.viewers[v] = struct{}{}
	h.stats.viewers.Add(1)
	if h.linger != nil {
		h.linger.Stop()
		h.linger = nil
	}
	if h.sess == nil {
		h.startSessionLocked()
	} else if len(h.viewers) == 1 {
		select {
		case h.poke <- struct{}{}: // a reopen waiting out an idle backoff tries now
		default:
		}
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
	if h.cfg.KeepOpen || len(h.viewers) > 0 || h.sess == nil || h.linger != nil || h.closed != nil {
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
	h.notifyStreamLocked()
	if s.rc != nil {
		go s.rc.Close() // a driver's Close may talk to the BMC: not under h.mu
	}
}

// newTenancy disconnects every client's viewer with reason and starts a
// new tenancy: later viewers cannot replay anything printed before now.
// The console lingers.
func (h *hub) newTenancy(reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Another instance's stream stays: that instance applies the same
	// change to its own viewers (and its own scrollback boundary), and
	// what it streams from now on is the new tenancy's. Cutting it would
	// only make its new tenant's viewers see a reconnect.
	h.kickLocked(reason, true)
	// Bytes reach the ring only under h.mu, so head is the boundary: what
	// the reader appends from now on belongs to the new tenancy.
	h.tenancyFrom = h.ring.head
	if h.recorder != nil {
		h.recorder.newTenancy(time.Now())
	}
	if s := h.sess; s != nil && len(h.viewers) == 0 && !h.cfg.KeepOpen {
		select {
		case <-s.ready:
		default:
			// Still opening, for viewers who are gone: stop it rather than
			// leave a BMC console open (and lingering) for nobody.
			h.stopSessionLocked()
			return
		}
	}
	h.maybeLingerLocked()
}

// kickLocked disconnects the viewers with reason (but other instances'
// streams if spareForwarded) and drops the input they queued.
func (h *hub) kickLocked(reason error, spareForwarded bool) {
	for v := range h.viewers {
		if spareForwarded && v.forwarded {
			continue
		}
		v.end(reason)
		delete(h.viewers, v)
		h.stats.viewers.Add(-1)
	}
	h.discardInputLocked() // every writer's tenancy ended with it
}

// refuse disconnects every viewer with reason and refuses new ones; the
// console stream itself is left to close.
func (h *hub) refuse(reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed == nil {
		h.closed = reason
	}
	h.kickLocked(reason, false)
}

// close disconnects every viewer with reason, refuses new ones, stops the
// console and waits until its stream is closed or ctx is done.
func (h *hub) close(ctx context.Context, reason error) error {
	h.mu.Lock()
	if h.closed == nil {
		h.closed = reason
	}
	h.kickLocked(reason, false)
	if h.linger != nil {
		h.linger.Stop()
		h.linger = nil
	}
	if h.retry != nil {
		h.retry.Stop()
		h.retry = nil
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

// status reports the hub's state for the admin.
func (h *hub) status() ConsoleStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := ConsoleStatus{State: "closed", Viewers: len(h.viewers), Bytes: h.readBytes,
		Reconnects: h.reconnects, LastReconnect: h.lastReconnect}
	if s := h.sess; s != nil {
		select {
		case <-s.ready:
			st.State = "open"
			if h.reconnecting {
				st.State = "reconnecting"
			}
		default:
			st.State = "opening"
		}
	}
	return st
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
		h.notifyStreamLocked()
		if h.sess == s {
			h.sess = nil
			h.kickLocked(err, false)
			if retryable(err) {
				h.retryLocked()
			}
		}
		h.mu.Unlock()
		h.log.Warn("console open failed", "err", err)
		return
	}
	h.openBackoff = 0
	s.rc = &onceCloser{rc: rc}
	if h.ring.buf == nil {
		// The first open: from now on the node keeps its scrollback, across
		// linger closes, for ?replay.
		h.ringMu.Lock()
		h.ring = newConsoleRing(h.cfg.Scrollback)
		h.ringMu.Unlock()
	} else if h.ring.head > h.tenancyFrom {
		// Output of an earlier session is still replayable: mark where
		// this one starts.
		h.appendLocked(reopenMarker(time.Since(h.lastOutput)))
	}
	h.appendNotesLocked(rc)
	close(s.ready)
	h.notifyStreamLocked()
	h.mu.Unlock()
	h.log.Info("console opened")

	buf := make([]byte, readChunk)
	backoff := time.Duration(0)
	openedAt := time.Now()
	cur := s.rc
	for {
		n, err := cur.Read(buf)
		if n > 0 {
			h.append(s, buf[:n])
		}
		if err == nil {
			continue
		}
		cur.Close()
		if s.ctx.Err() != nil {
			h.log.Info("console closed")
			return
		}
		since := h.lastSign(cur.rc, openedAt)
		h.log.Warn("console stream ended; reopening", "err", err)
		h.stats.lost.Add(1)
		h.mu.Lock()
		h.reconnecting = true
		h.notifyStreamLocked()
		if time.Since(openedAt) >= stableAfter {
			backoff = 0
		} else {
			backoff = h.nextBackoffLocked(backoff)
		}
		h.mu.Unlock()
		cur, backoff = h.reopen(s, backoff, since)
		if cur == nil {
			return
		}
		openedAt = time.Now()
	}
}

// reopen reopens the session's stream after it ended, waiting backoff
// before the first attempt and longer after each failure. It gives up
// (returning nil) when the session stops or no viewer is left. lostAt is
// the console's last sign of life, where the gap its marker reports
// starts.
func (h *hub) reopen(s *consoleSession, backoff time.Duration, lostAt time.Time) (*onceCloser, time.Duration) {
	for {
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-h.poke:
				t.Stop()
			case <-s.ctx.Done():
				t.Stop()
				return nil, backoff
			}
		}
		h.mu.Lock()
		if h.sess == s && len(h.viewers) == 0 && !h.cfg.KeepOpen {
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
			h.mu.Lock()
			backoff = h.nextBackoffLocked(backoff)
			h.mu.Unlock()
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
		h.appendLocked(reconnectMarker(gap))
		h.appendNotesLocked(rc)
		h.reconnecting = false
		h.notifyStreamLocked()
		h.reconnects++
		h.lastReconnect = time.Now().UTC()
		h.mu.Unlock()
		h.stats.reconnects.Add(1)
		h.stats.gapNanos.Add(int64(gap))
		h.log.Info("console reopened", "gap", gap)
		return s.rc, backoff
	}
}

// retryable reports whether a console that failed to open may open on a
// later try: not when the driver cannot open one at all (a node type
// without a console, a stored node without a working driver).
func retryable(err error) bool {
	return !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrInternal) &&
		!errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound)
}

// retryLocked schedules a KeepOpen hub's next attempt after its console
// failed to open; h.mu is held. A viewer who joins meanwhile starts one at
// once (join), and the timer then finds the session running.
func (h *hub) retryLocked() {
	if !h.cfg.KeepOpen || h.closed != nil {
		return
	}
	h.openBackoff = h.nextBackoffLocked(h.openBackoff)
	if h.retry != nil {
		h.retry.Stop()
	}
	h.retry = time.AfterFunc(h.openBackoff, func() {
		h.mu.Lock()
		h.retry = nil
		h.mu.Unlock()
		h.keepOpen()
	})
}

// append adds a chunk read by session s to the ring.
func (h *hub) append(s *consoleSession, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess != s {
		return // a stopped session's last bytes
	}
	h.stats.bytes.Add(int64(len(p)))
	h.readBytes += uint64(len(p))
	h.lastOutput = time.Now()
	h.appendLocked(p)
}

// appendLocked writes p to the ring and wakes the viewers waiting for it.
// It never waits for a viewer: only for viewers copying out of the ring,
// which they do without blocking. Callers hold h.mu.
func (h *hub) appendLocked(p []byte) {
	if h.recorder != nil {
		h.recorder.record(p, time.Now())
	}
	var woken chan struct{}
	h.ringMu.Lock()
	h.ring.write(p)
	if h.waiting.Swap(false) {
		woken, h.wake = h.wake, make(chan struct{})
	}
	h.ringMu.Unlock()
	if woken != nil {
		close(woken) // outside ringMu: the woken viewers go straight to reading
	}
}

// Viewer is one client's view of a node's console: a cursor into the node's
// console ring. Read (or WriteTo) returns console bytes as they arrive, a
// drop marker where the viewer fell so far behind that its bytes were
// overwritten, and an error (ErrTokenRevoked, ErrNodeDeleted,
// ErrShuttingDown, ErrViewerClosed) once it is disconnected.
type Viewer struct {
	hub *hub
	// forwarded: the viewer is another cluster instance's stream, which a
	// new tenancy leaves be (newTenancy).
	forwarded bool
	// ended is cancelled when the viewer is disconnected: a context rather
	// than a channel so that AfterEnd needs no goroutine per viewer.
	ended    context.Context
	setEnded context.CancelFunc

	mu     sync.Mutex
	cursor ringCursor
	err    error // set once the viewer is disconnected
}

// readNow fills p with what the viewer can read at once (marker included).
// With nothing to read it returns the channel the next append closes; an
// error means the viewer is disconnected, even with bytes still unread.
func (v *Viewer) readNow(p []byte) (int, <-chan struct{}, error) {
	h := v.hub
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return 0, nil, v.err
	}
	h.ringMu.RLock()
	n, skipped := v.cursor.read(&h.ring, p)
	var wake chan struct{}
	if n == 0 {
		// Under the read lock no append can slip between the check and
		// taking the channel: that append will see waiting and close it.
		wake = h.wake
		h.waiting.Store(true)
	}
	h.ringMu.RUnlock()
	if skipped > 0 {
		h.stats.dropped.Add(int64(skipped))
		h.stats.viewerGaps.Add(1)
	}
	return n, wake, nil
}

// wait blocks until wake is closed or the viewer is disconnected.
func (v *Viewer) wait(wake <-chan struct{}) {
	select {
	case <-wake:
	case <-v.ended.Done():
	}
}

// end disconnects the viewer: Read returns reason at once, even with bytes
// still unread.
func (v *Viewer) end(reason error) {
	v.mu.Lock()
	if v.err == nil {
		v.err = reason
		v.setEnded()
	}
	v.mu.Unlock()
}

// Done is closed when the viewer is disconnected, for a caller blocked
// elsewhere than in Read (writing to a slow client, say).
func (v *Viewer) Done() <-chan struct{} { return v.ended.Done() }

// Err says why the viewer was disconnected, or nil while it is connected.
func (v *Viewer) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// AfterEnd arranges for f to run in its own goroutine once the viewer is
// disconnected, as context.AfterFunc does: stop cancels that, reporting
// false if f has already been started. Unlike a goroutine waiting on Done,
// it costs no stack while the viewer is connected.
func (v *Viewer) AfterEnd(f func()) (stop func() bool) {
	return context.AfterFunc(v.ended, f)
}

// Read blocks until console bytes arrive or the viewer is disconnected, and
// then returns as much as is ready and fits in p.
func (v *Viewer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, wake, err := v.readNow(p)
		if n > 0 || err != nil {
			return n, err
		}
		v.wait(wake)
	}
}

// WriteTo streams the console to w until the viewer is disconnected (the
// error says why) or a write fails. Each time it wakes it writes everything
// between its cursor and the ring's head, in one Write unless that exceeds
// a pooled 4 KiB buffer, and then calls w's Flush() error method, if it has
// one, once. Bytes that arrive while a write is in progress join the next
// batch; nothing is held back to wait for more. The buffer is borrowed only
// while writing, so an idle viewer holds none, and a write that blocks
// never blocks the console's reader or the other viewers.
func (v *Viewer) WriteTo(w io.Writer) (int64, error) {
	flusher, _ := w.(interface{ Flush() error })
	var total int64
	for {
		bp := copyBufs.Get().(*[]byte)
		buf := *bp
		n, wake, err := v.readNow(buf)
		wrote := n > 0
		for n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				copyBufs.Put(bp)
				return total, werr
			}
			if n < len(buf) {
				break // drained up to the head as it was then
			}
			n, _, err = v.readNow(buf)
		}
		copyBufs.Put(bp)
		switch {
		case err != nil:
			return total, err
		case !wrote:
			v.wait(wake)
		case flusher != nil:
			if err := flusher.Flush(); err != nil {
				return total, err
			}
		}
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
