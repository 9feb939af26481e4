package sol

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const testInterval = 100 * time.Millisecond

func newTestEngine(role Role, mods ...func(*Config)) *Engine {
	cfg := Config{Role: role, RetryInterval: testInterval, Retries: 2, ReceiveBuffer: 1024}
	for _, m := range mods {
		m(&cfg)
	}
	return NewEngine(cfg)
}

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func dataPkt(seq uint8, s string) Packet { return Packet{Seq: seq, Data: []byte(s)} }
func ackPkt(seq, n uint8) Packet         { return Packet{AckSeq: seq, Accepted: n} }
func nackPkt(seq, n uint8) Packet        { return Packet{AckSeq: seq, Accepted: n, Op: OpNACK} }

func fmtPackets(ps []Packet) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("{%v %q}", p, p.Data))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// expectSend checks the packets of an Output, in order.
func expectSend(t *testing.T, step string, got Output, want ...Packet) {
	t.Helper()
	if len(got.Send) != len(want) || !slices.EqualFunc(got.Send, want, samePacket) {
		t.Fatalf("%s: sent %s, want %s", step, fmtPackets(got.Send), fmtPackets(want))
	}
}

func expectDeliver(t *testing.T, step string, got Output, want string) {
	t.Helper()
	if string(got.Deliver) != want {
		t.Fatalf("%s: delivered %q, want %q", step, got.Deliver, want)
	}
}

func expectEvents(t *testing.T, step string, got Output, want ...Event) {
	t.Helper()
	if !slices.Equal(got.Events, want) {
		t.Fatalf("%s: events %v, want %v", step, got.Events, want)
	}
}

// ackAll plays a peer that accepts everything e sends, until e is idle.
func ackAll(t *testing.T, e *Engine, now time.Time, o Output) []Packet {
	t.Helper()
	var sent []Packet
	for i := 0; len(o.Send) > 0; i++ {
		if i > 1000 {
			t.Fatal("engine never went idle")
		}
		p := o.Send[len(o.Send)-1]
		sent = append(sent, o.Send...)
		if p.Seq == 0 {
			break
		}
		o = e.Receive(now, ackPkt(p.Seq, uint8(len(p.Data))))
	}
	return sent
}

func TestEngineSequenceNumbersWrapSkippingZero(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	var seqs []uint8
	for i := range 32 {
		o := e.Write(at(i), []byte{byte(i)})
		if len(o.Send) != 1 {
			t.Fatalf("write %d: sent %d packets, want 1", i, len(o.Send))
		}
		seqs = append(seqs, o.Send[0].Seq)
		o = e.Receive(at(i), ackPkt(o.Send[0].Seq, 1))
		expectSend(t, "after ack", o)
	}
	want := []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2}
	if !slices.Equal(seqs, want) {
		t.Fatalf("sequence numbers %v, want %v", seqs, want)
	}
}

func TestEngineFirstSeq(t *testing.T) {
	e := newTestEngine(ConsoleSide, func(c *Config) { c.FirstSeq = 15 })
	expectSend(t, "first", e.Write(t0, []byte("a")), dataPkt(15, "a"))
	expectSend(t, "second", e.Receive(t0, ackPkt(15, 1)))
	expectSend(t, "third", e.Write(t0, []byte("b")), dataPkt(1, "b"))
}

func TestEngineACKOnlyPacketsAreNeverAcknowledged(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
	}{
		{"bare ACK-only", Packet{}},
		{"ACK of nothing outstanding", ackPkt(4, 3)},
		{"NACK of nothing outstanding", nackPkt(4, 0)},
		{"seq 0 carrying characters", Packet{Data: []byte("ignored")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(ConsoleSide)
			o := e.Receive(t0, tc.p)
			expectSend(t, "receive", o)
			expectDeliver(t, "receive", o, "")
			if !o.Deadline.IsZero() {
				t.Fatalf("deadline %v, want none", o.Deadline)
			}
		})
	}
}

