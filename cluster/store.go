package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"obmd/manager"
	"obmd/store"
)

// Store is manager.NodeStore over etcd. Every write is one transaction,
// answered once etcd has committed it (a quorum has it on disk), and
// returns etcd's revision of the commit; a write etcd does not confirm
// within writeTimeout fails with store.ErrUnavailable.
type Store struct {
	c *Cluster
	// refreshSlots bounds the reads Refresh makes at once: every wrong
	// token costs one, and a flood of them must not become a flood on
	// etcd (a refresh that finds no slot is skipped: the answer is the
	// cache's).
	refreshSlots chan struct{}
}

const maxRefreshes = 16

// notReadyRefresh bounds a Refresh while the etcd connection is down.
const notReadyRefresh = 250 * time.Millisecond

var (
	_ manager.NodeStore    = (*Store)(nil)
	_ manager.StoreChecker = (*Store)(nil)
)

func unavailable(op string, err error) error {
	return fmt.Errorf("etcd: %s: %w: %v", op, store.ErrUnavailable, err)
}

// CreateNode stores a new node if, and only if, no node has its ID:
// etcd's "create revision is 0" compare, so two instances registering the
// same ID at once cannot both succeed.
func (s *Store) CreateNode(rec store.NodeRecord) (int64, error) {
	if err := store.CheckTokenHash(rec.TokenHash); err != nil {
		return 0, err
	}
	val, err := store.EncodeRecord(rec)
	if err != nil {
		return 0, err
	}
	key := s.c.keys.node(rec.ID)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	resp, err := s.c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return 0, unavailable("registering node "+rec.ID, err)
	}
	if !resp.Succeeded {
		return resp.Header.Revision, store.ErrExists
	}
	return resp.Header.Revision, nil
}

// DeleteNode deletes the node if it exists; ErrNotFound carries the
// revision at which it was found absent.
func (s *Store) DeleteNode(id string) (int64, error) {
	key := s.c.keys.node(id)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	resp, err := s.c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return 0, unavailable("deleting node "+id, err)
	}
	if !resp.Succeeded {
		return resp.Header.Revision, store.ErrNotFound
	}
	return resp.Header.Revision, nil
}

// maxTokenAttempts bounds SetTokenHash's compare-and-swap retries: each
// failure means another instance changed the node in between.
const maxTokenAttempts = 8

// SetTokenHash replaces the node's token hash (nil clears it): read the
// record, then write it back only if its revision is still the one read,
// so a concurrent deletion or re-registration elsewhere is never undone.
func (s *Store) SetTokenHash(id string, hash []byte) (int64, error) {
	if err := store.CheckTokenHash(hash); err != nil {
		return 0, err
	}
	key := s.c.keys.node(id)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	for range maxTokenAttempts {
		got, err := s.c.cli.Get(ctx, key)
		if err != nil {
			return 0, unavailable("reading node "+id, err)
		}
		if len(got.Kvs) == 0 {
			return got.Header.Revision, store.ErrNotFound
		}
		kv := got.Kvs[0]
		rec, err := store.DecodeRecord(id, kv.Value)
		if err != nil {
			return 0, err
		}
		rec.TokenHash = hash
		val, err := store.EncodeRecord(rec)
		if err != nil {
			return 0, err
		}
		resp, err := s.c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(val))).
			Commit()
		if err != nil {
			return 0, unavailable("storing the token hash of node "+id, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
	}
	return 0, fmt.Errorf("etcd: node %s changed %d times while its token was being replaced", id, maxTokenAttempts)
}

// Check is the store's part of /readyz: ready once this instance has
// joined the cluster. An unreachable etcd does not make it unready: the
// instance still serves its nodes and forwards the others' calls, which a
// load balancer should keep sending it (every instance loses etcd
// together); obmd_cluster_etcd_up shows etcd's state, and admin writes
// answer 503 meanwhile.
func (s *Store) Check(ctx context.Context) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	switch {
	case s.c.closed:
		return errors.New("left the cluster")
	case s.c.member == nil:
		return errors.New("not in the cluster yet")
	}
	return nil
}

// Nodes reads every key under the prefix at one revision: the nodes for
// the Manager, and the members and node locks for the ownership
// reconciler, which Start's watch then follows from that revision on.
func (s *Store) Nodes() ([]store.NodeRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, err := s.c.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.c.mu.Lock()
	s.c.snapRev = snap.rev
	s.c.mu.Unlock()
	s.c.own.load(snap)
	return snap.nodes, nil
}

// Refresh reads node id from etcd and hands it to the Manager
// (manager.Config.Refresh). It is skipped while too many refreshes are in
// flight. While the etcd connection is not up it gets notReadyRefresh: the
// connection may be waiting out gRPC's reconnect backoff after etcd came
// back, so it is asked to reconnect now, but a refused token must not
// wait a whole RefreshTimeout while etcd is really gone.
func (s *Store) Refresh(ctx context.Context, id string) {
	m := s.c.manager()
	if m == nil {
		return
	}
	if !s.c.etcdReady() {
		s.c.cli.ActiveConnection().Connect()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, notReadyRefresh)
		defer cancel()
	}
	select {
	case s.refreshSlots <- struct{}{}:
		defer func() { <-s.refreshSlots }()
	default:
		return
	}
	resp, err := s.c.cli.Get(ctx, s.c.keys.node(id))
	if err != nil {
		return
	}
	if len(resp.Kvs) == 0 {
		m.ApplyStored(id, nil, resp.Header.Revision)
		return
	}
	rec, err := store.DecodeRecord(id, resp.Kvs[0].Value)
	if err != nil {
		s.c.log.Error("unreadable node record in etcd", "node", id, "err", err)
		return
	}
	m.ApplyStored(id, &rec, resp.Header.Revision)
}

// snapshot is everything under the prefix at one revision.
type snapshot struct {
	rev     int64
	nodes   []store.NodeRecord
	members map[string]memberRecord
	owners  map[string]ownerRecord
	ownRevs map[string]int64
}

func (c *Cluster) snapshot(ctx context.Context) (snapshot, error) {
	resp, err := c.cli.Get(ctx, c.keys.prefix, clientv3.WithPrefix())
	if err != nil {
		return snapshot{}, fmt.Errorf("etcd: reading %s: %w", c.keys.prefix, err)
	}
	snap := snapshot{rev: resp.Header.Revision, members: map[string]memberRecord{}, owners: map[string]ownerRecord{}, ownRevs: map[string]int64{}}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		switch {
		case strings.HasPrefix(key, c.keys.nodes()):
			id := strings.TrimPrefix(key, c.keys.nodes())
			rec, err := store.DecodeRecord(id, kv.Value)
			if err != nil {
				return snapshot{}, err
			}
			rec.Revision = snap.rev
			snap.nodes = append(snap.nodes, rec)
		case strings.HasPrefix(key, c.keys.members()):
			if mr, err := decodeMember(kv.Value); err == nil {
				snap.members[mr.URL] = mr
			} else {
				c.log.Warn("unreadable member key in etcd", "key", key, "err", err)
			}
		case strings.HasPrefix(key, c.keys.owners()):
			id := strings.TrimPrefix(key, c.keys.owners())
			if or, err := decodeOwner(kv.Value); err == nil {
				snap.owners[id] = or
				snap.ownRevs[id] = kv.ModRevision
			} else {
				c.log.Warn("unreadable node lock in etcd", "key", key, "err", err)
			}
		}
	}
	return snap, nil
}
