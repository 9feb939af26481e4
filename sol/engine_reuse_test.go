package sol

import (
	"bytes"
	"slices"
	"testing"
)

// ReceiveTo and ConsumeTo give the same answers as Receive and Consume,
// through the caller's Output.
func TestEngineReceiveToMatchesReceive(t *testing.T) {
	steps := []struct {
		name    string
		p       Packet
		consume int
	}{
		{name: "new packet", p: dataPkt(1, "abcdef")},
		{name: "copy with more data", p: dataPkt(1, "abcdefgh")},
		{name: "next packet fills the buffer", p: dataPkt(2, "0123456789")},
		{name: "packet that does not fit: NACK", p: dataPkt(3, "xyz")},
		{name: "reader frees room: resume", consume: 8},
		{name: "ACK-only packet", p: ackPkt(0, 0)},
		{name: "BMC status", p: Packet{Seq: 4, Op: StatusBreakDetected, Data: []byte("!")}},
	}
	small := func(c *Config) { c.ReceiveBuffer = 16 }
	byValue, byRef := newTestEngine(ConsoleSide, small), newTestEngine(ConsoleSide, small)
	var o Output
	for _, st := range steps {
		var want Output
		if st.consume > 0 {
			want = byValue.Consume(at(0), st.consume)
			byRef.ConsumeTo(&o, at(0), st.consume)
		} else {
			want = byValue.Receive(at(0), st.p)
			byRef.ReceiveTo(&o, at(0), st.p)
		}
		if !slices.EqualFunc(o.Send, want.Send, samePacket) || !bytes.Equal(o.Deliver, want.Deliver) ||
			!slices.Equal(o.Events, want.Events) || !o.Deadline.Equal(want.Deadline) {
			t.Fatalf("%s: ReceiveTo/ConsumeTo gave send %s deliver %q events %v, Receive/Consume send %s deliver %q events %v",
				st.name, fmtPackets(o.Send), o.Deliver, o.Events, fmtPackets(want.Send), want.Deliver, want.Events)
		}
	}
}

// A shell that reuses one Output receives and acknowledges without
// allocating.
func TestEngineReceiveToAllocatesNothing(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	data := bytes.Repeat([]byte("x"), MaxCharacters)
	var o Output
	seq := uint8(0)
	allocs := testing.AllocsPerRun(100, func() {
		seq = nextSeqAfter(seq)
		e.ReceiveTo(&o, at(0), Packet{Seq: seq, Data: data})
		if len(o.Send) != 1 || o.Send[0].AckSeq != seq {
			t.Fatalf("answer to packet %d: %s", seq, fmtPackets(o.Send))
		}
		e.ConsumeTo(&o, at(0), len(o.Deliver))
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet, want 0", allocs)
	}
}

// The send queue holds what is pending, not what has passed through it: a
// host that keeps writing while the console acknowledges packet by packet
// leaves a queue the size of its backlog.
func TestEngineQueueSizedByBacklog(t *testing.T) {
	e := newTestEngine(BMCSide)
	chunk := bytes.Repeat([]byte("y"), 300)
	var out Packet // the outstanding data packet
	note := func(o Output) {
		for _, p := range o.Send {
			if p.Seq != 0 {
				out = p
			}
		}
	}
	ack := func() {
		o := e.Receive(at(0), ackPkt(out.Seq, uint8(len(out.Data))))
		out = Packet{}
		note(o)
	}
	note(e.Write(at(0), chunk))
	maxPending := 0
	for round := range 2000 {
		// The console acknowledges one packet, then the host writes more:
		// the backlog grows by 45 bytes a round, and every tenth round
		// the console catches up.
		ack()
		if round%10 == 9 {
			for out.Seq != 0 {
				ack()
			}
		}
		maxPending = max(maxPending, e.Pending())
		note(e.Write(at(0), chunk))
	}
	if maxPending > 1024 {
		t.Fatalf("backlog reached %d bytes; the test means to keep it under 1 KiB", maxPending)
	}
	// The queue grows by doubling: at most twice the largest backlog.
	if n := cap(e.queue.buf); n > 2*maxPending {
		t.Fatalf("send queue of %d bytes for a backlog of at most %d", n, maxPending)
	}
}

func TestRingUnread(t *testing.T) {
	var r ring
	r.write([]byte("world"))
	r.unread([]byte("hello "))
	r.write([]byte("!"))
	// Wrap the head around the end of the buffer.
	got := make([]byte, 64)
	n := r.read(got[:3])
	r.unread(got[:n])
	r.unread(bytes.Repeat([]byte("-"), 300)) // grows the buffer
	n = r.read(got[:0])
	all := make([]byte, r.len())
	r.read(all)
	if want := string(bytes.Repeat([]byte("-"), 300)) + "hello world!"; string(all) != want || n != 0 {
		t.Fatalf("ring holds %q, want %q", all, want)
	}
}
