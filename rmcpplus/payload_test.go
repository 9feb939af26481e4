package rmcpplus

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"obmd/ipmi"
)

// Payload connections and the client's per-packet path, tested on a
// Session whose handshake is skipped: its keys are set directly, and the
// test seals the BMC's packets with the same keys (RMCP+ uses K1 and K2 in
// both directions, IPMI v2.0 section 13.32).

const (
	testConsoleID = 0x0A0B0C0D // ours: the BMC sends it
	testManagedID = 0x01020304 // the BMC's: we send it
)

// sinkConn is a PacketConn that counts and discards what is written.
type sinkConn struct {
	net.PacketConn // nil: only the methods below are used
	writes         atomic.Int64
	last           []byte
}

func (c *sinkConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.writes.Add(1)
	c.last = append(c.last[:0], b...)
	return len(b), nil
}

func (c *sinkConn) Close() error { return nil }

// newKeyedSession is an established Session with cipher suite suiteID on
// conn, without a reader: tests feed datagrams to handleDatagram or start
// readLoop themselves.
func newKeyedSession(tb testing.TB, suiteID uint8, conn net.PacketConn) *Session {
	tb.Helper()
	suite, ok := CipherSuiteByID(suiteID)
	if !ok {
		tb.Fatalf("cipher suite %d unknown", suiteID)
	}
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: DefaultPort}
	s := newSession(ClientConfig{Logger: slog.New(slog.DiscardHandler)}, addr, conn)
	s.sec.Store(&sessionSecrets{keys: NewSessionKeys(suite, bytes.Repeat([]byte{0x5A}, 32)),
		consoleID: testConsoleID, managedID: testManagedID, authenticated: suite.Integrity != IntegrityNone})
	tb.Cleanup(func() { s.end(ErrSessionClosed) })
	return s
}

