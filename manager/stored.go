package manager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

	"obmd/store"
)

// A store shared by several obmd instances (package cluster's etcd store)
// changes under the Manager's feet: another instance registers a node,
// replaces a token or deletes a node, and the store's watch reports it
// here through ApplyStored. The Manager then does exactly what the local
// call would have done (a new token disconnects the old token's viewers, a
// deletion ends the node's viewers and closes its driver), so revocation
// is cluster-wide.
//
// Changes arrive from two directions, this instance's own writes and the
// watch, and must not undo each other: the watch delivers a change this
// instance made itself after the fact, possibly after a newer local one.
// Every state therefore carries the store revision it was observed at:
// a node remembers the revision of its state, a deleted node leaves a
// tombstone with its deletion's revision until the watch has passed it,
// and a state no newer than what is held is ignored.

// ApplyStored brings node id to its state in the shared store as of
// revision asOf: rec, or absent when rec is nil. It is a no-op for a
// state no newer than the one held. Deleted nodes are shut down in the
// background; the call never waits for a driver or a BMC.
func (m *Manager) ApplyStored(id string, rec *store.NodeRecord, asOf int64) {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if asOf <= m.storeRev {
		return // the watch has delivered everything up to asOf already
	}
	n := m.lookup(id)
	switch {
	case n != nil && asOf <= n.rev:
		return
	case n == nil && asOf <= m.tombstones[id]:
		return
	}

	if rec == nil {
		if n != nil {
			m.removeLocked(n, asOf)
			n.log.Info("node deleted through another instance")
			go m.shutdownRemoved(n, ErrNodeDeleted)
		}
		return
	}
	if n != nil && (n.typ != rec.Type || !bytes.Equal(n.stored, compactOr(rec.Info))) {
		// Deleted and registered again, both before this instance heard
		// of the first: the old node goes as if deleted.
		m.removeLocked(n, asOf)
		n.log.Info("node re-registered through another instance")
		go m.shutdownRemoved(n, ErrNodeDeleted)
		n = nil
	}
	if n == nil {
		r := *rec
		r.Revision = asOf
		n = m.loadNode(r)
		delete(m.tombstones, id)
		m.mu.Lock()
		m.nodes[id] = n
		m.mu.Unlock()
		n.log.Info("node registered through another instance", "type", n.typ, "info", n.info)
		n.hub.keepOpen() // as a local registration does (console logs)
		return
	}
	n.rev = asOf
	n.mu.Lock()
	same := n.hasToken == (len(rec.TokenHash) == sha256.Size) &&
		(!n.hasToken || bytes.Equal(n.tokenHash[:], rec.TokenHash))
	n.mu.Unlock()
	if same {
		return
	}
	var hash []byte
	if len(rec.TokenHash) == sha256.Size {
		hash = rec.TokenHash
	}
	n.setTokenLocked(hash)
	if hash != nil {
		n.log.Info("token replaced through another instance")
	} else {
		n.log.Info("token revoked through another instance")
	}
}

// StoreProgress tells the Manager that the shared store's watch has
// delivered (and ApplyStored applied) every change up to revision rev:
// older states are ignored from now on, and the tombstones they needed are
// dropped.
func (m *Manager) StoreProgress(rev int64) {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if rev <= m.storeRev {
		return
	}
	m.storeRev = rev
	for id, t := range m.tombstones {
		if t <= rev {
			delete(m.tombstones, id)
		}
	}
}

func (m *Manager) shutdownRemoved(n *node, reason error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.OpTimeout)
	defer cancel()
	if err := n.shutdown(ctx, reason); err != nil {
		n.log.Warn("closing the deleted node's driver", "err", err)
	}
}

// Forwarded is a handle on node id for a call another instance of the
// cluster forwarded to this one, the node's owner: that instance checked
// the caller's token, so the handle is not tied to a token and outlives
// token changes (the forwarding instance ends its own viewers). Its
// operations are serialised with this instance's own on the node, as
// usual. Only the cluster's instance-to-instance routes, authenticated
// with the cluster token, may call it.
func (m *Manager) Forwarded(id string) (*Access, error) {
	n := m.lookup(id)
	if n == nil {
		m.refresh(id)
		n = m.lookup(id)
	}
	if n == nil {
		return nil, &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	}
	return &Access{m: m, n: n, forwarded: true}, nil
}
