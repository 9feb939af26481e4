package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func newTestHub(cfg HubConfig, d *fakeDriver) (*hub, *consoleStats) {
	stats := &consoleStats{}
	return newHub(cfg, d.OpenConsole, slog.New(slog.DiscardHandler), stats), stats
}

func attach(t *testing.T, h *hub, replay int) *Viewer {
	t.Helper()
	v, s, err := h.join(replay)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if err := h.wait(context.Background(), v, s); err != nil {
		t.Fatalf("wait: %v", err)
	}
	return v
}

func pseudoRandom(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readAll reads exactly n bytes or fails the test after a generous bound
// (a hang means the hub lost or withheld bytes).
func readExactly(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(r, buf); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("reading %d bytes: timed out", n)
	}
	return buf
}

// TestHubFanOut: many viewers, one driver console, identical bytes.
func TestHubFanOut(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, stats := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)

	const viewers = 20
	vs := make([]*Viewer, viewers)
	for i := range vs {
		vs[i] = attach(t, h, 0)
	}
	if got := stats.viewers.Load(); got != viewers {
		t.Fatalf("viewer gauge = %d, want %d", got, viewers)
	}
	stream := <-d.opened
	// Less than the node's ring, so no viewer can lose bytes however the
	// scheduler treats it.
	data := pseudoRandom(48<<10, 1)
	var wg sync.WaitGroup
	got := make([][]byte, viewers)
	for i, v := range vs {
		wg.Go(func() { got[i] = readExactly(t, v, len(data)) })
	}
	for off := 0; off < len(data); off += 1000 {
		if _, err := stream.w.Write(data[off:min(off+1000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], data) {
			t.Fatalf("viewer %d got different bytes", i)
		}
	}
	if n := len(d.streams); n != 1 {
		t.Errorf("%d driver consoles opened for %d viewers, want 1", n, viewers)
	}
	if stats.bytes.Load() != int64(len(data)) || stats.dropped.Load() != 0 {
		t.Errorf("stats: %d bytes, %d dropped; want %d, 0", stats.bytes.Load(), stats.dropped.Load(), len(data))
	}
}