func TestEngineOneOutstandingPacketPerDirection(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	expectSend(t, "write a", e.Write(t0, []byte("a")), dataPkt(1, "a"))
	expectSend(t, "write b while 1 outstanding", e.Write(t0, []byte("b")))
	expectSend(t, "write c while 1 outstanding", e.Write(t0, []byte("c")))
	if got := e.Pending(); got != 3 {
		t.Fatalf("Pending = %d, want 3", got)
	}
	expectSend(t, "ack 1", e.Receive(t0, ackPkt(1, 1)), dataPkt(2, "bc"))
	expectSend(t, "ack 2", e.Receive(t0, ackPkt(2, 2)))
	if got := e.Pending(); got != 0 {
		t.Fatalf("Pending = %d, want 0", got)
	}
}

func TestEngineRetransmitThenPeerNotAnswering(t *testing.T) {
	e := newTestEngine(ConsoleSide) // Retries: 2
	o := e.Write(at(0), []byte("abc"))
	expectSend(t, "first send", o, dataPkt(1, "abc"))
	if !o.Deadline.Equal(at(100)) {
		t.Fatalf("deadline %v, want %v", o.Deadline, at(100))
	}
	expectSend(t, "tick too early", e.Tick(at(99)))
	e.Write(at(50), []byte("def")) // must not grow the retransmission
	for i, ms := range []int{100, 200} {
		o = e.Tick(at(ms))
		expectSend(t, fmt.Sprintf("retransmission %d", i+1), o, dataPkt(1, "abc"))
		expectEvents(t, "retransmission", o)
	}
	o = e.Tick(at(300))
	expectEvents(t, "after 2 retransmissions", o, EventPeerNotAnswering)
	expectSend(t, "keeps retransmitting", o, dataPkt(1, "abc"))
	o = e.Tick(at(400))
	expectEvents(t, "event only once per outage", o)
	expectSend(t, "ack arrives late", e.Receive(at(450), ackPkt(1, 3)), dataPkt(2, "def"))
	o = e.Receive(at(460), ackPkt(2, 3))
	if !o.Deadline.IsZero() {
		t.Fatalf("deadline %v after everything was acked, want none", o.Deadline)
	}
	expectSend(t, "idle tick", e.Tick(at(1000)))
	if n := e.Retransmissions(); n != 4 {
		t.Fatalf("Retransmissions() = %d, want 4 (at 100, 200, 300 and 400 ms)", n)
	}
}

func TestEnginePeerNotAnsweringResetsAfterAnswer(t *testing.T) {
	e := newTestEngine(ConsoleSide, func(c *Config) { c.Retries = 0 })
	e.Write(at(0), []byte("a"))
	expectEvents(t, "first outage", e.Tick(at(100)), EventPeerNotAnswering)
	e.Receive(at(150), ackPkt(1, 1))
	e.Write(at(200), []byte("b"))
	expectEvents(t, "second outage reported again", e.Tick(at(300)), EventPeerNotAnswering)
}

func TestEngineReceiveRetransmissionWithMoreData(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	steps := []struct {
		name    string
		in      Packet
		deliver string
		ack     Packet
	}{
		{"first copy", dataPkt(3, "abc"), "abc", ackPkt(3, 3)},
		{"grown copy delivers only new bytes", dataPkt(3, "abcdef"), "def", ackPkt(3, 6)},
		{"same copy again delivers nothing", dataPkt(3, "abcdef"), "", ackPkt(3, 6)},
		{"older shorter copy delivers nothing, ACK keeps the full count", dataPkt(3, "abc"), "", ackPkt(3, 6)},
		{"next packet", dataPkt(4, "g"), "g", ackPkt(4, 1)},
	}
	for _, s := range steps {
		o := e.Receive(t0, s.in)
		expectDeliver(t, s.name, o, s.deliver)
		expectSend(t, s.name, o, s.ack)
	}
}