// bmcSeal seals payload as the BMC of s would send it, with session
// sequence number seq.
func bmcSeal(tb testing.TB, s *Session, pt PayloadType, seq uint32, payload []byte) []byte {
	tb.Helper()
	sec := s.sec.Load()
	bmcKeys := NewSessionKeys(sec.keys.Suite, sec.keys.SIK)
	b, err := bmcKeys.AppendSealed(nil, pt, testConsoleID, seq, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestOpenPayloadFuncHandsPayloadsToHandler(t *testing.T) {
	sink := &sinkConn{}
	s := newKeyedSession(t, 17, sink)
	var got [][]byte
	pc, err := s.OpenPayloadFunc(PayloadSOL, 0, func(b []byte) { got = append(got, bytes.Clone(b)) })
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	var plain []byte
	for seq, payload := range []string{"\x01\x00\x00\x00abc", "\x02\x00\x00\x00de"} {
		plain = s.handleDatagram(&p, bmcSeal(t, s, PayloadSOL, uint32(seq+1), []byte(payload)), plain[:0])
	}
	if len(got) != 2 || string(got[0]) != "\x01\x00\x00\x00abc" || string(got[1]) != "\x02\x00\x00\x00de" {
		t.Fatalf("handler got %q, want the two payloads in order", got)
	}
	select {
	case b, ok := <-pc.Recv():
		t.Fatalf("Recv yielded %q, %v with a handler set", b, ok)
	default:
	}
	pc.Close()
	if _, ok := <-pc.Recv(); ok {
		t.Fatal("Recv not closed by Close")
	}
	s.handleDatagram(&p, bmcSeal(t, s, PayloadSOL, 3, []byte("\x03\x00\x00\x00late")), plain[:0])
	if len(got) != 2 {
		t.Fatalf("handler called after Close: %q", got[2:])
	}
	if _, err := s.OpenPayloadFunc(PayloadSOL, 0, nil); err == nil {
		t.Fatal("OpenPayloadFunc accepted a nil handler")
	}
}

// Without a handler, Recv gets a copy the reader's buffer reuse cannot
// touch.
func TestOpenPayloadQueuesCopies(t *testing.T) {
	s := newKeyedSession(t, 17, &sinkConn{})
	pc, err := s.OpenPayload(PayloadSOL, 0)
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	plain := s.handleDatagram(&p, bmcSeal(t, s, PayloadSOL, 1, []byte("\x01\x00\x00\x00first")), nil)
	s.handleDatagram(&p, bmcSeal(t, s, PayloadSOL, 2, []byte("\x02\x00\x00\x00other")), plain[:0])
	if b := <-pc.Recv(); string(b) != "\x01\x00\x00\x00first" {
		t.Fatalf("first payload %q after the buffer was reused", b)
	}
}

// The read buffer is 1 KiB: a longer datagram arrives cut to the buffer's
// size and must be dropped, not parsed; a datagram that fits is delivered.
func TestReadLoopDropsDatagramsLongerThanTheBuffer(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newKeyedSession(t, 17, conn)
	delivered := make(chan int, 4)
	if _, err := s.OpenPayloadFunc(PayloadSOL, 0, func(b []byte) { delivered <- len(b) }); err != nil {
		t.Fatal(err)
	}
	go s.readLoop(conn, true)
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// Suite 17 seals n payload bytes into 52 + 16*(n/16+1) bytes: RMCP 4,
	// session header 12, IV 16, ciphertext, integrity pad 2, pad length,
	// next header, AuthCode 16.
	tests := []struct {
		name    string
		payload int
		size    int
	}{
		{"longer than the buffer", 975, 1028},
		{"fits the buffer", 959, 1012},
	}
	for i, tc := range tests {
		b := bmcSeal(t, s, PayloadSOL, uint32(i+1), make([]byte, tc.payload))
		if len(b) != tc.size {
			t.Fatalf("%s: sealed %d bytes, expected %d", tc.name, len(b), tc.size)
		}
		if _, err := peer.WriteTo(b, conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback keeps the order: when the second is delivered, the first
	// has been dealt with.
	select {
	case n := <-delivered:
		if n != tests[1].payload {
			t.Fatalf("delivered a %d-byte payload, want only the %d-byte one", n, tests[1].payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the datagram that fits was not delivered")
	}
	if n := s.rejectedOversize.Load(); n != 1 {
		t.Fatalf("%d datagrams rejected as too long, want 1", n)
	}
}

// The per-packet path of a console: a sealed SOL packet read, verified,
// decrypted and handed to the handler, which seals and sends an ACK.
func TestPayloadReceiveAndAckAllocatesNothing(t *testing.T) {
	for _, suite := range []uint8{17, 3, 0} {
		sink := &sinkConn{}
		s := newKeyedSession(t, suite, sink)
		var pc *PayloadConn
		ack := []byte{0, 0, 0, 0}
		pc, err := s.OpenPayloadFunc(PayloadSOL, 0, func(b []byte) {
			ack[1], ack[2] = b[0], byte(len(b)-4)
			pc.Send(ack)
		})
		if err != nil {
			t.Fatal(err)
		}
		const runs = 200
		datagrams := make([][]byte, runs+1)
		for i := range datagrams {
			datagrams[i] = bmcSeal(t, s, PayloadSOL, uint32(i+1), append([]byte{byte(i%15 + 1), 0, 0, 0}, bytes.Repeat([]byte("x"), 255)...))
		}
		var p Packet
		var plain []byte
		i := 0
		allocs := testing.AllocsPerRun(runs, func() {
			plain = s.handleDatagram(&p, datagrams[i], plain[:0])
			i++
		})
		if sink.writes.Load() != runs+1 {
			t.Fatalf("suite %d: %d ACKs sent for %d packets", suite, sink.writes.Load(), runs+1)
		}
		if allocs != 0 {
			t.Errorf("suite %d: %.1f allocations per packet and ACK, want 0", suite, allocs)
		}
	}
}

// BenchmarkPayloadReceiveAndAck is the client's CPU cost per SOL packet
// outside the kernel (suite 17): verify, decrypt, hand over, seal the ACK.
func BenchmarkPayloadReceiveAndAck(b *testing.B) {
	sink := &sinkConn{}
	s := newKeyedSession(b, 17, sink)
	var pc *PayloadConn
	ack := []byte{0, 0, 0, 0}
	pc, err := s.OpenPayloadFunc(PayloadSOL, 0, func(p []byte) {
		ack[1], ack[2] = p[0], byte(len(p)-4)
		pc.Send(ack)
	})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([][]byte, 4096)
	seq := uint32(0)
	refill := func() {
		for i := range batch {
			seq++
			batch[i] = bmcSeal(b, s, PayloadSOL, seq, append([]byte{byte(seq%15 + 1), 0, 0, 0}, bytes.Repeat([]byte("x"), 255)...))
		}
	}
	refill()
	var p Packet
	var plain []byte
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(batch) {
			b.StopTimer()
			refill()
			i = 0
			b.StartTimer()
		}
		plain = s.handleDatagram(&p, batch[i], plain[:0])
		i++
	}
}

// An idle session holds one request slot, not 64; 50 concurrent callers
// still get 50 distinct rqSeq values, and their slots go back to the
// garbage collector beyond a few kept for reuse.
func TestRequestTableAllocatesOnlyWhatIsInFlight(t *testing.T) {
	tab := newRequestTable()
	ctx := context.Background()
	allocated := func() int {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		return len(tab.active) + len(tab.spare)
	}
	for range 3 * rqSeqCount {
		seq, _, err := tab.acquire(ctx, nil, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, true)
		if err != nil {
			t.Fatal(err)
		}
		tab.release(seq)
	}
	if n := allocated(); n != 1 {
		t.Fatalf("%d slots allocated after sequential requests, want 1", n)
	}

	const callers = 50
	var mu sync.Mutex
	seen := make(map[uint8]bool)
	var held []uint8
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			seq, _, err := tab.acquire(ctx, nil, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, true)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[seq] {
				t.Errorf("rqSeq %d handed to two callers at once", seq)
			}
			seen[seq] = true
			held = append(held, seq)
		})
	}
	wg.Wait()
	if n := allocated(); n != callers {
		t.Fatalf("%d slots allocated for %d concurrent requests", n, callers)
	}
	for _, seq := range held {
		tab.release(seq)
	}
	if n := allocated(); n != maxSpareSlots {
		t.Fatalf("%d slots kept after the burst, want %d", n, maxSpareSlots)
	}
}