// TestHubSlowViewer: a viewer that never reads is overtaken: it loses its
// oldest bytes and then reads the drop marker followed by the newest
// ring-full; the console and the other viewer are never held up.
func TestHubSlowViewer(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	const ring = 1024
	h, stats := newTestHub(HubConfig{Scrollback: ring}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	stalled := attach(t, h, 0)
	brisk := attach(t, h, 0)
	stream := <-d.opened

	data := pseudoRandom(10*ring, 2)
	const chunk = 512
	for off := 0; off < len(data); off += chunk {
		// The driver's write returns once the hub has taken the bytes,
		// although the stalled viewer has read nothing.
		if _, err := stream.w.Write(data[off : off+chunk]); err != nil {
			t.Fatal(err)
		}
		if got := readExactly(t, brisk, chunk); !bytes.Equal(got, data[off:off+chunk]) {
			t.Fatalf("brisk viewer: wrong bytes at offset %d", off)
		}
	}
	marker := "\r\n[obmd: 9216 bytes dropped: viewer too slow]\r\n"
	want := append([]byte(marker), data[len(data)-ring:]...)
	if got := readExactly(t, stalled, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("stalled viewer read %q..., want the marker %q then the last %d bytes", got[:min(len(got), len(marker))], marker, ring)
	}
	if stats.dropped.Load() != 9216 || stats.viewerGaps.Load() != 1 {
		t.Errorf("dropped counter = %d in %d gaps, want 9216 in 1", stats.dropped.Load(), stats.viewerGaps.Load())
	}
}

// TestHubMarkerSurvivesShortReads reads the drop marker one byte at a time.
func TestHubMarkerSurvivesShortReads(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{Scrollback: 4}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	v := attach(t, h, 0)
	stream := <-d.opened
	if _, err := stream.w.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	want := "\r\n[obmd: 6 bytes dropped: viewer too slow]\r\n6789"
	var got []byte
	for len(got) < len(want) {
		got = append(got, readExactly(t, v, 1)...)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHubReplay(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	first := attach(t, h, 0)
	stream := <-d.opened
	if _, err := stream.w.Write([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, first, len("hello world")) // broadcast has happened

	late := attach(t, h, 5)
	plain := attach(t, h, 0)
	if _, err := stream.w.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if got := string(readExactly(t, late, 6)); got != "world!" {
		t.Errorf("viewer with replay=5 read %q, want \"world!\"", got)
	}
	if got := string(readExactly(t, plain, 1)); got != "!" {
		t.Errorf("viewer without replay read %q, want \"!\"", got)
	}
	huge := attach(t, h, 1<<30)
	if _, err := stream.w.Write([]byte("?")); err != nil {
		t.Fatal(err)
	}
	if got := string(readExactly(t, huge, 13)); got != "hello world!?" {
		t.Errorf("viewer with a huge replay read %q", got)
	}
}

// TestHubReconnect: when the driver's stream ends, viewers stay connected
// and read a marker naming the gap; backoff applies after a quick loss and
// after failed reopens.
func TestHubReconnect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		uptime   time.Duration // how long the first stream runs
		openErrs []error       // for the opens after the first
		marker   string
		gap      time.Duration
	}{
		{"stable stream reopens at once", 11 * time.Second, nil,
			"\r\n[obmd: console reconnected after 0s]\r\n", 0},
		{"quick loss waits 100ms", time.Second, nil,
			"\r\n[obmd: console reconnected after 100ms]\r\n", 100 * time.Millisecond},
		{"failed reopen backs off", time.Second, []error{errScripted},
			"\r\n[obmd: console reconnected after 300ms]\r\n", 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newFakeDriver("x")
				d.openErrs = append([]error{nil}, tc.openErrs...)
				h, stats := newTestHub(HubConfig{}, d)
				v := attach(t, h, 0)
				s1 := <-d.opened
				time.Sleep(tc.uptime)
				s1.w.Write([]byte("abc"))
				s1.w.Close() // BMC reset: the stream ends
				s2 := <-d.opened
				go s2.w.Write([]byte("def"))
				want := "abc" + tc.marker + "def"
				got := make([]byte, len(want))
				if _, err := io.ReadFull(v, got); err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Fatalf("viewer read %q, want %q", got, want)
				}
				if stats.reconnects.Load() != 1 || stats.lost.Load() != 1 {
					t.Errorf("reconnects = %d after %d streams lost, want 1 and 1", stats.reconnects.Load(), stats.lost.Load())
				}
				if gap := time.Duration(stats.gapNanos.Load()); gap != tc.gap {
					t.Errorf("gap counted = %v, want %v", gap, tc.gap)
				}
				h.close(context.Background(), ErrShuttingDown)
			})
		})
	}
}

func TestHubLinger(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		h, _ := newTestHub(HubConfig{Linger: 30 * time.Second}, d)
		v := attach(t, h, 0)
		s1 := <-d.opened
		v.Close()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		select {
		case <-s1.closed:
			t.Fatal("console closed before the linger time")
		default:
		}
		v = attach(t, h, 0) // reuses the open console
		select {
		case <-d.opened:
			t.Fatal("a viewer within the linger time opened a second console")
		default:
		}
		v.Close()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		select {
		case <-s1.closed:
		default:
			t.Fatal("console still open after the linger time")
		}
		attach(t, h, 0)
		<-d.opened // a new viewer opens a new console
		h.close(context.Background(), ErrShuttingDown)
	})
}

