package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"testing"

	"obmd/store"
)

// memStore is an in-memory NodeStore (no goroutines, so tests using it can
// run inside a synctest bubble). Its revision counts writes, as etcd's
// does.
type memStore struct {
	mu    sync.Mutex
	nodes map[string]store.NodeRecord
	fail  error // returned by every write when set
	rev   int64
}

func newMemStore() *memStore { return &memStore{nodes: make(map[string]store.NodeRecord)} }

func (s *memStore) CreateNode(rec store.NodeRecord) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if _, ok := s.nodes[rec.ID]; ok {
		return s.rev, store.ErrExists
	}
	s.rev++
	s.nodes[rec.ID] = rec
	return s.rev, nil
}

func (s *memStore) DeleteNode(id string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if _, ok := s.nodes[id]; !ok {
		return s.rev, store.ErrNotFound
	}
	s.rev++
	delete(s.nodes, id)
	return s.rev, nil
}

func (s *memStore) SetTokenHash(id string, h []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	rec, ok := s.nodes[id]
	if !ok {
		return s.rev, store.ErrNotFound
	}
	s.rev++
	rec.TokenHash = append([]byte(nil), h...)
	s.nodes[id] = rec
	return s.rev, nil
}

func (s *memStore) Nodes() ([]store.NodeRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.NodeRecord
	for _, r := range s.nodes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// fakeInfo is the info of the "fake" test driver: {"name": "..."}.
type fakeInfo struct {
	Name string `json:"name"`
}

func (f fakeInfo) LogValue() slog.Value { return slog.StringValue(f.Name) }
func (f fakeInfo) String() string       { return f.Name }

// fakeDriver is a scriptable driver. Power calls go through hook when set;
// consoles are pipes whose writing ends the test holds.
type fakeDriver struct {
	name string

	mu        sync.Mutex
	hook      func(ctx context.Context, op string) error
	inFlight  int
	maxFlight int
	calls     []string
	streams   []*fakeStream
	openErrs  []error // consumed by successive OpenConsole calls; nil entry = success
	// openGate, if set, runs at the start of OpenConsole (outside mu): a
	// test holds an open in progress with it.
	openGate func(ctx context.Context) error
	opened   chan *fakeStream
	closed   bool
}

type fakeStream struct {
	*io.PipeReader
	w      *io.PipeWriter
	closed chan struct{}
	once   sync.Once

	// The input side: what was typed (a break recorded as "<BREAK>"),
	// and, when gate is set, a Write waits for a token from it (or for
	// DiscardInput or Close), as a driver whose buffer is full does.
	inMu      sync.Mutex
	typed     []byte
	writing   int // Writes in progress
	overlap   bool
	discarded int
	gate      chan struct{}
	discard   chan struct{} // closed by DiscardInput
}

func (s *fakeStream) Write(p []byte) (int, error) {
	s.inMu.Lock()
	s.writing++
	if s.writing > 1 {
		s.overlap = true
	}
	gate, discard := s.gate, s.discard
	s.inMu.Unlock()
	defer func() {
		s.inMu.Lock()
		s.writing--
		s.inMu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-discard:
			return len(p), nil
		case <-s.closed:
			return 0, io.ErrClosedPipe
		}
	}
	select {
	case <-s.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	// Byte by byte with yields: two Writes running at once would interleave.
	for _, b := range p {
		s.inMu.Lock()
		s.typed = append(s.typed, b)
		s.inMu.Unlock()
		runtime.Gosched()
	}
	return len(p), nil
}

func (s *fakeStream) SendBreak() error {
	_, err := s.Write([]byte("<BREAK>"))
	return err
}

func (s *fakeStream) DiscardInput() int {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	s.discarded++
	if s.discard != nil {
		select {
		case <-s.discard:
		default:
			close(s.discard)
		}
	}
	return 0
}

// input returns what was typed so far, and whether two Writes overlapped.
func (s *fakeStream) input() ([]byte, bool) {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	return append([]byte(nil), s.typed...), s.overlap
}

// setGate makes Writes wait for tokens from gate.
func (s *fakeStream) setGate(gate chan struct{}) {
	s.inMu.Lock()
	s.gate, s.discard = gate, make(chan struct{})
	s.inMu.Unlock()
}

func (s *fakeStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.PipeReader.Close()
}

func newFakeDriver(name string) *fakeDriver {
	return &fakeDriver{name: name, opened: make(chan *fakeStream, 16)}
}

func (d *fakeDriver) call(ctx context.Context, op string) error {
	d.mu.Lock()
	d.inFlight++
	d.maxFlight = max(d.maxFlight, d.inFlight)
	d.calls = append(d.calls, op)
	hook := d.hook
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	if hook != nil {
		return hook(ctx, op)
	}
	return nil
}

func (d *fakeDriver) setHook(h func(ctx context.Context, op string) error) {
	d.mu.Lock()
	d.hook = h
	d.mu.Unlock()
}

func (d *fakeDriver) PowerOn(ctx context.Context) error  { return d.call(ctx, "on") }
func (d *fakeDriver) PowerOff(ctx context.Context) error { return d.call(ctx, "off") }
func (d *fakeDriver) PowerCycle(ctx context.Context, force bool) error {
	return d.call(ctx, fmt.Sprintf("cycle force=%t", force))
}
func (d *fakeDriver) PowerStatus(ctx context.Context) (string, error) {
	return "on", d.call(ctx, "status")
}
func (d *fakeDriver) SetBootDevice(ctx context.Context, dev string) error {
	if dev != "pxe" && dev != "disk" && dev != "none" {
		return Invalidf("unknown boot device %q", dev)
	}
	return d.call(ctx, "bootdev "+dev)
}

func (d *fakeDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	d.mu.Lock()
	gate := d.openGate
	d.mu.Unlock()
	if gate != nil {
		if err := gate(ctx); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.openErrs) > 0 {
		err := d.openErrs[0]
		d.openErrs = d.openErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	s := &fakeStream{PipeReader: pr, w: pw, closed: make(chan struct{})}
	d.streams = append(d.streams, s)
	d.opened <- s
	return s, nil
}

func (d *fakeDriver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *fakeDriver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// fakeRegistry has the "fake" type, whose drivers are recorded by name, and
// the built-in "mock".
type fakeRegistry struct {
	*Registry
	mu      sync.Mutex
	drivers map[string]*fakeDriver
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	fr := &fakeRegistry{Registry: NewRegistry(), drivers: make(map[string]*fakeDriver)}
	err := fr.Register("fake", DriverType{
		ParseInfo: func(raw json.RawMessage) (DriverInfo, error) {
			var fi fakeInfo
			if err := DecodeStrict("fake info", raw, &fi); err != nil {
				return nil, err
			}
			if fi.Name == "" {
				return nil, &ValidationError{What: "fake info", Problems: []string{"name is missing"}}
			}
			return fi, nil
		},
		New: func(info DriverInfo, env DriverEnv) (Driver, error) {
			d := newFakeDriver(info.(fakeInfo).Name)
			fr.mu.Lock()
			fr.drivers[env.NodeID] = d
			fr.mu.Unlock()
			return d, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fr.Register("mock", MockDriverType()); err != nil {
		t.Fatal(err)
	}
	return fr
}

func (fr *fakeRegistry) driver(t *testing.T, node string) *fakeDriver {
	t.Helper()
	fr.mu.Lock()
	defer fr.mu.Unlock()
	d, ok := fr.drivers[node]
	if !ok {
		t.Fatalf("no fake driver for node %q", node)
	}
	return d
}

func fakeInfoJSON(name string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"name":%q}`, name))
}

var errScripted = errors.New("scripted failure")