func TestEngineDuplicateAfterWrapAround(t *testing.T) {
	e := newTestEngine(BMCSide)
	var delivered []byte
	feed := func(name string, p Packet, wantAck ...Packet) {
		t.Helper()
		o := e.Receive(t0, p)
		delivered = append(delivered, o.Deliver...)
		expectSend(t, name, o, wantAck...)
	}
	feed("13", dataPkt(13, "m"), ackPkt(13, 1))
	feed("14", dataPkt(14, "n"), ackPkt(14, 1))
	feed("15", dataPkt(15, "o"), ackPkt(15, 1))
	feed("1 after wrap is new", dataPkt(1, "p"), ackPkt(1, 1))
	feed("late copy of 15 is ignored", dataPkt(15, "o"))
	feed("late copy of 14 is ignored", dataPkt(14, "n"))
	feed("copy of 1 is re-acked", dataPkt(1, "p"), ackPkt(1, 1))
	feed("2 is new", dataPkt(2, "q"), ackPkt(2, 1))
	feed("9 is 7 ahead: new (the peer skipped some)", dataPkt(9, "r"), ackPkt(9, 1))
	if string(delivered) != "mnopqr" {
		t.Fatalf("delivered %q, want %q", delivered, "mnopqr")
	}
}

// TestEngineLateCopiesUpToSevenBehind replays the console's packets as the
// BMC saw them in the stall of fakebmc's TestSOLEchoThroughLossyLink, up to
// the point where a late copy of 15 arrived after 12. Copies up to 7
// numbers late are ignored and the exchange goes on. The copy of 15 there
// was 13 numbers late, which 15 sequence numbers cannot tell from a new
// packet: rmcpplus's sequence window now drops any packet overtaken by 8 or
// more later ones, so it never reaches the engine.
func TestEngineLateCopiesUpToSevenBehind(t *testing.T) {
	e := newTestEngine(BMCSide)
	var want, got []byte
	sent := map[uint8]string{}
	for i, seq := range []uint8{14, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} {
		b := string(rune('a' + i))
		o := e.Receive(t0, dataPkt(seq, b))
		expectSend(t, fmt.Sprintf("new packet %d", seq), o, ackPkt(seq, 1))
		want, got = append(want, b...), append(got, o.Deliver...)
		sent[seq] = b
	}
	for behind := uint8(1); behind <= 7; behind++ {
		seq := 12 - behind
		o := e.Receive(t0, dataPkt(seq, sent[seq]))
		expectSend(t, fmt.Sprintf("late copy of %d (%d behind 12)", seq, behind), o)
		got = append(got, o.Deliver...)
	}
	o := e.Receive(t0, dataPkt(13, "z"))
	expectSend(t, "13 after the late copies", o, ackPkt(13, 1))
	want, got = append(want, 'z'), append(got, o.Deliver...)
	if !bytes.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
}

func TestEngineStalePacketACKIsIgnored(t *testing.T) {
	// A late copy of an old data packet also carries an old ACK; it must
	// not acknowledge the packet now outstanding under the same number.
	e := newTestEngine(ConsoleSide)
	e.Receive(t0, dataPkt(5, "x"))
	e.Receive(t0, dataPkt(6, "y"))
	expectSend(t, "write", e.Write(t0, []byte("abc")), dataPkt(1, "abc"))
	stale := Packet{Seq: 5, AckSeq: 1, Accepted: 3, Data: []byte("x")}
	expectSend(t, "stale packet", e.Receive(t0, stale))
	if e.Pending() != 3 {
		t.Fatalf("Pending = %d: the stale ACK was taken", e.Pending())
	}
}

func TestEnginePartialAcceptResendsRestUnderNewSeq(t *testing.T) {
	tests := []struct {
		name  string
		ack   Packet
		after []Packet
	}{
		{"2 of 6 accepted", ackPkt(1, 2), []Packet{dataPkt(2, "cdefgh")}},
		{"0 of 6 accepted without NACK", ackPkt(1, 0), []Packet{dataPkt(2, "abcdefgh")}},
		{"all accepted", ackPkt(1, 6), []Packet{dataPkt(2, "gh")}},
		{"more than sent counts as all", ackPkt(1, 200), []Packet{dataPkt(2, "gh")}},
		{"ACK of another number is ignored", ackPkt(7, 6), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(ConsoleSide)
			expectSend(t, "write", e.Write(t0, []byte("abcdef")), dataPkt(1, "abcdef"))
			e.Write(t0, []byte("gh"))
			expectSend(t, "ack", e.Receive(t0, tc.ack), tc.after...)
		})
	}
}