// TestHubNoReconnectWithoutViewers: a stream that ends while nobody
// watches is not reopened.
func TestHubNoReconnectWithoutViewers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		h, _ := newTestHub(HubConfig{Linger: time.Minute}, d)
		v := attach(t, h, 0)
		s1 := <-d.opened
		v.Close()
		s1.w.Close()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		select {
		case <-d.opened:
			t.Fatal("console reopened with no viewer")
		default:
		}
		h.close(context.Background(), ErrShuttingDown)
	})
}

func TestHubOpenFailure(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	d.openErrs = []error{BMCError("activate payload", errScripted)}
	h, stats := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	v, s, err := h.join(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.wait(context.Background(), v, s); !errors.Is(err, ErrBMC) {
		t.Fatalf("first viewer of a console that cannot open: %v, want ErrBMC", err)
	}
	if stats.viewers.Load() != 0 {
		t.Errorf("viewer gauge = %d after a failed open, want 0", stats.viewers.Load())
	}
	attach(t, h, 0) // the next viewer tries again
	<-d.opened
}

func TestHubClose(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	v := attach(t, h, 0)
	s := <-d.opened
	if err := h.close(context.Background(), ErrNodeDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Read(make([]byte, 1)); !errors.Is(err, ErrNodeDeleted) {
		t.Errorf("Read after close = %v, want ErrNodeDeleted", err)
	}
	select {
	case <-s.closed:
	default:
		t.Error("close returned with the driver stream still open")
	}
	if _, _, err := h.join(0); !errors.Is(err, ErrNodeDeleted) {
		t.Errorf("join after close = %v, want ErrNodeDeleted", err)
	}
}

// TestViewersDisconnectQuickly: a new token, a revocation and a deletion
// each end the node's console streams at once. In a synctest bubble time
// stands still while goroutines run, so "at once" is exact: a viewer that
// ended only when some timer fired (a write timeout, a poll) would end
// after a fake delay, which the test refuses.
func TestViewersDisconnectQuickly(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		action func(m *Manager) error
		want   error
	}{
		{"new token", func(m *Manager) error { _, err := m.NewToken("n"); return err }, ErrTokenRevoked},
		{"revoked token", func(m *Manager) error { return m.RevokeToken("n") }, ErrTokenRevoked},
		{"deleted node", func(m *Manager) error { return m.Delete(context.Background(), "n") }, ErrNodeDeleted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { viewersDisconnectAtOnce(t, tc.action, tc.want, tc.name) })
		})
	}
}

func viewersDisconnectAtOnce(t *testing.T, action func(m *Manager) error, want error, name string) {
	m := newTestManager(t, newMemStore(), newFakeRegistry(t).Registry, time.Second)
	registerT(t, m, "n", "mock", json.RawMessage(`{"addr":"x"}`))
	a := mustAccess(t, m, "n", mustToken(t, m, "n"))
	viewers := make([]*Viewer, 3)
	for i := range viewers {
		v, err := a.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		viewers[i] = v
	}
	type end struct {
		err error
		at  time.Time
	}
	ends := make(chan end, len(viewers))
	for _, v := range viewers {
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := v.Read(buf); err != nil {
					ends <- end{err, time.Now()}
					return
				}
			}
		}()
	}
	start := time.Now()
	if err := action(m); err != nil {
		t.Fatal(err)
	}
	for range viewers {
		select {
		case e := <-ends:
			if !errors.Is(e.err, want) {
				t.Errorf("viewer ended with %v, want %v", e.err, want)
			}
			if d := e.at.Sub(start); d != 0 {
				t.Errorf("viewer disconnected %v (fake time) after the %s: it waited for a timer", d, name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("viewer still connected 5s after the %s", name)
		}
	}
	if _, err := a.OpenConsole(context.Background(), 0); err == nil {
		t.Error("the old access opened a console after the change")
	}
	m.Close(context.Background()) // within the bubble: the lingering console ends
	time.Sleep(time.Second)       // fake time: the mock's generator sees its pipe closed at its next tick
}

// TestHubNegativeLingerClosesAtOnce: Linger < 0 closes the console as soon
// as the last viewer leaves.
func TestHubNegativeLingerClosesAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		h, _ := newTestHub(HubConfig{Linger: -1}, d)
		v := attach(t, h, 0)
		s1 := <-d.opened
		v.Close()
		synctest.Wait()
		select {
		case <-s1.closed:
		default:
			t.Fatal("console still open after its last viewer left with Linger -1")
		}
		h.close(context.Background(), ErrShuttingDown)
	})
}

