package sol

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// checkOutput asserts what every Engine output must satisfy, whatever it
// was fed.
func checkOutput(t *testing.T, e *Engine, o Output) {
	t.Helper()
	cfg := e.Config()
	dataPackets := 0
	for _, p := range o.Send {
		if p.Seq > 15 || p.AckSeq > 15 || p.Op&0x80 != 0 {
			t.Fatalf("field out of range in %v", p)
		}
		if p.Seq == 0 && len(p.Data) > 0 {
			t.Fatalf("ACK-only packet carries data: %v", p)
		}
		if len(p.Data) > cfg.MaxData {
			t.Fatalf("packet of %d characters, peer takes %d", len(p.Data), cfg.MaxData)
		}
		if p.Seq != 0 {
			dataPackets++
		}
	}
	if dataPackets > 1 {
		t.Fatalf("%d data packets in one output: one may be outstanding", dataPackets)
	}
	if b := e.Buffered(); b < 0 || b > cfg.ReceiveBuffer {
		t.Fatalf("Buffered = %d outside 0..%d", b, cfg.ReceiveBuffer)
	}
	if e.Pending() > 0 && o.Deadline.IsZero() && !e.Closed() {
		// Data waiting and no timer: it could only move if the peer
		// spoke first, which a dead peer never does.
		if e.outSeq != 0 || e.paused {
			t.Fatalf("%d bytes pending with no deadline", e.Pending())
		}
	}
}

// FuzzEngineArbitrary feeds an Engine arbitrary packets and calls: it must
// not panic and its outputs must stay well-formed.
func FuzzEngineArbitrary(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c', 4, 5, 5, 200, 6, 3})
	f.Add([]byte{1, 0, 2, 1, 3, 0x40, 0, 4, 10, 5, 50, 5, 50, 7, 1})
	f.Add([]byte{1, 2, 15, 15, 255, 0xFF, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		role := ConsoleSide
		if in[0]&1 == 1 {
			role = BMCSide
		}
		e := NewEngine(Config{Role: role, MaxData: 1 + int(in[0]>>1)%40, RetryInterval: 10 * time.Millisecond,
			Retries: 2, ReceiveBuffer: 1 + int(in[0]>>3)*8})
		now := t0
		next := func() byte {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return b
		}
		in = in[1:]
		for len(in) > 0 {
			var o Output
			switch next() % 8 {
			case 0, 1, 2, 3:
				p := Packet{Seq: next(), AckSeq: next(), Accepted: next(), Op: Op(next())}
				n := int(next())
				if n > len(in) {
					n = len(in)
				}
				p.Data, in = in[:n], in[n:]
				o = e.Receive(now, p)
			case 4:
				o = e.Write(now, bytes.Repeat([]byte{'w'}, int(next())))
			case 5:
				now = now.Add(time.Duration(next()) * time.Millisecond)
				o = e.Tick(now)
			case 6:
				o = e.Consume(now, int(next()))
			case 7:
				switch next() % 4 {
				case 0:
					o = e.Break(now)
				case 1:
					o = e.Signal(now, Op(next()))
				case 2:
					o = e.SetLevel(now, Op(next()), next()&1 == 1)
				case 3:
					if next() != 0xFF {
						continue // no call, no output to check
					}
					o = e.Close(now)
				}
			}
			checkOutput(t, e, o)
		}
	})
}

// lossyLink is one direction of a simulated network between two Engines:
// packets can be delivered in order, reordered, dropped or duplicated, and
// a packet older than maxAge steps is lost (the bound that keeps a late
// copy within the 4-bit sequence space's reach, as a real network's delay
// is bounded by far less than 15 round trips).
type lossyLink struct {
	q []inFlight
}

type inFlight struct {
	p    Packet
	born int
}

const (
	maxAge      = 12
	maxInFlight = 32 // a full network queue drops what comes next
)

// fuzzSide is one end: an Engine, the stream it writes and what it has
// received so far.
type fuzzSide struct {
	e        *Engine
	out      []byte // the whole stream this side will write
	written  int
	received []byte
}

// FuzzEngineNoDuplicates runs a console-side and a BMC-side Engine against
// each other over a network the fuzzer controls (loss, duplication,
// reordering within bounded age), both streaming pseudo-random bytes. At
// every step each side's received bytes must be a prefix of what the other
// side wrote: in order, no byte twice, none skipped. At the end a clean
// network must carry everything across.
func FuzzEngineNoDuplicates(f *testing.F) {
	f.Add([]byte{12, 13, 0, 1, 2, 3, 0, 1, 8, 9, 10, 11, 14, 15, 0, 1, 6, 7})
	f.Add([]byte{12, 200, 13, 200, 6, 6, 4, 5, 4, 5, 0, 1, 0, 1, 10, 50, 0, 1})
	f.Add([]byte{12, 255, 0, 0, 0, 0, 4, 4, 4, 4, 2, 3, 2, 3, 10, 200, 0, 1, 0, 1})
	f.Fuzz(runNoDuplicates)
}

