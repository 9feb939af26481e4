package sol

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// capture records what an endpoint sends.
type capture struct {
	mu   sync.Mutex
	sent []Packet
}

func (c *capture) send(b []byte) error {
	p, err := ParsePacket(append([]byte(nil), b...))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sent = append(c.sent, p)
	c.mu.Unlock()
	return nil
}

func (c *capture) take() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

func newCapturedEndpoint(cfg EndpointConfig) (*BMCEndpoint, *capture) {
	c := &capture{}
	cfg.Send = c.send
	return NewBMCEndpoint(cfg), c
}

func handle(ep *BMCEndpoint, p Packet) { ep.HandlePayload(p.Marshal()) }

func TestBMCEndpointWriteBlocksUntilConsoleTakesData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, sent := newCapturedEndpoint(EndpointConfig{MaxData: 4, MaxPending: 6, RetryInterval: time.Second})
		defer ep.Close()
		done := make(chan int)
		go func() {
			n, _ := ep.Write([]byte("0123456789"))
			done <- n
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Write of 10 bytes returned with 6 allowed pending and nothing acknowledged")
		default:
		}
		if got := sent.take(); len(got) != 1 || !samePacket(got[0], dataPkt(1, "0123")) {
			t.Fatalf("sent %s, want one packet with 0123", fmtPackets(got))
		}
		handle(ep, ackPkt(1, 4))
		synctest.Wait()
		if n := <-done; n != 10 {
			t.Fatalf("Write returned %d, want 10", n)
		}
		// The ACK sent what was queued at once; the rest waits for the next.
		if got := sent.take(); len(got) != 1 || !samePacket(got[0], dataPkt(2, "45")) {
			t.Fatalf("sent %s, want one packet with 45", fmtPackets(got))
		}
		handle(ep, ackPkt(2, 2))
		if got := sent.take(); len(got) != 1 || !samePacket(got[0], dataPkt(3, "6789")) {
			t.Fatalf("sent %s, want one packet with 6789", fmtPackets(got))
		}
	})
}

func TestBMCEndpointCTSPauseBlocksHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, _ := newCapturedEndpoint(EndpointConfig{})
		defer ep.Close()
		handle(ep, Packet{Op: OpCTSPause})
		done := make(chan struct{})
		go func() {
			ep.Write([]byte("x"))
			close(done)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("host wrote while the console had CTS deasserted")
		default:
		}
		handle(ep, Packet{})
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("host still blocked after CTS was reasserted")
		}
	})
}

func TestBMCEndpointReadsTypedInputInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, sent := newCapturedEndpoint(EndpointConfig{ReceiveBuffer: 64})
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(ep)
			got <- b
		}()
		handle(ep, dataPkt(1, "hello "))
		handle(ep, dataPkt(1, "hello ")) // duplicate
		handle(ep, dataPkt(2, "world"))
		handle(ep, dataPkt(3, "!"))
		synctest.Wait()
		ep.Close()
		if b := <-got; string(b) != "hello world!" {
			t.Fatalf("host read %q, want %q", b, "hello world!")
		}
		want := []Packet{ackPkt(1, 6), ackPkt(1, 6), ackPkt(2, 5), ackPkt(3, 1),
			{AckSeq: 3, Accepted: 1, Op: StatusDeactivating}}
		if got := sent.take(); !slices.EqualFunc(got, want, samePacket) {
			t.Fatalf("sent %s, want %s", fmtPackets(got), fmtPackets(want))
		}
	})
}

func TestBMCEndpointNACKsWhenHostDoesNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, sent := newCapturedEndpoint(EndpointConfig{ReceiveBuffer: 4})
		defer ep.Close()
		handle(ep, dataPkt(1, "abcd"))
		handle(ep, dataPkt(2, "efgh")) // HandlePayload must not block
		buf := make([]byte, 4)
		if n, _ := ep.Read(buf); string(buf[:n]) != "abcd" {
			t.Fatalf("Read %q, want abcd", buf[:n])
		}
		want := []Packet{ackPkt(1, 4), nackPkt(2, 0), ackPkt(2, 0)}
		if got := sent.take(); !slices.EqualFunc(got, want, samePacket) {
			t.Fatalf("sent %s, want %s (ACK, NACK, then resume once read)", fmtPackets(got), fmtPackets(want))
		}
	})
}