// recordingWriter is a viewer's client as WriteTo sees it: it records each
// Write and Flush, and reports flushes on flushed. Until release is closed
// (when it is non-nil) a Write records its bytes and then blocks, like a
// client that stopped reading.
type recordingWriter struct {
	mu      sync.Mutex
	writes  []string
	flushes int
	flushed chan int      // the number of bytes written so far, at each Flush
	writing chan struct{} // a token per Write, sent before it blocks
	release chan struct{}
}

func newRecordingWriter() *recordingWriter {
	return &recordingWriter{flushed: make(chan int, 1024), writing: make(chan struct{}, 1024)}
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	w.writing <- struct{}{}
	if w.release != nil {
		<-w.release
	}
	return len(p), nil
}

func (w *recordingWriter) Flush() error {
	w.mu.Lock()
	w.flushes++
	n := len(strings.Join(w.writes, ""))
	w.mu.Unlock()
	w.flushed <- n
	return nil
}

func (w *recordingWriter) record() (writes []string, flushes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes), w.flushes
}

// awaitFlush waits for the next Flush and returns the bytes written so far.
func (w *recordingWriter) awaitFlush(t *testing.T) int {
	t.Helper()
	select {
	case n := <-w.flushed:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo did not flush within 10s")
		return 0
	}
}

