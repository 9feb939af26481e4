package rmcpplus

import (
	"context"
	"sync"
	"time"

	"obmd/ipmi"
)

// requestTable matches IPMI responses to outstanding requests by the 6-bit
// request sequence number rqSeq (IPMI v2.0 section 13.8: the responder
// returns the requester's rqSeq, "used to match a response to its request").
// The reading goroutine delivers into it; each caller waits on its own slot,
// so any number of concurrent callers share one socket without a goroutine
// per request.
//
// Sequence numbers are handed out round robin, so a number is reused as late
// as possible: a late duplicate of an old answer then almost never finds a
// new request with the same rqSeq, and the command check catches most of
// the rest.
//
// Slots are allocated for the requests actually in flight, not for all 64
// numbers: a session usually has one request outstanding (the node
// manager serialises a node's commands), so an idle session holds one slot
// and its buffers, not 64. Up to 64 concurrent callers still each get
// their own rqSeq; the 65th waits. The few slots in flight are found by a
// scan, which costs less than a 64-entry index in every idle session.
type requestTable struct {
	mu     sync.Mutex
	used   uint64         // (mu) bit n set: rqSeq n is held
	active []*requestSlot // (mu) the slots held, in no order
	spare  []*requestSlot // (mu) released slots, kept for reuse with their timer and buffers
	next   uint8          // (mu) where the round-robin search for a free rqSeq starts
	free   chan struct{}  // one token per free rqSeq
}

// rqSeqCount is the number of distinct rqSeq values (6 bits).
const rqSeqCount = 64

// maxSpareSlots bounds the released slots kept for reuse: enough for the
// usual one or two concurrent requests; a burst of more callers leaves its
// extra slots to the garbage collector.
const maxSpareSlots = 4

// requestSlot is one outstanding request. Fields marked (mu) are guarded by
// requestTable.mu; the others belong to the caller holding the slot.
type requestSlot struct {
	seq           uint8         // (mu) the rqSeq held
	netfn         ipmi.NetFn    // (mu) request NetFn
	cmd           ipmi.Command  // (mu)
	authenticated bool          // (mu) accept only answers that passed the session's integrity check
	resp          []byte        // (mu) completion code and data of the answer, owned copy
	ready         chan struct{} // signalled (capacity 1) when resp is set

	timer  *time.Timer // per-attempt timer, reused
	msg    []byte      // scratch: the IPMI message
	pkt    []byte      // scratch: the datagram
	sess   *Session    // the session sending it (the slot is an awaited)
	mode   sendMode    // how it is framed
	answer []byte      // the answer taken by answered
}

func newRequestTable() *requestTable {
	// A channel of empty structs has no buffer to allocate: 64 tokens
	// cost nothing but the channel itself.
	t := &requestTable{free: make(chan struct{}, rqSeqCount)}
	for range rqSeqCount {
		t.free <- struct{}{}
	}
	return t
}

// acquire reserves a free rqSeq for a request, waiting while all 64 are in
// use. It fails when ctx is done or when stop is closed.
func (t *requestTable) acquire(ctx context.Context, stop <-chan struct{}, netfn ipmi.NetFn, cmd ipmi.Command, authenticated bool) (uint8, *requestSlot, error) {
	select {
	case <-t.free:
	default:
		select {
		case <-t.free:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-stop:
			return 0, nil, errStopped
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range uint8(rqSeqCount) {
		seq := (t.next + i) % rqSeqCount
		if t.used&(1<<seq) != 0 {
			continue
		}
		t.next = (seq + 1) % rqSeqCount
		var s *requestSlot
		if n := len(t.spare); n > 0 {
			s = t.spare[n-1]
			t.spare[n-1] = nil
			t.spare = t.spare[:n-1]
		} else {
			s = &requestSlot{ready: make(chan struct{}, 1)}
		}
		s.seq, s.netfn, s.cmd, s.authenticated = seq, netfn, cmd, authenticated
		s.resp = nil
		t.used |= 1 << seq
		t.active = append(t.active, s)
		return seq, s, nil
	}
	panic("rmcpplus: request table token without a free slot")
}

// errStopped is returned by acquire when the owner stopped the table; the
// caller replaces it with the reason.
var errStopped = &stoppedError{}

type stoppedError struct{}

func (*stoppedError) Error() string { return "rmcpplus: session ended" }

// release frees the rqSeq. A late answer for it is dropped from now on. The
// caller must not use the slot afterwards.
func (t *requestTable) release(seq uint8) {
	t.mu.Lock()
	if i := t.index(seq); i >= 0 {
		s := t.active[i]
		last := len(t.active) - 1
		t.active[i], t.active[last] = t.active[last], nil
		t.active = t.active[:last]
		t.used &^= 1 << seq
		s.resp = nil
		select { // drop a signal nobody will read
		case <-s.ready:
		default:
		}
		if len(t.spare) < maxSpareSlots {
			t.spare = append(t.spare, s)
		}
	}
	t.mu.Unlock()
	t.free <- struct{}{}
}

// deliver hands an IPMI response to the slot waiting for it. It reports
// whether anyone was waiting for exactly this answer: the rqSeq names a busy
// slot, the NetFn is that request's response NetFn, the command matches,
// and (for in-session requests) the packet was authenticated. A response
// must carry a completion code.
//
// "Duplicate request" (0xCF) does not replace an answer already delivered:
// it only tells the caller to keep waiting (section 5.2, Table 5-2).
func (t *requestTable) deliver(m *ipmi.Message, authenticated bool) bool {
	if len(m.Data) < 1 || m.Seq >= rqSeqCount {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.index(m.Seq)
	if i < 0 {
		return false
	}
	s := t.active[i]
	if m.NetFn != s.netfn.Response() || m.Cmd != s.cmd || (s.authenticated && !authenticated) {
		return false
	}
	if s.resp != nil && ipmi.CompletionCode(m.Data[0]) == ipmi.CCDuplicateRequest {
		return true
	}
	s.resp = append(s.resp[:0:0], m.Data...)
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns and clears the answer delivered to the request holding seq.
func (t *requestTable) take(seq uint8) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := t.index(seq)
	if i < 0 {
		return nil
	}
	s := t.active[i]
	r := s.resp
	s.resp = nil
	return r
}

// index is the position in active of the slot holding seq, or -1; t.mu is
// held.
func (t *requestTable) index(seq uint8) int {
	if seq >= rqSeqCount || t.used&(1<<seq) == 0 {
		return -1
	}
	for i, s := range t.active {
		if s.seq == seq {
			return i
		}
	}
	return -1
}