func TestEngineBatchesUpToPeerPayloadSize(t *testing.T) {
	// ipmi_sim's Activate Payload answer: inbound payload size 32, so 28
	// characters per packet, as ipmitool sent in the capture.
	e := newTestEngine(ConsoleSide, func(c *Config) { c.MaxData = MaxDataForPayloadSize(32) })
	text := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\r"
	sent := ackAll(t, e, t0, e.Write(t0, []byte(text)))
	var sizes []int
	var got []byte
	for _, p := range sent {
		sizes = append(sizes, len(p.Data))
		got = append(got, p.Data...)
	}
	if !slices.Equal(sizes, []int{28, 19}) || string(got) != text {
		t.Fatalf("packet sizes %v carrying %q, want [28 19] carrying %q", sizes, got, text)
	}

	// Bytes written one at a time while a packet is outstanding are sent
	// together, not one per packet.
	e = newTestEngine(ConsoleSide, func(c *Config) { c.MaxData = 10 })
	expectSend(t, "first byte", e.Write(t0, []byte("a")), dataPkt(1, "a"))
	for _, c := range "bcdefghijklm" {
		expectSend(t, "queued byte", e.Write(t0, []byte(string(c))))
	}
	expectSend(t, "ack", e.Receive(t0, ackPkt(1, 1)), dataPkt(2, "bcdefghijk"))
	expectSend(t, "ack", e.Receive(t0, ackPkt(2, 10)), dataPkt(3, "lm"))
}

func TestMaxDataForPayloadSize(t *testing.T) {
	tests := []struct {
		name string
		size int
		want int
	}{
		{"ipmi_sim inbound 32", 32, 28},
		{"ipmi_sim outbound 16384 capped by the 1-byte count", 16384, 255},
		{"exactly 255 characters", 259, 255},
		{"header only", 4, 1},
		{"nonsense zero", 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaxDataForPayloadSize(tc.size); got != tc.want {
				t.Fatalf("MaxDataForPayloadSize(%d) = %d, want %d", tc.size, got, tc.want)
			}
		})
	}
}

func TestEngineACKPiggyBacksOnData(t *testing.T) {
	e := newTestEngine(BMCSide)
	expectSend(t, "write a", e.Write(t0, []byte("a")), dataPkt(1, "a"))
	e.Write(t0, []byte("b"))
	// The console's data ACKs our packet 1: packet 2 goes out and carries
	// the ACK of the console's packet 5; no separate ACK-only packet.
	in := Packet{Seq: 5, AckSeq: 1, Accepted: 1, Data: []byte("zz")}
	want := Packet{Seq: 2, AckSeq: 5, Accepted: 2, Data: []byte("b")}
	o := e.Receive(t0, in)
	expectDeliver(t, "console data", o, "zz")
	expectSend(t, "piggy-backed", o, want)
	// Nothing to carry it: ACK-only.
	expectSend(t, "ack-only while 2 outstanding", e.Receive(t0, dataPkt(6, "y")), ackPkt(6, 1))
	// A retransmission carries no stale ACK.
	expectSend(t, "retransmission", e.Tick(at(100)), dataPkt(2, "b"))
}

func TestEngineNACKWhenReceiveBufferFull(t *testing.T) {
	e := newTestEngine(ConsoleSide, func(c *Config) { c.ReceiveBuffer = 4; c.MaxData = 4 })
	steps := []struct {
		name    string
		do      func() Output
		deliver string
		send    []Packet
	}{
		{"fits", func() Output { return e.Receive(t0, dataPkt(1, "abc")) }, "abc", []Packet{ackPkt(1, 3)}},
		{"one byte of room: partial accept, buffer full so NACK bit set",
			func() Output { return e.Receive(t0, dataPkt(2, "defgh")) }, "d", []Packet{nackPkt(2, 1)}},
		{"copy after partial accept delivers nothing",
			func() Output { return e.Receive(t0, dataPkt(2, "defgh")) }, "", []Packet{nackPkt(2, 1)}},
		{"rest under a new number while full: NACK, nothing dropped",
			func() Output { return e.Receive(t0, dataPkt(3, "efgh")) }, "", []Packet{nackPkt(3, 0)}},
		{"consuming too little keeps the NACK", func() Output { return e.Consume(t0, 1) }, "", nil},
		{"consuming enough ACKs the NACKed packet without the NACK bit",
			func() Output { return e.Consume(t0, 3) }, "", []Packet{ackPkt(3, 0)}},
		{"the re-offer under a new number is accepted",
			func() Output { return e.Receive(t0, dataPkt(4, "efgh")) }, "efgh", []Packet{ackPkt(4, 4)}},
	}
	for _, s := range steps {
		o := s.do()
		expectDeliver(t, s.name, o, s.deliver)
		expectSend(t, s.name, o, s.send...)
	}
	if e.Buffered() != 4 {
		t.Fatalf("Buffered = %d, want 4", e.Buffered())
	}
}