// TestViewerWriteToBatches: whatever arrived while a viewer was not
// writing goes out as one Write followed by one Flush; WriteTo ends with
// the viewer's disconnection reason.
func TestViewerWriteToBatches(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	v := attach(t, h, 0)
	stream := <-d.opened
	for _, chunk := range []string{"one ", "two ", "three "} {
		// The pipe's Write returns once the hub has read the chunk, so all
		// three are in the ring before WriteTo starts.
		if _, err := stream.w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w := newRecordingWriter()
	ended := make(chan error, 1)
	go func() { _, err := v.WriteTo(w); ended <- err }()
	w.awaitFlush(t)
	if writes, flushes := w.record(); !slices.Equal(writes, []string{"one two three "}) || flushes != 1 {
		t.Fatalf("three chunks waiting: writes %q and %d flushes, want one write and one flush", writes, flushes)
	}
	if _, err := stream.w.Write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	w.awaitFlush(t)
	if writes, flushes := w.record(); !slices.Equal(writes, []string{"one two three ", "four"}) || flushes != 2 {
		t.Fatalf("one more chunk: writes %q and %d flushes, want a second write and flush", writes, flushes)
	}
	h.newTenancy(ErrTokenRevoked)
	select {
	case err := <-ended:
		if !errors.Is(err, ErrTokenRevoked) {
			t.Errorf("WriteTo ended with %v, want ErrTokenRevoked", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo still running 10s after the viewer was kicked")
	}
}

// TestViewerWriteToStalledClient: a viewer whose client stops reading in
// the middle of a write holds up neither the console nor another viewer;
// once the client reads again it gets what it was writing, the exact drop
// marker, and the ring's newest bytes.
func TestViewerWriteToStalledClient(t *testing.T) {
	t.Parallel()
	const ring, chunk, chunks = 1024, 512, 20
	d := newFakeDriver("x")
	h, stats := newTestHub(HubConfig{Scrollback: ring}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	stalled := attach(t, h, 0)
	brisk := attach(t, h, 0)
	stream := <-d.opened
	data := make([]byte, chunk*chunks)
	for i := range data {
		data[i] = streamByte(uint64(i))
	}

	w := newRecordingWriter()
	w.release = make(chan struct{})
	go stalled.WriteTo(w)
	for off := 0; off < len(data); off += chunk {
		if _, err := stream.w.Write(data[off : off+chunk]); err != nil {
			t.Fatal(err)
		}
		if got := readExactly(t, brisk, chunk); !bytes.Equal(got, data[off:off+chunk]) {
			t.Fatalf("brisk viewer: wrong bytes at offset %d", off)
		}
		if off == 0 {
			<-w.writing // the stalled client is stuck writing the first chunk
		}
	}
	writes, _ := w.record()
	if len(writes) != 1 || writes[0] != string(data[:chunk]) {
		t.Fatalf("the stalled client got %d writes, want 1 (the first chunk, blocked)", len(writes))
	}
	close(w.release)
	first := chunk
	lost := len(data) - ring - first
	want := string(data[:first]) + marker(lost) + string(data[len(data)-ring:])
	for w.awaitFlush(t) < len(want) {
	}
	writes, _ = w.record()
	if got := strings.Join(writes, ""); got != want {
		t.Fatalf("stalled client read %d bytes, want the %d it was writing, %q and the last %d bytes", len(got), first, marker(lost), ring)
	}
	if stats.dropped.Load() != int64(lost) {
		t.Errorf("dropped counter = %d, want %d", stats.dropped.Load(), lost)
	}
}

// TestHubRingAllocatedOnOpen: a node's ring exists only once its console
// has opened; a console that fails to open costs none.
func TestHubRingAllocatedOnOpen(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	d.openErrs = []error{BMCError("activate payload", errScripted)}
	h, _ := newTestHub(HubConfig{Scrollback: 4096}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	ringSize := func() int {
		h.ringMu.RLock()
		defer h.ringMu.RUnlock()
		return len(h.ring.buf)
	}
	if n := ringSize(); n != 0 {
		t.Fatalf("a new hub has a %d-byte ring, want none", n)
	}
	v, s, err := h.join(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.wait(context.Background(), v, s); err == nil {
		t.Fatal("the scripted open failure did not fail the viewer")
	}
	if n := ringSize(); n != 0 {
		t.Fatalf("after a failed open the hub has a %d-byte ring, want none", n)
	}
	attach(t, h, 0)
	<-d.opened
	if n := ringSize(); n != 4096 {
		t.Fatalf("after the console opened the ring is %d bytes, want 4096", n)
	}
}

// TestViewerAfterEnd: AfterEnd's function runs when the viewer is
// disconnected, not before; a stopped one is reported as not started.
func TestViewerAfterEnd(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	a, b := attach(t, h, 0), attach(t, h, 0)
	ran := make(chan string, 2)
	a.AfterEnd(func() { ran <- "a" })
	stop := b.AfterEnd(func() { ran <- "b" })
	select {
	case who := <-ran:
		t.Fatalf("AfterEnd of %s ran while connected", who)
	default:
	}
	if !stop() {
		t.Fatal("stopping b's AfterEnd reported it had already run")
	}
	h.newTenancy(ErrNodeDeleted)
	if who := <-ran; who != "a" {
		t.Fatalf("AfterEnd of %s ran, want a", who)
	}
	if err := a.Err(); !errors.Is(err, ErrNodeDeleted) {
		t.Errorf("Err() = %v, want ErrNodeDeleted", err)
	}
	if stop() {
		t.Error("b's AfterEnd could be stopped twice")
	}
}

// TestHubMemory bounds what the hub keeps per idle viewer and per node
// (with one viewer) once the console has carried output: the node's ring
// and a small read buffer, and per viewer a cursor, nowhere near a ring.
// The stack of the goroutine draining each viewer is reported, not
// bounded: in obmd it is the HTTP connection's goroutine.
func TestHubMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 1,200 viewers")
	}
	hubMemory(t) // warm up: the runtime keeps goroutines' structures for reuse
	perViewer, perNode := hubMemory(t)
	t.Logf("per idle viewer: %d B heap, %d B stack; per node with one viewer: %d B heap, %d B stack",
		perViewer.heap, perViewer.stack, perNode.heap, perNode.stack)
	if perViewer.heap > 1<<10 {
		t.Errorf("an idle viewer costs %d B of heap, want at most 1 KiB", perViewer.heap)
	}
	if limit := int64(64<<10 + 12<<10); perNode.heap > limit {
		t.Errorf("a node with one viewer costs %d B of heap, want at most the 64 KiB ring + 12 KiB", perNode.heap)
	}
}

// TestHubNewTenancyHidesEarlierOutput: after a token change (a new
// tenancy), no viewer can replay what the console printed before it, even
// after the console closed by linger and reopened; what arrives afterwards
// is the new tenant's (issue 9, defect 1).
func TestHubNewTenancyHidesEarlierOutput(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		h, _ := newTestHub(HubConfig{Linger: 30 * time.Second}, d)
		defer h.close(context.Background(), ErrShuttingDown)
		a := attach(t, h, 0)
		s1 := <-d.opened
		s1.w.Write([]byte("tenant A's secret\n"))
		readExactly(t, a, len("tenant A's secret\n"))

		h.newTenancy(ErrTokenRevoked)
		if _, err := a.Read(make([]byte, 1)); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("A's viewer after the token change: %v, want ErrTokenRevoked", err)
		}
		b := attach(t, h, 1<<20)
		s1.w.Write([]byte("B1\n"))
		if got := string(readExactly(t, b, 3)); got != "B1\n" {
			t.Fatalf("B with replay read %q, want only what came after the token change", got)
		}
		b.Close()

		// The console closes after the linger time and reopens for the next
		// viewer; the boundary holds (B's own output stays replayable).
		time.Sleep(31 * time.Second)
		synctest.Wait()
		select {
		case <-s1.closed:
		default:
			t.Fatal("console still open after the linger time")
		}
		b2 := attach(t, h, 1<<20)
		s2 := <-d.opened
		s2.w.Write([]byte("B2\n"))
		// The two console sessions are told apart by a marker.
		want := "B1\n\r\n[obmd: console reopened after 31s]\r\nB2\n"
		if got := string(readExactly(t, b2, len(want))); got != want {
			t.Fatalf("after a linger close, B with replay read %q, want %q", got, want)
		}

		// Revoking (no token) starts a tenancy of nobody: the next token's
		// holder sees nothing of B's either.
		h.newTenancy(ErrTokenRevoked)
		c := attach(t, h, 1<<20)
		s2.w.Write([]byte("C\n"))
		if got := string(readExactly(t, c, 2)); got != "C\n" {
			t.Fatalf("after a revocation, C with replay read %q", got)
		}
	})
}

// TestOpenConsoleAfterTokenChange: a client whose token was good when it
// was checked, and was replaced or revoked before its console opened (a
// WebSocket is upgraded in between), is told its token was replaced, not
// that it never had a good one.
func TestOpenConsoleAfterTokenChange(t *testing.T) {
	t.Parallel()
	for _, change := range []struct {
		name string
		do   func(m *Manager) error
	}{
		{"new token", func(m *Manager) error { _, err := m.NewToken("n"); return err }},
		{"revoked token", func(m *Manager) error { return m.RevokeToken("n") }},
	} {
		t.Run(change.name, func(t *testing.T) {
			m := newTestManager(t, newMemStore(), newFakeRegistry(t).Registry, time.Second)
			registerT(t, m, "n", "mock", json.RawMessage(`{"addr":"x"}`))
			a := mustAccess(t, m, "n", mustToken(t, m, "n"))
			if err := change.do(m); err != nil {
				t.Fatal(err)
			}
			v, err := a.OpenConsole(context.Background(), 0)
			if err == nil {
				v.Close()
				t.Fatal("the console opened for a replaced token")
			}
			if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrTokenRevoked) {
				t.Fatalf("OpenConsole = %v, want ErrUnauthorized wrapping ErrTokenRevoked", err)
			}
		})
	}
}

