package sol

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"obmd/rmcpplus"
)

// The Console's direct path: a session that offers OpenPayloadFunc (as
// *rmcpplus.Session does) hands SOL packets to the Console on its own
// goroutine, and the Console answers them there.

// recordingConn is a payload connection that keeps what is sent without
// allocating once warm.
type recordingConn struct {
	mu     sync.Mutex
	sent   [][]byte
	keep   bool // keep every payload in sent, not just the last
	last   []byte
	n      int
	closed chan []byte // never carries anything; closed by Close
	once   sync.Once
}

func newRecordingConn(keep bool) *recordingConn {
	return &recordingConn{keep: keep, closed: make(chan []byte)}
}

func (c *recordingConn) Send(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.last = append(c.last[:0], b...)
	if c.keep {
		c.sent = append(c.sent, bytes.Clone(b))
	}
	return nil
}

func (c *recordingConn) Recv() <-chan []byte { return c.closed }

func (c *recordingConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *recordingConn) lastPacket(t testing.TB) Packet {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := ParsePacket(c.last)
	if err != nil {
		t.Fatalf("last payload sent: %v", err)
	}
	return p
}

func (c *recordingConn) sends() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// funcSession is a fake session whose payload connection delivers through
// a handler, like *rmcpplus.Session's OpenPayloadFunc.
type funcSession struct {
	*fakeSession
	conn    *recordingConn
	handler func([]byte)
}

func (s *funcSession) OpenPayloadFunc(pt rmcpplus.PayloadType, port int, h func([]byte)) (*recordingConn, error) {
	if pt != rmcpplus.PayloadSOL {
		return nil, errors.New("not SOL")
	}
	s.handler = h
	return s.conn, nil
}

func (s *funcSession) OpenPayload(rmcpplus.PayloadType, int) (*recordingConn, error) {
	return nil, errors.New("the Console must use OpenPayloadFunc when the session has it")
}

var _ ClientSession[*recordingConn] = (*funcSession)(nil)