func TestBMCEndpointFlushInbound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, _ := newCapturedEndpoint(EndpointConfig{})
		handle(ep, dataPkt(1, "discard me"))
		handle(ep, Packet{Seq: 2, Op: OpFlushInbound, Data: []byte("keep")})
		ep.Close()
		if b, _ := io.ReadAll(ep); string(b) != "keep" {
			t.Fatalf("host read %q after flush, want %q", b, "keep")
		}
	})
}

func TestBMCEndpointRetransmitsAndReportsSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		events := make(chan Event, 4)
		ep, sent := newCapturedEndpoint(EndpointConfig{RetryInterval: time.Second, Retries: 2,
			OnEvent: func(ev Event) { events <- ev }})
		defer ep.Close()
		ep.Write([]byte("boot"))
		time.Sleep(3500 * time.Millisecond)
		got := sent.take()
		if len(got) != 4 {
			t.Fatalf("sent %d packets in 3.5 s, want the first and 3 retransmissions", len(got))
		}
		for _, p := range got {
			if !samePacket(p, dataPkt(1, "boot")) {
				t.Fatalf("sent %v, want only packet 1", p)
			}
		}
		select {
		case ev := <-events:
			if ev != EventPeerNotAnswering {
				t.Fatalf("event %v, want PeerNotAnswering", ev)
			}
		default:
			t.Fatal("no PeerNotAnswering after 2 unanswered retransmissions")
		}
		handle(ep, ackPkt(1, 4))
		time.Sleep(10 * time.Second)
		if got := sent.take(); len(got) != 0 {
			t.Fatalf("sent %s after the ACK, want nothing", fmtPackets(got))
		}
	})
}

func TestBMCEndpointClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ep, sent := newCapturedEndpoint(EndpointConfig{MaxPending: 1})
		writeErr := make(chan error)
		go func() {
			_, err := ep.Write([]byte("abc")) // blocks: nothing acknowledged
			writeErr <- err
		}()
		synctest.Wait()
		sent.take()
		ep.Close()
		ep.Close()
		if err := <-writeErr; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Write returned %v, want ErrClosed", err)
		}
		want := []Packet{{Op: StatusDeactivating}}
		if got := sent.take(); !slices.EqualFunc(got, want, samePacket) {
			t.Fatalf("sent %s, want one deactivating status", fmtPackets(got))
		}
		handle(ep, dataPkt(1, "late"))
		if got := sent.take(); len(got) != 0 {
			t.Fatalf("answered after Close: %s", fmtPackets(got))
		}
		if _, err := ep.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read after Close: %v, want io.EOF", err)
		}
	})
}

func TestBMCEndpointDropsMalformedPayload(t *testing.T) {
	ep, sent := newCapturedEndpoint(EndpointConfig{})
	defer ep.Close()
	ep.HandlePayload([]byte{1, 2})
	if got := sent.take(); len(got) != 0 {
		t.Fatalf("answered a 2-byte payload: %s", fmtPackets(got))
	}
}

func TestRing(t *testing.T) {
	var r ring
	var want []byte
	rd := make([]byte, 7)
	for i := range 200 {
		chunk := bytes.Repeat([]byte{byte(i)}, i%13)
		r.write(chunk)
		want = append(want, chunk...)
		if i%3 == 0 {
			n := r.read(rd)
			if !bytes.Equal(rd[:n], want[:n]) {
				t.Fatalf("step %d: read %v, want %v", i, rd[:n], want[:n])
			}
			want = want[n:]
		}
		if r.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", i, r.len(), len(want))
		}
	}
	rest := make([]byte, r.len())
	r.read(rest)
	if !bytes.Equal(rest, want) {
		t.Fatal("ring lost or reordered bytes")
	}
}