func TestEngineCopyAfterPartialAcceptDeliversNothing(t *testing.T) {
	// After a partial accept the sender resends the rest under a new
	// number; a retransmitted copy of the old number that arrives once
	// there is room must not deliver that rest as well.
	e := newTestEngine(ConsoleSide, func(c *Config) { c.ReceiveBuffer = 4 })
	o := e.Receive(t0, dataPkt(1, "abcdef"))
	expectDeliver(t, "first copy", o, "abcd")
	expectSend(t, "first copy", o, nackPkt(1, 4))
	expectSend(t, "room again", e.Consume(t0, 4), ackPkt(1, 4))
	o = e.Receive(t0, dataPkt(1, "abcdef"))
	expectDeliver(t, "retransmitted copy", o, "")
	expectSend(t, "retransmitted copy", o, ackPkt(1, 4))
	o = e.Receive(t0, dataPkt(2, "ef"))
	expectDeliver(t, "the rest", o, "ef")
	expectSend(t, "the rest", o, ackPkt(2, 2))
}

func TestEngineNACKedSenderPausesAndResumes(t *testing.T) {
	tests := []struct {
		name   string
		resume func(e *Engine) Output
		want   Packet
	}{
		{
			name:   "peer ACKs the NACKed packet",
			resume: func(e *Engine) Output { return e.Receive(at(30), ackPkt(1, 0)) },
			want:   dataPkt(2, "abcdefgh"),
		},
		{
			name:   "retry interval passes: offer again under a new number",
			resume: func(e *Engine) Output { return e.Tick(at(110)) },
			want:   dataPkt(2, "abcdefgh"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(ConsoleSide)
			expectSend(t, "write", e.Write(at(0), []byte("abcdef")), dataPkt(1, "abcdef"))
			o := e.Receive(at(10), nackPkt(1, 0))
			expectSend(t, "NACK", o)
			if !o.Deadline.Equal(at(110)) {
				t.Fatalf("deadline %v, want the pause end %v", o.Deadline, at(110))
			}
			expectSend(t, "write while paused", e.Write(at(20), []byte("gh")))
			expectSend(t, "tick before the pause ends", e.Tick(at(100)))
			if e.Pending() != 8 {
				t.Fatalf("Pending = %d while paused, want 8 (nothing dropped)", e.Pending())
			}
			expectSend(t, "resume", tc.resume(e), tc.want)
		})
	}
}

func TestEngineNACKWithPartialCount(t *testing.T) {
	// ipmi_sim sets the NACK bit on an ACK that filled its buffer: the
	// accepted characters are done, the rest waits.
	e := newTestEngine(ConsoleSide)
	e.Write(at(0), []byte("abcdef"))
	expectSend(t, "NACK accepting 4", e.Receive(at(10), nackPkt(1, 4)))
	if e.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", e.Pending())
	}
	expectSend(t, "resume", e.Receive(at(20), ackPkt(1, 4)), dataPkt(2, "ef"))
}

