package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// memberRecord is the value of members/M: a live instance.
type memberRecord struct {
	URL     string    `json:"url"`
	Lease   string    `json:"lease"` // hex lease ID
	Started time.Time `json:"started"`
}

func decodeMember(b []byte) (memberRecord, error) {
	var mr memberRecord
	if err := json.Unmarshal(b, &mr); err != nil {
		return mr, err
	}
	if mr.URL == "" {
		return mr, errors.New("member record without a url")
	}
	return mr, nil
}

func leaseHex(id clientv3.LeaseID) string { return strconv.FormatInt(int64(id), 16) }

func parseLease(s string) (clientv3.LeaseID, bool) {
	v, err := strconv.ParseInt(s, 16, 64)
	return clientv3.LeaseID(v), err == nil && v != 0
}

// membership is this instance's lease and members/ key.
type membership struct {
	c *Cluster

	mu    sync.Mutex
	lease clientv3.LeaseID
}

// join registers this instance: it revokes the lease of a previous run of
// this instance that has not expired yet (same advertised URL: the same
// instance, restarted; its node locks go at once instead of after the
// TTL), grants a lease and writes the member key with it.
func join(ctx context.Context, c *Cluster) (*membership, error) {
	ms := &membership{c: c}
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if resp, err := c.cli.Get(jctx, c.keys.member(c.self)); err == nil && len(resp.Kvs) > 0 {
		if prev, err := decodeMember(resp.Kvs[0].Value); err == nil {
			if id, ok := parseLease(prev.Lease); ok {
				if _, err := c.cli.Revoke(jctx, id); err == nil {
					c.log.Info("revoked the lease of this instance's previous run", "lease", prev.Lease)
				}
			}
		}
	}
	if err := ms.register(jctx); err != nil {
		return nil, err
	}
	return ms, nil
}

// register grants a fresh lease, hands it to the reconciler and writes the
// member key with it.
func (ms *membership) register(ctx context.Context) error {
	c := ms.c
	g, err := c.cli.Grant(ctx, int64(LeaseTTL/time.Second))
	if err != nil {
		return fmt.Errorf("cluster: etcd lease: %w", err)
	}
	ms.mu.Lock()
	ms.lease = g.ID
	ms.mu.Unlock()
	c.own.setLease(g.ID)
	val, _ := json.Marshal(memberRecord{URL: c.self, Lease: leaseHex(g.ID), Started: time.Now().UTC()})
	if _, err := c.cli.Put(ctx, c.keys.member(c.self), string(val), clientv3.WithLease(g.ID)); err != nil {
		return fmt.Errorf("cluster: registering this instance in etcd: %w", err)
	}
	c.log.Info("registered in the cluster", "lease", leaseHex(g.ID), "ttl", LeaseTTL)
	return nil
}

func (ms *membership) current() clientv3.LeaseID {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lease
}

// run keeps the lease alive until ctx ends. The client's keepalive stream
// ends when etcd says the lease is gone, or when it has heard nothing for
// a TTL (etcd down or unreachable). In the second case the lease may well
// be alive (etcd renews every lease when it elects a leader, so an etcd
// that restarts keeps them), so ownership is kept, as the cache of an
// unreachable store, until etcd answers again and says which case it was.
func (ms *membership) run(ctx context.Context) {
	c := ms.c
	for ctx.Err() == nil {
		lease := ms.current()
		ch, err := c.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ch {
			}
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("etcd lease keepalive interrupted; keeping this instance's nodes until etcd answers", "lease", leaseHex(lease))
		ms.recover(ctx, lease)
	}
}

// recover asks etcd about the lease until it answers: alive, go on; gone,
// drop every node lock (they went with it) and join again.
func (ms *membership) recover(ctx context.Context, lease clientv3.LeaseID) {
	c := ms.c
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := c.cli.KeepAliveOnce(qctx, lease)
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			c.log.Info("etcd answers again; the lease held", "lease", leaseHex(lease))
			// A peer's notice may have dropped it meanwhile (fence.go):
			// etcd has the last word.
			c.own.setLease(lease)
			return
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			c.log.Warn("this instance's etcd lease expired; its nodes went to the others: joining again", "lease", leaseHex(lease))
			c.own.setLease(0)
			for ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := ms.register(rctx)
				cancel()
				if err == nil {
					return
				}
				c.log.Warn("joining the cluster again failed; retrying", "err", err)
				sleep(ctx, time.Second)
			}
			return
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// reassert writes the member key again, if another client deleted it while
// the lease lives: without it the others would take every node away.
func (ms *membership) reassert(ctx context.Context) {
	c := ms.c
	lease := ms.current()
	if lease == 0 {
		return
	}
	val, _ := json.Marshal(memberRecord{URL: c.self, Lease: leaseHex(lease), Started: time.Now().UTC()})
	pctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, err := c.cli.Put(pctx, c.keys.member(c.self), string(val), clientv3.WithLease(lease)); err != nil {
		c.log.Warn("writing this instance's member key again failed", "err", err)
	}
}

// leave revokes the lease: the member key and every node lock of this
// instance go in one etcd revision.
func (ms *membership) leave(ctx context.Context) error {
	lease := ms.current()
	if lease == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, err := ms.c.cli.Revoke(rctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("cluster: revoking the lease (the others take over when it expires): %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