func openFuncConsole(t testing.TB, keep bool, opts ConsoleOptions) (*Console, *funcSession) {
	t.Helper()
	r := newRig(rigConfig{})
	s := &funcSession{fakeSession: r.sess, conn: newRecordingConn(keep)}
	opts.SkipStartupPacket = true
	c, err := Open(context.Background(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if s.handler == nil {
		t.Fatal("Open did not use OpenPayloadFunc")
	}
	return c, s
}

func solPacket(seq uint8, data string) []byte {
	p := Packet{Seq: seq, Data: []byte(data)}
	return p.Marshal()
}

// The ACK leaves before the handler returns: no other goroutine is needed
// to answer a packet.
func TestConsoleAnswersOnTheSessionsGoroutine(t *testing.T) {
	c, s := openFuncConsole(t, false, ConsoleOptions{})
	s.handler(solPacket(1, "hello"))
	if n := s.conn.sends(); n != 1 {
		t.Fatalf("%d payloads sent when the handler returned, want the ACK", n)
	}
	if got, want := s.conn.lastPacket(t), (Packet{AckSeq: 1, Accepted: 5}); !samePacket(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	buf := make([]byte, 10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// A reader blocked in Read is woken by a packet handled on another
// goroutine.
func TestConsoleHandlerWakesWaitingReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := openFuncConsole(t, false, ConsoleOptions{})
		got := make(chan string)
		go func() {
			buf := make([]byte, 10)
			n, _ := c.Read(buf)
			got <- string(buf[:n])
		}()
		synctest.Wait() // the reader waits
		go s.handler(solPacket(1, "late"))
		if r := <-got; r != "late" {
			t.Fatalf("Read = %q, want \"late\"", r)
		}
	})
}

// With the read buffer full the Console NACKs; the Read that makes room
// sends the resuming ACK at once, without waiting for another packet.
func TestConsoleReadResumesNACKedBMC(t *testing.T) {
	c, s := openFuncConsole(t, true, ConsoleOptions{ReadBuffer: 8})
	s.handler(solPacket(1, "12345678"))
	s.handler(solPacket(2, "abcd"))
	if got, want := s.conn.lastPacket(t), (Packet{AckSeq: 2, Accepted: 0, Op: OpNACK}); !samePacket(got, want) {
		t.Fatalf("answer to a packet that does not fit: %v, want %v", got, want)
	}
	sent := s.conn.sends()
	buf := make([]byte, 8)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "12345678" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if s.conn.sends() != sent+1 {
		t.Fatalf("Read that freed the buffer sent %d payloads, want the resuming ACK", s.conn.sends()-sent)
	}
	if got, want := s.conn.lastPacket(t), (Packet{AckSeq: 2, Accepted: 0}); !samePacket(got, want) {
		t.Fatalf("resuming answer %v, want %v", got, want)
	}
	// The BMC offers the NACKed characters again under a new number.
	s.handler(solPacket(3, "abcd"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "abcd" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// A packet handled after Close is ignored.
func TestConsoleIgnoresPacketsAfterClose(t *testing.T) {
	c, s := openFuncConsole(t, false, ConsoleOptions{})
	c.Close()
	sent := s.conn.sends()
	s.handler(solPacket(1, "x"))
	if s.conn.sends() != sent {
		t.Fatal("answered a packet after Close")
	}
	if _, err := c.Read(make([]byte, 1)); err != ErrClosed {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
}

// Once warm, a packet and its ACK cost the Console no allocation, and
// neither does the Read that takes the characters.
func TestConsolePacketPathAllocatesNothing(t *testing.T) {
	c, s := openFuncConsole(t, false, ConsoleOptions{})
	data := string(bytes.Repeat([]byte("x"), MaxCharacters))
	packets := make([][]byte, 16)
	for i := range packets {
		packets[i] = solPacket(uint8(i%15+1), data)
	}
	buf := make([]byte, 4096)
	i := 0
	allocs := testing.AllocsPerRun(300, func() {
		s.handler(packets[i%15])
		i++
		if n, err := c.Read(buf); err != nil || n != MaxCharacters {
			t.Fatalf("Read = %d, %v", n, err)
		}
	})
	if got := s.conn.lastPacket(t); got.AckSeq != uint8((i-1)%15+1) || got.Accepted != MaxCharacters {
		t.Fatalf("last ACK %v after %d packets", got, i)
	}
	if allocs != 0 {
		t.Fatalf("%.2f allocations per packet, want 0", allocs)
	}
}

// BenchmarkConsolePacket is the Console's share of a packet: engine step,
// ACK marshalled and handed to the session, characters buffered and Read.
func BenchmarkConsolePacket(b *testing.B) {
	c, s := openFuncConsole(b, false, ConsoleOptions{})
	data := string(bytes.Repeat([]byte("x"), MaxCharacters))
	packets := make([][]byte, 15)
	for i := range packets {
		packets[i] = solPacket(uint8(i+1), data)
	}
	buf := make([]byte, 4096)
	i := 0
	b.ReportAllocs()
	b.SetBytes(MaxCharacters)
	for b.Loop() {
		s.handler(packets[i%15])
		i++
		c.Read(buf)
	}
}

// The startup packet, keepalive and Close work as with Recv.
func TestConsoleWithHandlerStartsAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(rigConfig{})
		s := &funcSession{fakeSession: r.sess, conn: newRecordingConn(true)}
		c, err := Open(context.Background(), s, ConsoleOptions{KeepaliveInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.conn.lastPacket(t), (Packet{Seq: 1}); !samePacket(got, want) {
			t.Fatalf("startup packet %v, want %v", got, want)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		calls := r.bmc.callLog()
		want := []string{"Activate Payload 0101c6000000", "Get Payload Activation Status 01", "Deactivate Payload 010100000000"}
		if len(calls) != len(want) {
			t.Fatalf("commands %q, want %q", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Fatalf("commands %q, want %q", calls, want)
			}
		}
		select {
		case _, ok := <-s.conn.Recv():
			if ok {
				t.Fatal("payload connection yielded a payload")
			}
		default:
			t.Fatal("payload connection left open")
		}
	})
}