func TestEngineBreak(t *testing.T) {
	t.Run("alone: empty data packet with the break bit, as ipmitool sends", func(t *testing.T) {
		e := newTestEngine(ConsoleSide)
		o := e.Break(t0)
		expectSend(t, "break", o, Packet{Seq: 1, Op: OpGenerateBreak})
		if got := o.Send[0].Marshal(); !bytes.Equal(got, []byte{0x01, 0x00, 0x00, 0x10}) {
			t.Fatalf("wire %x, want ipmitool's 01000010", got)
		}
		expectSend(t, "acked", e.Receive(t0, ackPkt(1, 0)))
		expectSend(t, "not repeated", e.Write(t0, []byte("x")), dataPkt(2, "x"))
	})
	t.Run("after the bytes written before it, with the bytes written after it", func(t *testing.T) {
		e := newTestEngine(ConsoleSide, func(c *Config) { c.MaxData = 3 })
		expectSend(t, "write", e.Write(t0, []byte("ab")), dataPkt(1, "ab"))
		e.Write(t0, []byte("cdef"))
		e.Break(t0)
		e.Write(t0, []byte("gh"))
		expectSend(t, "ack 1", e.Receive(t0, ackPkt(1, 2)), dataPkt(2, "cde"))
		expectSend(t, "ack 2", e.Receive(t0, ackPkt(2, 3)), dataPkt(3, "f"))
		expectSend(t, "ack 3", e.Receive(t0, ackPkt(3, 1)), Packet{Seq: 4, Op: OpGenerateBreak, Data: []byte("gh")})
	})
	t.Run("partial accept before the break keeps the order", func(t *testing.T) {
		e := newTestEngine(ConsoleSide)
		e.Write(t0, []byte("abcd"))
		e.Break(t0)
		expectSend(t, "partial", e.Receive(t0, ackPkt(1, 1)), dataPkt(2, "bcd"))
		expectSend(t, "rest acked", e.Receive(t0, ackPkt(2, 3)), Packet{Seq: 3, Op: OpGenerateBreak})
	})
	t.Run("retransmitted with its break; NACK does not repeat it", func(t *testing.T) {
		e := newTestEngine(ConsoleSide)
		e.Write(at(0), []byte("ab"))
		e.Break(at(0))
		e.Write(at(0), []byte("x"))
		want := Packet{Seq: 2, Op: OpGenerateBreak, Data: []byte("x")}
		expectSend(t, "ack 1", e.Receive(at(0), ackPkt(1, 2)), want)
		expectSend(t, "retransmission", e.Tick(at(100)), want)
		expectSend(t, "NACK", e.Receive(at(110), nackPkt(2, 0)))
		expectSend(t, "re-offer", e.Tick(at(210)), dataPkt(3, "x"))
	})
	t.Run("BMC side: break detected status", func(t *testing.T) {
		e := newTestEngine(BMCSide)
		expectSend(t, "break", e.Break(t0), Packet{Seq: 1, Op: StatusBreakDetected})
	})
}

func TestEngineSignalEmptyPacket(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	expectSend(t, "sync", e.Signal(t0, 0), Packet{Seq: 1})
	expectSend(t, "acked", e.Receive(t0, ackPkt(1, 0)))
	if !e.Tick(at(1000)).Deadline.IsZero() || e.Pending() != 0 {
		t.Fatal("engine not idle after the empty packet was acked")
	}
}

func TestEngineSetLevel(t *testing.T) {
	e := newTestEngine(BMCSide)
	expectSend(t, "set", e.SetLevel(t0, StatusTransferUnavailable, true), Packet{Seq: 1, Op: StatusTransferUnavailable})
	e.Receive(t0, ackPkt(1, 0))
	expectSend(t, "level rides on data", e.Write(t0, []byte("a")), Packet{Seq: 2, Op: StatusTransferUnavailable, Data: []byte("a")})
	expectSend(t, "and on ACKs", e.Receive(t0, dataPkt(3, "k")), Packet{AckSeq: 3, Accepted: 1, Op: StatusTransferUnavailable})
	expectSend(t, "unchanged level sends nothing", e.SetLevel(t0, StatusTransferUnavailable, true))
}

