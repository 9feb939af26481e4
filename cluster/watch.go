package cluster

import (
	"context"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"obmd/store"
)

// watch follows every change under the prefix after revision from, in
// revision order, until ctx ends. The etcd client resumes a broken watch
// by itself (another endpoint, or the same one back); this loop only
// starts a new one when the client gives up on it, and reads everything
// afresh when etcd has compacted the revisions it missed.
func (c *Cluster) watch(ctx context.Context, from int64) {
	rev := from
	retry := time.Duration(0)
	for ctx.Err() == nil {
		if retry > 0 {
			select {
			case <-time.After(retry):
			case <-ctx.Done():
				return
			}
		}
		// WithRequireLeader: a member cut off from its cluster's leader
		// ends the watch instead of going silent, so the client moves to
		// a member that has one.
		wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), c.keys.prefix,
			clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.CompactRevision != 0 {
				c.log.Warn("etcd compacted changes this instance had not seen; reading everything again",
					"seen", rev, "compacted", resp.CompactRevision)
				if snapRev, ok := c.resync(ctx); ok {
					rev = snapRev
				}
				break
			}
			if err := resp.Err(); err != nil {
				c.log.Warn("etcd watch ended; watching again", "err", err, "from", rev+1)
				break
			}
			for _, ev := range resp.Events {
				c.apply(ev)
				rev = ev.Kv.ModRevision
			}
			if len(resp.Events) > 0 {
				c.mu.Lock()
				c.watchRev = rev
				c.mu.Unlock()
				c.manager().StoreProgress(rev)
			}
			retry = 0
		}
		retry = nextRetry(retry)
	}
}

func nextRetry(d time.Duration) time.Duration {
	if d == 0 {
		return 100 * time.Millisecond
	}
	return min(2*d, 2*time.Second)
}

// apply dispatches one change: nodes to the Manager, members and locks to
// the ownership reconciler.
func (c *Cluster) apply(ev *clientv3.Event) {
	key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
	put := ev.Type == mvccpb.PUT
	switch {
	case strings.HasPrefix(key, c.keys.nodes()):
		id := strings.TrimPrefix(key, c.keys.nodes())
		if !put {
			c.manager().ApplyStored(id, nil, rev)
			return
		}
		rec, err := store.DecodeRecord(id, ev.Kv.Value)
		if err != nil {
			c.log.Error("unreadable node record in etcd; ignoring the change", "node", id, "err", err)
			return
		}
		c.manager().ApplyStored(id, &rec, rev)
	case strings.HasPrefix(key, c.keys.members()):
		if !put {
			c.own.memberGone(strings.TrimPrefix(key, c.keys.members()))
			return
		}
		mr, err := decodeMember(ev.Kv.Value)
		if err != nil {
			c.log.Warn("unreadable member key in etcd", "key", key, "err", err)
			return
		}
		c.own.memberUp(mr)
	case strings.HasPrefix(key, c.keys.owners()):
		id := strings.TrimPrefix(key, c.keys.owners())
		if !put {
			c.own.holderChanged(id, ownerRecord{}, rev)
			return
		}
		or, err := decodeOwner(ev.Kv.Value)
		if err != nil {
			c.log.Warn("unreadable node lock in etcd", "key", key, "err", err)
			return
		}
		c.own.holderChanged(id, or, rev)
	}
}

// resync reads everything under the prefix again after a compaction and
// brings the Manager and the reconciler to it.
func (c *Cluster) resync(ctx context.Context) (int64, bool) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap, err := c.snapshot(rctx)
	if err != nil {
		c.log.Warn("reading etcd again failed; retrying", "err", err)
		return 0, false
	}
	m := c.manager()
	seen := make(map[string]bool, len(snap.nodes))
	for i := range snap.nodes {
		rec := snap.nodes[i]
		seen[rec.ID] = true
		m.ApplyStored(rec.ID, &rec, snap.rev)
	}
	for _, id := range m.NodeIDs() {
		if !seen[id] {
			m.ApplyStored(id, nil, snap.rev)
		}
	}
	m.StoreProgress(snap.rev)
	c.own.load(snap)
	c.mu.Lock()
	c.watchRev = snap.rev
	c.mu.Unlock()
	return snap.rev, true
}
