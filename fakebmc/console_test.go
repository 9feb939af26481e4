package fakebmc

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakePort is a hostPort standing in for a sol.BMCEndpoint. Write takes
// what the test allows (setRoom; negative: everything) and blocks for the
// rest, like SOL under backpressure; Read returns what the test typed.
type fakePort struct {
	mu     sync.Mutex
	room   int
	got    bytes.Buffer
	wake   chan struct{} // closed and replaced when room changes or on Close
	closed bool
	typed  chan []byte
}

func newFakePort(room int) *fakePort {
	return &fakePort{room: room, wake: make(chan struct{}), typed: make(chan []byte, 16)}
}

func (p *fakePort) Write(b []byte) (int, error) {
	written := 0
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return written, io.ErrClosedPipe
		}
		n := len(b) - written
		if p.room >= 0 {
			n = min(n, p.room)
			p.room -= n
		}
		p.got.Write(b[written : written+n])
		written += n
		wake := p.wake
		p.mu.Unlock()
		if written == len(b) {
			return written, nil
		}
		<-wake
	}
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	wake := p.wake
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return 0, io.EOF
	}
	select {
	case t := <-p.typed:
		return copy(b, t), nil
	case <-wake:
		return 0, nil // woken for room or Close: the caller reads again
	}
}

func (p *fakePort) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.wake)
	}
	return nil
}

func (p *fakePort) setRoom(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.room = n
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *fakePort) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got.String()
}

// counterLines parses counter output, checks every line follows the one
// before, and returns the first and last values.
func counterLines(t *testing.T, out string) (first, last int) {
	t.Helper()
	lines := strings.Split(out, "\n")
	lines = lines[:len(lines)-1] // the last line may be partial
	if len(lines) == 0 {
		t.Fatalf("no whole line in %q", out)
	}
	for i, l := range lines {
		v, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("line %d is %q, not a number", i, l)
		}
		if i == 0 {
			first = v
		} else if v != last+1 {
			t.Fatalf("line %d is %d after %d: a value was skipped or repeated", i, v, last)
		}
		last = v
	}
	return first, last
}

func TestCounterConsoleRunsAtBaudRate(t *testing.T) {
	cases := []struct {
		name string
		baud int
	}{{"115200", 115200}, {"9600", 9600}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hub := newConsoleHub()
				defer hub.close()
				c := newConsole(hub, ConsoleCounter, tc.baud)
				p := newFakePort(-1)
				c.attach(p, time.Now())
				defer c.detach(p, time.Now())
				time.Sleep(solStartDelay + 2*time.Second)
				synctest.Wait()
				got := len(p.output())
				want := 2 * tc.baud / 10
				if got < want*98/100 || got > want*102/100 {
					t.Errorf("2 s at %d baud gave %d bytes, want %d ± 2%%", tc.baud, got, want)
				}
				if first, _ := counterLines(t, p.output()); first != 0 {
					t.Errorf("first line %d, want 0", first)
				}
			})
		})
	}
}

func TestCounterConsoleKeepsCountingWhileUnattached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleCounter, 115200)
		time.Sleep(time.Second) // printed to nobody: 11520 bytes
		p := newFakePort(-1)
		c.attach(p, time.Now())
		time.Sleep(solStartDelay + 100*time.Millisecond)
		synctest.Wait()
		out := p.output()
		// 11520 bytes: "0\n".."9\n" is 20, 10..99 is 270, 100..999 is
		// 3600, then 5-byte lines: (11520-3890)/5 = 1526 whole lines,
		// 1000..2525, so the listener starts with line 2526.
		if first, _ := counterLines(t, out); first != 2526 {
			t.Errorf("after 1 s unattached the first line is %d, want 2526", first)
		}
		c.detach(p, time.Now())
		time.Sleep(time.Second)
		p2 := newFakePort(-1)
		c.attach(p2, time.Now())
		defer c.detach(p2, time.Now())
		time.Sleep(solStartDelay + 50*time.Millisecond)
		synctest.Wait()
		_, lastBefore := counterLines(t, out+"x")
		first, _ := counterLines(t, p2.output())
		if first <= lastBefore+2000 {
			t.Errorf("after another second unattached the count went from %d to %d, want it to advance by about 2300", lastBefore, first)
		}
	})
}

func TestCounterConsoleWaitsForFlowControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleCounter, 115200)
		p := newFakePort(0) // SOL full: the host must wait
		c.attach(p, time.Now())
		defer c.detach(p, time.Now())
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			p.setRoom(37) // trickle: a little room now and then
		}
		p.setRoom(-1)
		time.Sleep(time.Second)
		synctest.Wait()
		first, last := counterLines(t, p.output())
		if first != 0 || last < 1000 {
			t.Errorf("lines %d..%d, want 0.. past 1000 once SOL drains", first, last)
		}
	})
}

