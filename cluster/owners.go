package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"obmd/manager"
)

// ownerRecord is the value of owners/ID, the node's lock: which instance
// holds it, under which lease (the same instance restarted has another),
// since when.
type ownerRecord struct {
	Member string    `json:"member"` // the owner's advertised URL
	Lease  string    `json:"lease"`  // hex lease ID
	Since  time.Time `json:"since"`
}

func decodeOwner(b []byte) (ownerRecord, error) {
	var or ownerRecord
	if err := json.Unmarshal(b, &or); err != nil {
		return or, err
	}
	if or.Member == "" || or.Lease == "" {
		return or, errors.New("node lock without a member or lease")
	}
	return or, nil
}

// maxLockOps bounds the lock transactions in flight: when a member dies,
// a survivor takes a third of its nodes at once.
const maxLockOps = 32

// lockRetry is how soon a lock transaction that failed (etcd unreachable)
// is tried again.
const lockRetry = time.Second

// owners is the ownership reconciler. For every node it knows the lock's
// holder (from etcd) and the drivers the Manager holds for it, and
// decides, each time either or the member list changes:
//
//   - this instance holds the lock and should own the node: its drivers
//     drive the BMC themselves;
//   - it holds the lock and another member should own the node, or the
//     Manager no longer has the node: hand over (release);
//   - nobody holds the lock and this instance should own the node: take
//     the lock (acquire), a transaction on the key's absence;
//   - another instance holds it: the drivers forward to that instance;
//   - nobody holds it and another member should: the drivers wait.
//
// Decisions are quick and made under mu; the etcd transactions and the
// closing of a node's BMC sessions run in goroutines (busy marks a node
// with one in flight), which feed their result back the same way.
type owners struct {
	c   *Cluster
	ops chan struct{} // lock transaction slots

	mu      sync.Mutex
	members map[string]memberRecord // live instances, by URL
	names   []string                // their URLs, sorted
	lease   clientv3.LeaseID        // this instance's; 0 while it has none
	nodes   map[string]*nodeOwner
	closed  bool
}

// nodeOwner is the reconciler's state of one node.
type nodeOwner struct {
	id        string
	drivers   map[*Driver]struct{}
	holder    ownerRecord // zero: nobody holds the lock
	holderRev int64
	busy      bool // an acquire or release is in flight
	retry     *time.Timer
}

func newOwners(c *Cluster) *owners {
	return &owners{
		c:       c,
		ops:     make(chan struct{}, maxLockOps),
		members: map[string]memberRecord{},
		nodes:   map[string]*nodeOwner{},
	}
}

func (o *owners) nodeLocked(id string) *nodeOwner {
	no := o.nodes[id]
	if no == nil {
		no = &nodeOwner{id: id, drivers: map[*Driver]struct{}{}}
		o.nodes[id] = no
	}
	return no
}

// load replaces the members and holders with a snapshot's.
func (o *owners) load(snap snapshot) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.members = snap.members
	o.sortNamesLocked()
	for id, no := range o.nodes {
		if _, ok := snap.owners[id]; !ok {
			no.holder, no.holderRev = ownerRecord{}, snap.rev
		}
	}
	for id, or := range snap.owners {
		no := o.nodeLocked(id)
		no.holder, no.holderRev = or, snap.ownRevs[id]
	}
	o.reconcileAllLocked()
}

func (o *owners) sortNamesLocked() {
	o.names = o.names[:0]
	for n := range o.members {
		o.names = append(o.names, n)
	}
	sort.Strings(o.names)
}

// attach is a new driver the Manager built for node id (driver.go).
func (o *owners) attach(t manager.DriverType, info manager.DriverInfo, env manager.DriverEnv) *Driver {
	d := newDriver(o, t, info, env)
	o.mu.Lock()
	defer o.mu.Unlock()
	no := o.nodeLocked(env.NodeID)
	no.drivers[d] = struct{}{}
	o.reconcileLocked(no)
	return d
}

// detach is a driver the Manager closed.
func (o *owners) detach(d *Driver) {
	o.mu.Lock()
	defer o.mu.Unlock()
	no := o.nodes[d.id]
	if no == nil {
		return
	}
	delete(no.drivers, d)
	o.reconcileLocked(no)
}

// setLease is this instance's new lease (0: it has none, its locks went
// with the old one).
func (o *owners) setLease(lease clientv3.LeaseID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lease = lease
	o.reconcileAllLocked()
}