func TestEngineBMCStatusEvents(t *testing.T) {
	e := newTestEngine(ConsoleSide)
	steps := []struct {
		name string
		in   Packet
		want []Event
	}{
		{"transfer unavailable", Packet{Op: StatusTransferUnavailable}, []Event{EventTransferUnavailable}},
		{"still unavailable: no repeat", Packet{Op: StatusTransferUnavailable}, nil},
		{"available again", Packet{}, []Event{EventTransferAvailable}},
		{"break detected with data", Packet{Seq: 1, Op: StatusBreakDetected, Data: []byte("x")}, []Event{EventBreakDetected}},
		{"retransmission does not repeat it", Packet{Seq: 1, Op: StatusBreakDetected, Data: []byte("x")}, nil},
		{"transmit overrun", Packet{Seq: 2, Op: StatusTransmitOverrun}, []Event{EventTransmitOverrun}},
		{"deactivating", Packet{Op: StatusDeactivating}, []Event{EventDeactivating}},
		{"deactivating reported once", Packet{Seq: 3, Op: StatusDeactivating}, nil},
	}
	for _, s := range steps {
		expectEvents(t, s.name, e.Receive(t0, s.in), s.want...)
	}
}

func TestEngineConsoleOperationEvents(t *testing.T) {
	e := newTestEngine(BMCSide)
	e.Receive(t0, dataPkt(1, "typed"))
	if e.Buffered() != 5 {
		t.Fatalf("Buffered = %d, want 5", e.Buffered())
	}
	e.Write(t0, []byte("out1"))
	e.Write(t0, []byte("out2")) // queued behind the outstanding packet
	steps := []struct {
		name string
		in   Packet
		want []Event
	}{
		{"break", Packet{Seq: 2, Op: OpGenerateBreak}, []Event{EventBreakRequested}},
		{"break retransmitted: not repeated", Packet{Seq: 2, Op: OpGenerateBreak}, nil},
		{"ring", Packet{Seq: 3, Op: OpRingWOR}, []Event{EventRing}},
		{"CTS pause", Packet{Op: OpCTSPause}, []Event{EventCTSPause}},
		{"CTS still paused", Packet{Seq: 4, Op: OpCTSPause}, nil},
		{"CTS resume, DCD drop", Packet{Op: OpDropDCDDSR}, []Event{EventCTSResume, EventDCDDSRDrop}},
		{"DCD restore", Packet{}, []Event{EventDCDDSRRestore}},
		{"flush both", Packet{Seq: 5, Op: OpFlushInbound | OpFlushOutbound}, []Event{EventFlushInbound, EventFlushOutbound}},
	}
	for _, s := range steps {
		expectEvents(t, s.name, e.Receive(t0, s.in), s.want...)
	}
	if e.Buffered() != 0 {
		t.Fatalf("Buffered = %d after flush inbound, want 0", e.Buffered())
	}
	if e.Pending() != 4 {
		t.Fatalf("Pending = %d after flush outbound, want 4 (only the packet in flight)", e.Pending())
	}
}

func TestEngineFlushInboundThenSamePacketData(t *testing.T) {
	// Operations act before the characters of their own packet.
	e := newTestEngine(BMCSide)
	e.Receive(t0, dataPkt(1, "old"))
	o := e.Receive(t0, Packet{Seq: 2, Op: OpFlushInbound, Data: []byte("new")})
	expectEvents(t, "flush", o, EventFlushInbound)
	expectDeliver(t, "flush", o, "new")
	if e.Buffered() != 3 {
		t.Fatalf("Buffered = %d, want 3", e.Buffered())
	}
}

func TestEngineCloseBMCSendsDeactivatingOnce(t *testing.T) {
	e := newTestEngine(BMCSide)
	e.Receive(t0, dataPkt(7, "ab"))
	expectSend(t, "close", e.Close(t0), Packet{AckSeq: 7, Accepted: 2, Op: StatusDeactivating})
	expectSend(t, "close again", e.Close(t0))
	expectSend(t, "write after close", e.Write(t0, []byte("x")))
	expectSend(t, "receive after close", e.Receive(t0, dataPkt(8, "y")))

	c := newTestEngine(ConsoleSide)
	expectSend(t, "console close sends nothing", c.Close(t0))
}