func TestUnlimitedCounterFillsWhatSOLTakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleCounter, UnlimitedBaud)
		const room = 100000 // far more than 115200 baud's 1152 bytes in 100 ms
		p := newFakePort(room)
		c.attach(p, time.Now())
		defer c.detach(p, time.Now())
		time.Sleep(solStartDelay + 100*time.Millisecond)
		synctest.Wait() // the host is blocked in Write: SOL is full
		if got := len(p.output()); got != room {
			t.Errorf("unlimited counter wrote %d bytes, want all %d SOL took", got, room)
		}
		counterLines(t, p.output())
	})
}

func TestEchoConsole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleEcho, 115200)
		p := newFakePort(-1)
		c.attach(p, time.Now())
		p.typed <- []byte("hello")
		p.typed <- []byte("\r")
		synctest.Wait()
		if got := p.output(); got != "hello\r" {
			t.Errorf("echoed %q, want %q", got, "hello\r")
		}
		c.detach(p, time.Now())
		p2 := newFakePort(-1)
		c.attach(p2, time.Now())
		p2.typed <- []byte("again")
		synctest.Wait()
		c.detach(p2, time.Now())
		if got := string(c.hostInput()); got != "hello\ragain" {
			t.Errorf("host input %q, want every typed byte in order", got)
		}
		if got := p.output(); got != "hello\r" {
			t.Errorf("a detached port got more output: %q", got)
		}
	})
}

func TestEchoConsoleBackpressureKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleEcho, 115200)
		p := newFakePort(3)
		c.attach(p, time.Now())
		defer c.detach(p, time.Now())
		p.typed <- []byte("abcdef")
		p.typed <- []byte("ghi")
		synctest.Wait()
		if got := p.output(); got != "abc" {
			t.Fatalf("with room for 3, echoed %q", got)
		}
		p.setRoom(-1)
		synctest.Wait()
		if got := p.output(); got != "abcdefghi" {
			t.Errorf("echo after backpressure = %q, want %q", got, "abcdefghi")
		}
	})
}

func TestConsoleHubStopsWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := newConsoleHub()
		defer hub.close()
		c := newConsole(hub, ConsoleCounter, 115200)
		p := newFakePort(-1)
		c.attach(p, time.Now())
		time.Sleep(100 * time.Millisecond)
		c.detach(p, time.Now())
		time.Sleep(2 * consoleTick)
		synctest.Wait()
		hub.mu.Lock()
		running := hub.running
		hub.mu.Unlock()
		if running {
			t.Error("hub goroutine still running with no console attached")
		}
	})
}

// sizePort is a hostPort that takes everything and records the size of
// every write.
type sizePort struct {
	mu     sync.Mutex
	sizes  []int
	closed chan struct{}
}

func (p *sizePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sizes = append(p.sizes, len(b))
	return len(b), nil
}

func (p *sizePort) Read([]byte) (int, error) { <-p.closed; return 0, io.EOF }
func (p *sizePort) Close() error             { close(p.closed); return nil }

// TestCounterConsoleSendsWholePackets: the BMC forwards the host's output
// in whole SOL packets when the baud rate fills one within the accumulate
// interval, and sends what the interval brought otherwise.
func TestCounterConsoleSendsWholePackets(t *testing.T) {
	cases := []struct {
		name    string
		baud    int
		partial bool // writes shorter than a packet expected
	}{{"115200", 115200, false}, {"9600", 9600, true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hub := newConsoleHub()
				defer hub.close()
				c := newConsole(hub, ConsoleCounter, tc.baud)
				p := &sizePort{closed: make(chan struct{})}
				c.attach(p, time.Now())
				time.Sleep(solStartDelay + 2*time.Second)
				synctest.Wait()
				c.detach(p, time.Now())
				p.mu.Lock()
				defer p.mu.Unlock()
				total := 0
				for _, n := range p.sizes {
					total += n
					if !tc.partial && n%solPacketChars != 0 {
						t.Fatalf("a write of %d characters at %d baud, want whole packets of %d", n, tc.baud, solPacketChars)
					}
					if tc.partial && n >= solPacketChars {
						t.Fatalf("a write of %d characters at %d baud, want what 60 ms bring", n, tc.baud)
					}
				}
				// Packets: the fewest the baud rate allows.
				if want := 2 * tc.baud / 10 / solPacketChars; !tc.partial && total/solPacketChars < want-1 {
					t.Fatalf("%d characters in 2 s at %d baud, want about %d packets' worth", total, tc.baud, want)
				}
				if tc.partial && (len(p.sizes) < 15 || len(p.sizes) > 25) {
					t.Fatalf("%d writes in 2 s at %d baud, want one per accumulate interval (about 20)", len(p.sizes), tc.baud)
				}
			})
		})
	}
}