func (o *owners) memberUp(mr memberRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, known := o.members[mr.URL]
	o.members[mr.URL] = mr
	if !known {
		o.c.log.Info("cluster member up", "member", mr.URL)
		o.sortNamesLocked()
		o.reconcileAllLocked()
	}
}

// memberGone is a members/ key deleted (escaped is the key's last part).
func (o *owners) memberGone(escaped string) {
	name, err := url.PathUnescape(escaped)
	if err != nil {
		return
	}
	o.mu.Lock()
	gone, known := o.members[name]
	delete(o.members, name)
	self := name == o.c.self && o.lease != 0
	if known {
		o.c.log.Info("cluster member gone", "member", name)
		o.sortNamesLocked()
		o.reconcileAllLocked()
	}
	o.mu.Unlock()
	if known && name != o.c.self {
		// Its lease is gone, and its nodes come to the survivors. If it
		// still runs, cut off from etcd alone, it cannot know: tell it.
		go o.c.tellLeaseGone(gone)
	}
	if self {
		// Deleted by someone while the lease lives: write it again.
		o.c.mu.Lock()
		ms := o.c.member
		o.c.mu.Unlock()
		if ms != nil {
			go ms.reassert(context.Background())
		}
	}
}

// fence drops this instance's lease if it is still lease, as etcd has
// dropped it (a peer saw its member key go): the node locks went with it,
// so its drivers stop driving the BMCs now rather than when etcd answers
// again. It reports whether lease was the current one. Compared and
// dropped under mu, so a lease granted meanwhile (setLease) is kept; an
// instance shutting down (its own revocation told back to it) is left be.
func (o *owners) fence(lease clientv3.LeaseID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || lease == 0 || o.lease != lease {
		return false
	}
	o.lease = 0
	o.reconcileAllLocked()
	return true
}

// unfence takes lease back after a fence etcd contradicts, unless a
// lease was set meanwhile (membership joined again).
func (o *owners) unfence(lease clientv3.LeaseID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.lease != 0 {
		return false
	}
	o.lease = lease
	o.reconcileAllLocked()
	return true
}

// holderChanged is a node lock written (or deleted: zero or) at rev.
func (o *owners) holderChanged(id string, or ownerRecord, rev int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	no := o.nodeLocked(id)
	if rev <= no.holderRev {
		return // already known (this instance's own transaction)
	}
	no.holder, no.holderRev = or, rev
	o.reconcileLocked(no)
}

// closing stops all decisions: the instance is shutting down, and revoking
// its lease will drop every lock it holds at once.
func (o *owners) closing() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for _, no := range o.nodes {
		if no.retry != nil {
			no.retry.Stop()
		}
	}
}

func (o *owners) reconcileAllLocked() {
	for _, no := range o.nodes {
		o.reconcileLocked(no)
	}
}

// mineLocked: this instance, under its current lease, holds no's lock.
func (o *owners) mineLocked(no *nodeOwner) bool {
	return o.lease != 0 && no.holder.Member == o.c.self && no.holder.Lease == leaseHex(o.lease)
}

// reconcileLocked makes one node's decision (see owners).
func (o *owners) reconcileLocked(no *nodeOwner) {
	if o.closed || no.busy {
		return
	}
	mine := o.mineLocked(no)
	if len(no.drivers) == 0 {
		switch {
		case mine:
			o.releaseLocked(no) // the node was deleted
		case no.holder.Member == "":
			delete(o.nodes, no.id)
		}
		return
	}
	desired := OwnerOf(no.id, o.names)
	switch {
	case mine && desired != "" && desired != o.c.self:
		o.releaseLocked(no) // hand over
	case mine:
		o.pointLocked(no, target{kind: targetLocal})
	case no.holder.Member == "":
		o.pointLocked(no, target{kind: targetNone})
		if desired == o.c.self && o.lease != 0 {
			o.acquireLocked(no)
		}
	case no.holder.Member == o.c.self:
		// Held by this instance's previous lease (a run before a restart,
		// or a lease that expired): it goes when that lease does.
		o.pointLocked(no, target{kind: targetNone})
	default:
		o.pointLocked(no, target{kind: targetRemote, url: no.holder.Member})
	}
}

func (o *owners) pointLocked(no *nodeOwner, t target) {
	for d := range no.drivers {
		d.point(t)
	}
}