// TestJoinConsoleReceivesFromJoin: a viewer joined with replay 0 receives
// what the console prints after JoinConsole returns, whether the console
// was already open or was still opening; Ready hands it over. (A WebSocket
// is upgraded between the two: its client must not miss output printed
// after it was told it is connected.)
func TestJoinConsoleReceivesFromJoin(t *testing.T) {
	t.Parallel()
	for _, opening := range []bool{false, true} {
		t.Run(fmt.Sprintf("opening=%v", opening), func(t *testing.T) {
			fr := newFakeRegistry(t)
			m := newTestManager(t, newMemStore(), fr.Registry, 5*time.Second)
			registerT(t, m, "n", "fake", fakeInfoJSON("a"))
			d := fr.driver(t, "n")
			a := mustAccess(t, m, "n", mustToken(t, m, "n"))
			release := make(chan struct{})
			if opening {
				d.mu.Lock()
				d.openGate = func(ctx context.Context) error { <-release; return nil }
				d.mu.Unlock()
			} else {
				close(release)
				first, err := a.OpenConsole(context.Background(), 0)
				if err != nil {
					t.Fatal(err)
				}
				defer first.Close()
			}
			j, err := a.JoinConsole(0)
			if err != nil {
				t.Fatal(err)
			}
			if opening {
				close(release)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var s *fakeStream
			select {
			case s = <-d.opened:
			case <-ctx.Done():
				t.Fatal("JoinConsole did not start the console opening")
			}
			if _, err := s.w.Write([]byte("printed after the join\n")); err != nil {
				t.Fatal(err)
			}
			v, err := j.Ready(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			stop := context.AfterFunc(ctx, func() { v.Close() }) // a viewer that missed it fails, not hangs
			defer stop()
			var got []byte
			buf := make([]byte, 256)
			for !bytes.Contains(got, []byte("printed after the join\n")) {
				n, err := v.Read(buf)
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				got = append(got, buf[:n]...)
			}
		})
	}
}

// TestTokenChangeSparesForwardedStreams: a token change ends every
// client's viewer, but not another cluster instance's stream of the
// console (a Forwarded viewer): that instance ends its own viewers itself,
// and cutting its stream only made its new tenant see a reconnect. A
// deletion still ends both.
func TestTokenChangeSparesForwardedStreams(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, newMemStore(), newFakeRegistry(t).Registry, time.Second)
	registerT(t, m, "n", "mock", json.RawMessage(`{"addr":"x"}`))
	client, err := mustAccess(t, m, "n", mustToken(t, m, "n")).OpenConsole(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	fa, err := m.Forwarded("n")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := fa.OpenConsole(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// untilEnd reads a viewer (the mock console prints all along) until
	// it is disconnected.
	untilEnd := func(v *Viewer) error {
		buf := make([]byte, 4096)
		for {
			if _, err := v.Read(buf); err != nil {
				return err
			}
		}
	}

	if _, err := m.NewToken("n"); err != nil {
		t.Fatal(err)
	}
	if err := untilEnd(client); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("the client's viewer ended with %v, want ErrTokenRevoked", err)
	}
	if err := peer.Err(); err != nil {
		t.Fatalf("the forwarded stream ended with the token change: %v", err)
	}
	if _, err := peer.Read(make([]byte, 64)); err != nil {
		t.Fatalf("the forwarded stream does not go on: %v", err)
	}

	if err := m.Delete(context.Background(), "n"); err != nil {
		t.Fatal(err)
	}
	if err := untilEnd(peer); !errors.Is(err, ErrNodeDeleted) {
		t.Fatalf("the forwarded stream ended with %v after the delete, want ErrNodeDeleted", err)
	}
}
