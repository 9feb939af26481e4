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
type requestTable struct {
	mu    sync.Mutex
	slots [rqSeqCount]requestSlot
	next  uint8         // where the round-robin search for a free slot starts
	free  chan struct{} // one token per free slot
}

// rqSeqCount is the number of distinct rqSeq values (6 bits).
const rqSeqCount = 64

// requestSlot is one outstanding request. Fields marked (mu) are guarded by
// requestTable.mu; the others belong to the caller holding the slot.
type requestSlot struct {
	busy          bool          // (mu) a caller holds this slot
	netfn         ipmi.NetFn    // (mu) request NetFn
	cmd           ipmi.Command  // (mu)
	authenticated bool          // (mu) accept only answers that passed the session's integrity check
	resp          []byte        // (mu) completion code and data of the answer, owned copy
	ready         chan struct{} // signalled (capacity 1) when resp is set

	timer *time.Timer // per-attempt timer, reused
	msg   []byte      // scratch: the IPMI message
	pkt   []byte      // scratch: the datagram
}

func newRequestTable() *requestTable {
	t := &requestTable{free: make(chan struct{}, rqSeqCount)}
	for i := range t.slots {
		t.slots[i].ready = make(chan struct{}, 1)
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
		s := &t.slots[seq]
		if s.busy {
			continue
		}
		t.next = (seq + 1) % rqSeqCount
		s.busy = true
		s.netfn, s.cmd, s.authenticated = netfn, cmd, authenticated
		s.resp = nil
		return seq, s, nil
	}
	panic("rmcpplus: request table token without a free slot")
}

// errStopped is returned by acquire when the owner stopped the table; the
// caller replaces it with the reason.
var errStopped = &stoppedError{}

type stoppedError struct{}

func (*stoppedError) Error() string { return "rmcpplus: session ended" }

// release frees the slot. A late answer for it is dropped from now on.
func (t *requestTable) release(seq uint8) {
	t.mu.Lock()
	s := &t.slots[seq]
	s.busy = false
	s.resp = nil
	select { // drop a signal nobody will read
	case <-s.ready:
	default:
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
	s := &t.slots[m.Seq]
	if !s.busy || m.NetFn != s.netfn.Response() || m.Cmd != s.cmd || (s.authenticated && !authenticated) {
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

// take returns and clears the answer delivered to the slot.
func (t *requestTable) take(seq uint8) []byte {
	t.mu.Lock()
	s := &t.slots[seq]
	r := s.resp
	s.resp = nil
	t.mu.Unlock()
	return r
}