// acquireLocked takes no's lock if nobody holds it.
func (o *owners) acquireLocked(no *nodeOwner) {
	no.busy = true
	lease := o.lease
	rec := ownerRecord{Member: o.c.self, Lease: leaseHex(lease), Since: time.Now().UTC()}
	go func() {
		val, _ := json.Marshal(rec)
		key := o.c.keys.owner(no.id)
		resp, err := o.lockTxn(func(txn clientv3.Txn) clientv3.Txn {
			return txn.If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).
				Else(clientv3.OpGet(key))
		})

		o.mu.Lock()
		defer o.mu.Unlock()
		no.busy = false
		switch {
		case err != nil:
			o.c.log.Warn("taking a node's lock failed; retrying", "node", no.id, "err", err)
			o.retryLocked(no)
			return
		case resp.Succeeded:
			if resp.Header.Revision > no.holderRev {
				no.holder, no.holderRev = rec, resp.Header.Revision
			}
			o.c.log.Info("node owned", "node", no.id)
		default:
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && kvs[0].ModRevision > no.holderRev {
				if or, err := decodeOwner(kvs[0].Value); err == nil {
					no.holder, no.holderRev = or, kvs[0].ModRevision
				}
			}
		}
		o.reconcileLocked(no)
	}()
}

// releaseLocked hands no over: its drivers stop driving the BMC (console
// closed, SOL deactivated, sessions closed), then the lock is deleted if
// it is still this instance's, so the next owner finds the BMC free.
func (o *owners) releaseLocked(no *nodeOwner) {
	no.busy = true
	held := no.holder
	var drained []<-chan struct{}
	for d := range no.drivers {
		d.point(target{kind: targetNone})
		drained = append(drained, d.drained())
	}
	go func() {
		for _, ch := range drained {
			<-ch
		}
		val, _ := json.Marshal(held)
		key := o.c.keys.owner(no.id)
		resp, err := o.lockTxn(func(txn clientv3.Txn) clientv3.Txn {
			return txn.If(clientv3.Compare(clientv3.Value(key), "=", string(val))).
				Then(clientv3.OpDelete(key))
		})

		o.mu.Lock()
		defer o.mu.Unlock()
		no.busy = false
		if err != nil {
			o.c.log.Warn("releasing a node's lock failed; retrying", "node", no.id, "err", err)
			o.retryLocked(no)
			return
		}
		if resp.Header.Revision > no.holderRev && no.holder == held {
			no.holder, no.holderRev = ownerRecord{}, resp.Header.Revision
		}
		o.c.log.Info("node handed over", "node", no.id)
		o.reconcileLocked(no)
	}()
}

// lockTxn commits one node-lock transaction built by build, within
// writeTimeout, holding one of the ops slots.
func (o *owners) lockTxn(build func(clientv3.Txn) clientv3.Txn) (*clientv3.TxnResponse, error) {
	o.ops <- struct{}{}
	defer func() { <-o.ops }()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	return build(o.c.cli.Txn(ctx)).Commit()
}

// retryLocked decides about no again after lockRetry.
func (o *owners) retryLocked(no *nodeOwner) {
	if no.retry != nil {
		no.retry.Stop()
	}
	no.retry = time.AfterFunc(lockRetry, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.reconcileLocked(no)
	})
}

// localDriver returns the driver through which this instance drives node
// id's BMC, or nil if it does not own the node.
func (o *owners) localDriver(id string) *Driver {
	o.mu.Lock()
	defer o.mu.Unlock()
	no := o.nodes[id]
	if no == nil || !o.mineLocked(no) {
		return nil
	}
	for d := range no.drivers {
		if d.isLocal() {
			return d
		}
	}
	return nil
}

// ownerStatus is node id's owner as this instance knows it.
func (o *owners) ownerStatus(id string) manager.OwnerStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	no := o.nodes[id]
	if no == nil {
		return manager.OwnerStatus{}
	}
	return manager.OwnerStatus{Instance: no.holder.Member, Self: o.mineLocked(no), Since: no.holder.Since}
}

// Members lists the live instances' advertised URLs, sorted.
func (o *owners) memberNames() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.names)
}

// ownedCount is the number of nodes whose lock this instance holds.
func (o *owners) ownedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, no := range o.nodes {
		if o.mineLocked(no) {
			n++
		}
	}
	return n
}