func runNoDuplicates(t *testing.T, in []byte) {
	if len(in) > 4096 {
		in = in[:4096] // longer runs find nothing new and only slow the fuzzer
	}
	{
		rng := rand.New(rand.NewPCG(1, 2))
		stream := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}
		// AssumeDeliveredAfter is off: it is for a strict peer that
		// ignores retransmissions, and deliberately gives a packet up
		// when three copies vanish while the peer talks, which this
		// network may arrange on purpose. The BMC-side Engine here
		// answers every copy; TestEngineAssumeDelivered* cover the rule.
		cfg := func(r Role) Config {
			return Config{Role: r, MaxData: 7, RetryInterval: 10 * time.Millisecond, Retries: 3, ReceiveBuffer: 16,
				AssumeDeliveredAfter: -1}
		}
		sides := [2]*fuzzSide{
			{e: NewEngine(cfg(ConsoleSide)), out: stream(600)},
			{e: NewEngine(cfg(BMCSide)), out: stream(600)},
		}
		var links [2]lossyLink // links[i] carries packets sent by side i
		now := t0
		step := 0
		apply := func(from int, o Output) {
			checkOutput(t, sides[from].e, o)
			for _, p := range o.Send {
				if len(links[from].q) < maxInFlight {
					links[from].q = append(links[from].q, inFlight{p: p, born: step})
				}
			}
			sides[from].received = append(sides[from].received, o.Deliver...)
			got := sides[from].received
			if sent := sides[1-from].out; len(got) > len(sent) || !bytes.Equal(got, sent[:len(got)]) {
				t.Fatalf("step %d: side %d received %d bytes that are not a prefix of what side %d wrote", step, from, len(got), 1-from)
			}
		}
		deliver := func(from, i int) {
			l := &links[from]
			f := l.q[i]
			l.q = append(l.q[:i], l.q[i+1:]...)
			if step-f.born > maxAge {
				return
			}
			apply(1-from, sides[1-from].e.Receive(now, f.p))
		}
		next := func() byte {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return b
		}
		for len(in) > 0 {
			step++
			b := next()
			dir := int(b & 1)
			l := &links[dir]
			switch (b >> 1) % 8 {
			case 0, 1:
				if len(l.q) > 0 {
					deliver(dir, 0)
				}
			case 2:
				if len(l.q) > 0 {
					deliver(dir, int(next())%len(l.q))
				}
			case 3:
				if len(l.q) > 0 {
					l.q = l.q[1:]
				}
			case 4:
				if len(l.q) > 0 && len(l.q) < maxInFlight {
					l.q = append(l.q, l.q[0])
				}
			case 5:
				now = now.Add(time.Duration(next()) * time.Millisecond)
				apply(0, sides[0].e.Tick(now))
				apply(1, sides[1].e.Tick(now))
			case 6:
				s := sides[dir]
				n := min(int(next())%40, len(s.out)-s.written)
				apply(dir, s.e.Write(now, s.out[s.written:s.written+n]))
				s.written += n
			case 7:
				s := sides[dir]
				apply(dir, s.e.Consume(now, s.e.Buffered()))
			}
		}

		// Clean network: everything in flight is lost (it may be too old),
		// then every packet is delivered in order and readers keep up.
		links[0].q, links[1].q = nil, nil
		for i := range 2 {
			s := sides[i]
			apply(i, s.e.Write(now, s.out[s.written:]))
			s.written = len(s.out)
		}
		for round := 0; ; round++ {
			if round > 20000 {
				t.Fatalf("no progress: received %d and %d of %d bytes", len(sides[0].received), len(sides[1].received), len(sides[0].out))
			}
			if len(sides[0].received) == len(sides[1].out) && len(sides[1].received) == len(sides[0].out) {
				break
			}
			step++
			switch {
			case len(links[0].q) > 0:
				deliver(0, 0)
			case len(links[1].q) > 0:
				deliver(1, 0)
			default:
				now = now.Add(10 * time.Millisecond)
				for i := range 2 {
					apply(i, sides[i].e.Consume(now, sides[i].e.Buffered()))
					apply(i, sides[i].e.Tick(now))
				}
			}
		}
	}
}
