package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// MockInfo is the info of a "mock" node, as HIL's integration tests send
// it: {"addr": "10.0.0.4", "NumWrites": 0}. NumWrites is the first number
// the console prints.
type MockInfo struct {
	Addr      string
	NumWrites int
}

type mockInfoJSON struct {
	Addr      *string `json:"addr"`
	NumWrites *int    `json:"NumWrites"`
}

// ParseMockInfo validates a "mock" node's info: "addr" is required (any
// non-empty label: the mock never connects to it), "NumWrites" is an
// optional non-negative integer.
func ParseMockInfo(raw json.RawMessage) (MockInfo, error) {
	var in mockInfoJSON
	if err := DecodeStrict("mock info", raw, &in); err != nil {
		return MockInfo{}, err
	}
	v := validation{what: "mock info"}
	var out MockInfo
	if in.Addr == nil || *in.Addr == "" {
		v.addf("addr is missing")
	} else {
		out.Addr = *in.Addr
	}
	if in.NumWrites != nil {
		if *in.NumWrites < 0 {
			v.addf("NumWrites must not be negative (got %d)", *in.NumWrites)
		}
		out.NumWrites = *in.NumWrites
	}
	if err := v.err(); err != nil {
		return MockInfo{}, err
	}
	return out, nil
}

// LogValue implements slog.LogValuer (the mock holds no secret).
func (i MockInfo) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", i.Addr), slog.Int("NumWrites", i.NumWrites))
}

func (i MockInfo) String() string {
	return fmt.Sprintf("mock{addr=%s NumWrites=%d}", i.Addr, i.NumWrites)
}

// MockBaud is the mock console's line rate: like a 115200-baud serial port
// (10 bits per byte), a reader that keeps up never sees a drop marker.
const MockBaud = 115200

const mockTick = 20 * time.Millisecond

// Mock power actions, as the original obmd's mock driver records them.
const (
	MockActionOn          = "on"
	MockActionOff         = "off"
	MockActionForceReboot = "force-reboot"
	MockActionSoftReboot  = "soft-reboot"
	MockActionBootDevA    = "bootdev-a"
	MockActionBootDevB    = "bootdev-b"
)

// MockDriver behaves as the original obmd's mock driver: power status is
// always "Mock Status", the valid boot devices are "A" and "B", and the
// console prints "0\n1\n2\n..." (starting at NumWrites), the count
// continuing across connections, and discards what is typed. It records the last power action for
// tests.
type MockDriver struct {
	info MockInfo

	mu       sync.Mutex
	next     int    // next console number
	last     string // last power action
	consoles map[*io.PipeReader]struct{}
	closed   bool
}

// NewMockDriver returns a mock driver for info.
func NewMockDriver(info MockInfo) *MockDriver {
	return &MockDriver{info: info, next: info.NumWrites, consoles: make(map[*io.PipeReader]struct{})}
}

// MockDriverType is the "mock" entry of BuiltinDrivers.
func MockDriverType() DriverType {
	return typedDriver("mock", ParseMockInfo, func(info MockInfo, _ DriverEnv) (Driver, error) {
		return NewMockDriver(info), nil
	})
}

// LastAction returns the last power or boot action, "" if none.
func (d *MockDriver) LastAction() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (d *MockDriver) act(a string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = a
	return nil
}

func (d *MockDriver) PowerOn(context.Context) error  { return d.act(MockActionOn) }
func (d *MockDriver) PowerOff(context.Context) error { return d.act(MockActionOff) }

func (d *MockDriver) PowerCycle(_ context.Context, force bool) error {
	if force {
		return d.act(MockActionForceReboot)
	}
	return d.act(MockActionSoftReboot)
}

func (d *MockDriver) PowerStatus(context.Context) (string, error) { return "Mock Status", nil }

func (d *MockDriver) SetBootDevice(_ context.Context, dev string) error {
	switch dev {
	case "A":
		return d.act(MockActionBootDevA)
	case "B":
		return d.act(MockActionBootDevB)
	}
	return Invalidf("unknown boot device %q (the mock driver accepts \"A\" and \"B\")", dev)
}

// OpenConsole starts a stream of decimal lines paced at MockBaud.
func (d *MockDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, BMCError("open console", fmt.Errorf("mock driver closed"))
	}
	pr, pw := io.Pipe()
	d.consoles[pr] = struct{}{}
	go d.generate(pr, pw)
	return mockConsole{pr}, nil
}

// mockConsole is a mock console stream. Like the original obmd's mock,
// it has nothing to type into: input and breaks are accepted and
// discarded, so clients can exercise the input path against it.
type mockConsole struct{ *io.PipeReader }

var _ ConsoleWriter = mockConsole{}

func (mockConsole) Write(p []byte) (int, error) { return len(p), nil }
func (mockConsole) SendBreak() error            { return nil }
func (mockConsole) DiscardInput() int           { return 0 }

// generate writes lines into pw, one tick's worth of bytes at a time, until
// the reader closes. Only lines written completely advance the count.
func (d *MockDriver) generate(pr *io.PipeReader, pw *io.PipeWriter) {
	defer func() {
		d.mu.Lock()
		delete(d.consoles, pr)
		d.mu.Unlock()
	}()
	perTick := max(1, MockBaud/10*int(mockTick)/int(time.Second))
	tick := time.NewTicker(mockTick)
	defer tick.Stop()
	var chunk []byte
	var ends []int // offset just past each line in chunk
	for {
		d.mu.Lock()
		first := d.next
		d.mu.Unlock()
		chunk, ends = chunk[:0], ends[:0]
		for i := first; len(chunk) < perTick; i++ {
			chunk = strconv.AppendInt(chunk, int64(i), 10)
			chunk = append(chunk, '\n')
			ends = append(ends, len(chunk))
		}
		n, err := pw.Write(chunk)
		whole := 0
		for whole < len(ends) && ends[whole] <= n {
			whole++
		}
		d.mu.Lock()
		d.next = first + whole
		d.mu.Unlock()
		if err != nil {
			return
		}
		<-tick.C
	}
}

// Close ends every open console stream.
func (d *MockDriver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for pr := range d.consoles {
		pr.Close()
	}
	return nil
}