// TestEngineAnswersLikeTheCapturedPeers replays the console side of the
// ipmitool/ipmi_sim capture into a BMC-side Engine and the BMC side into a
// console-side Engine: our answers must be the bytes the real peers sent.
func TestEngineAnswersLikeTheCapturedPeers(t *testing.T) {
	type exchange struct{ in, out string }
	tests := []struct {
		name  string
		role  Role
		steps []exchange
	}{
		{
			name: "BMC side answers ipmitool like ipmi_sim",
			role: BMCSide,
			steps: []exchange{
				{"01000010", "00010000"},
				{"020000000d", "00020100"},
				{"03000000" + hexOf("abcdefghijklmnopqrstuvwxyz01"), "00031c00"},
				{"04000000" + hexOf("23456789ABCDEFGHIJ\r"), "00041300"},
			},
		},
		{
			name:  "console side answers ipmi_sim like ipmitool",
			role:  ConsoleSide,
			steps: []exchange{{"01000000" + hexOf("hello from host\r\n"), "00011100"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(tc.role)
			for _, s := range tc.steps {
				p, err := ParsePacket(mustHex(t, s.in))
				if err != nil {
					t.Fatal(err)
				}
				o := e.Receive(t0, p)
				if len(o.Send) != 1 {
					t.Fatalf("%s: sent %s, want one packet %s", s.in, fmtPackets(o.Send), s.out)
				}
				if got := fmt.Sprintf("%x", o.Send[0].Marshal()); got != s.out {
					t.Fatalf("answer to %s = %s, want %s", s.in, got, s.out)
				}
			}
		})
	}
}

func hexOf(s string) string { return fmt.Sprintf("%x", s) }

func TestEngineAcceptMax(t *testing.T) {
	tests := []struct {
		name      string
		acceptMax int
		in        Packet
		deliver   string
		ack       Packet
	}{
		{"longer than the cap: partial accept", 3, dataPkt(1, "abcdef"), "abc", ackPkt(1, 3)},
		{"within the cap: all accepted", 3, dataPkt(1, "ab"), "ab", ackPkt(1, 2)},
		{"no cap", 0, dataPkt(1, "abcdef"), "abcdef", ackPkt(1, 6)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(BMCSide, func(c *Config) { c.AcceptMax = tc.acceptMax })
			o := e.Receive(t0, tc.in)
			expectDeliver(t, "receive", o, tc.deliver)
			expectSend(t, "receive", o, tc.ack)
		})
	}
	t.Run("a copy after a capped accept delivers nothing more", func(t *testing.T) {
		e := newTestEngine(BMCSide, func(c *Config) { c.AcceptMax = 3 })
		e.Receive(t0, dataPkt(1, "abcdef"))
		o := e.Receive(t0, dataPkt(1, "abcdef"))
		expectDeliver(t, "copy", o, "")
		expectSend(t, "copy", o, ackPkt(1, 3))
	})
	t.Run("console and capped BMC deliver everything once, in order", func(t *testing.T) {
		con := newTestEngine(ConsoleSide)
		bmc := newTestEngine(BMCSide, func(c *Config) { c.AcceptMax = 4 })
		want := "the quick brown fox jumps over the lazy dog"
		var got []byte
		o := con.Write(t0, []byte(want))
		for i := 0; len(o.Send) > 0; i++ {
			if i > 100 {
				t.Fatal("never finished")
			}
			var back Output
			for _, p := range o.Send {
				r := bmc.Receive(t0, p)
				got = append(got, r.Deliver...)
				back.Send = append(back.Send, r.Send...)
				bmc.Consume(t0, len(r.Deliver))
			}
			o = Output{}
			for _, p := range back.Send {
				r := con.Receive(t0, p)
				o.Send = append(o.Send, r.Send...)
			}
		}
		if string(got) != want {
			t.Fatalf("BMC got %q, want %q", got, want)
		}
	})
}

func TestEngineDropQueued(t *testing.T) {
	e := newTestEngine(ConsoleSide, func(c *Config) { c.MaxData = 2 })
	expectSend(t, "write", e.Write(t0, []byte("abcdef")), dataPkt(1, "ab"))
	e.Break(t0)
	if n := e.DropQueued(); n != 4 {
		t.Fatalf("DropQueued = %d, want the 4 bytes not yet in a packet", n)
	}
	if p := e.Pending(); p != 2 {
		t.Fatalf("Pending = %d, want the 2 bytes in flight", p)
	}
	expectSend(t, "in-flight packet acked: nothing, not even the break, follows", e.Receive(t0, ackPkt(1, 2)))
	expectSend(t, "new input goes on", e.Write(t0, []byte("x")), dataPkt(2, "x"))
}
