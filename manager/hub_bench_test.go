package manager

import (
	"context"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
)

// fanoutSink stands in for a viewer's HTTP connection: it counts what it is
// given, across all viewers, and reports when the total reaches want.
type fanoutSink struct {
	total *atomic.Int64
	want  *atomic.Int64
	done  chan struct{}
}

func (s fanoutSink) Write(p []byte) (int, error) {
	if s.total.Add(int64(len(p))) == s.want.Load() {
		s.done <- struct{}{}
	}
	return len(p), nil
}

// fanout is a hub with viewers, each drained by a goroutine that copies its
// stream into a shared fanoutSink the way the API's console handler copies
// it into an HTTP response.
type fanout struct {
	h       *hub
	stream  *fakeStream
	viewers []*Viewer
	total   atomic.Int64
	want    atomic.Int64
	done    chan struct{}
}

func newFanout(tb testing.TB, cfg HubConfig, viewers int) *fanout {
	tb.Helper()
	d := newFakeDriver("bench")
	h, _ := newTestHub(cfg, d)
	f := &fanout{h: h, done: make(chan struct{}, 1)}
	for range viewers {
		v, s, err := h.join(0)
		if err != nil {
			tb.Fatalf("join: %v", err)
		}
		if err := h.wait(context.Background(), v, s); err != nil {
			tb.Fatalf("wait: %v", err)
		}
		f.viewers = append(f.viewers, v)
		sink := fanoutSink{total: &f.total, want: &f.want, done: f.done}
		go io.Copy(sink, v)
	}
	f.stream = <-d.opened
	return f
}

// send writes p to the console and waits until every viewer has it.
func (f *fanout) send(tb testing.TB, p []byte) {
	f.want.Add(int64(len(p) * len(f.viewers)))
	if _, err := f.stream.w.Write(p); err != nil {
		tb.Fatalf("console write: %v", err)
	}
	<-f.done
}

func (f *fanout) close() {
	f.h.close(context.Background(), ErrShuttingDown)
}

// BenchmarkHubFanOut: one console, 1,000 viewers; each iteration is one
// SOL-packet-sized chunk (what fakebmc sends per 20 ms at 115200 baud)
// delivered to every viewer. ns/byte is per byte delivered to one viewer.
func BenchmarkHubFanOut(b *testing.B) {
	const viewers, chunk = 1000, 256
	f := newFanout(b, HubConfig{}, viewers)
	defer f.close()
	p := pseudoRandom(chunk, 7)
	f.send(b, p) // every viewer goroutine is running
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.send(b, p)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunk*viewers), "ns/viewer-byte")
}

// live is the memory in use after collecting: heap objects and goroutine
// stacks.
type live struct{ heap, stack int64 }

func measureLive() live {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return live{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse)}
}

// per is the growth from before to now, per item.
func (now live) per(before live, items int) live {
	return live{heap: (now.heap - before.heap) / int64(items), stack: (now.stack - before.stack) / int64(items)}
}

// hubMemory measures what an idle viewer costs (one node, many viewers)
// and what a node with one idle viewer costs (many nodes), once the console
// has carried some output. Each viewer is drained by a goroutine copying it
// to a sink, as the API's console handler does; the stacks are those
// goroutines' and the hubs' readers'.
func hubMemory(tb testing.TB) (perViewer, perNode live) {
	const viewers, nodes = 1000, 200
	out := pseudoRandom(1024, 9)

	before := measureLive()
	f := newFanout(tb, HubConfig{}, viewers)
	f.send(tb, out)
	perViewer = measureLive().per(before, viewers)
	f.close()

	before = measureLive()
	fs := make([]*fanout, nodes)
	for i := range fs {
		fs[i] = newFanout(tb, HubConfig{}, 1)
		fs[i].send(tb, out)
	}
	perNode = measureLive().per(before, nodes)
	for _, f := range fs {
		f.close()
	}
	return perViewer, perNode
}

// BenchmarkHubMemory reports heap and stack bytes per idle viewer and per
// node (with one idle viewer).
func BenchmarkHubMemory(b *testing.B) {
	var perViewer, perNode live
	for b.Loop() {
		perViewer, perNode = hubMemory(b)
	}
	b.ReportMetric(float64(perViewer.heap), "heap-B/idle-viewer")
	b.ReportMetric(float64(perViewer.stack), "stack-B/idle-viewer")
	b.ReportMetric(float64(perNode.heap), "heap-B/node")
	b.ReportMetric(float64(perNode.stack), "stack-B/node")
}

// BenchmarkHubAppend is the console reader's cost per SOL-packet-sized
// chunk with 1,000 viewers attached that are not reading: what a busy or
// stalled set of viewers costs the reader (and so the BMC session).
func BenchmarkHubAppend(b *testing.B) {
	const viewers, chunk = 1000, 256
	d := newFakeDriver("bench")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	for range viewers {
		v, s, err := h.join(0)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.wait(context.Background(), v, s); err != nil {
			b.Fatal(err)
		}
	}
	h.mu.Lock()
	s := h.sess
	h.mu.Unlock()
	p := pseudoRandom(chunk, 3)
	b.SetBytes(chunk)
	b.ReportAllocs()
	for b.Loop() {
		h.append(s, p)
	}
}
