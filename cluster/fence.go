package cluster

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fencing an instance cut off from etcd alone.
//
// An instance that cannot reach etcd keeps its nodes (etcd may simply be
// down for everyone, and then every lease survives: etcd renews them all
// when it elects a leader). If etcd is up and only this instance is cut
// off, its lease expires, its member key and node locks go with it, and
// the survivors take its nodes. The instance cannot tell the two cases
// apart by itself, but the survivors can tell it: each one that sees a
// member's key deleted sends it one "your lease is gone" notice. The
// instance checks with etcd if it can (a lease etcd still keeps is not
// dropped), and otherwise trusts the notice, which carries the cluster
// token: it drops its lease, so its drivers stop driving the BMCs within
// one round trip of the takeover instead of when etcd answers again.
// If etcd did not answer, the lease is asked about again until it does,
// and taken back if it lives. Only an instance that can reach neither etcd
// nor any peer keeps driving its old nodes (README, "Running a cluster").

// leaseGonePath is the notice's route, under peerPathPrefix.
const leaseGonePath = "/lease_gone"

// leaseGoneTimeout bounds sending one notice; leaseCheckTimeout bounds
// one question to etcd about a lease, asked again every reverifyInterval
// after a drop etcd did not confirm.
const (
	leaseGoneTimeout  = 2 * time.Second
	leaseCheckTimeout = 500 * time.Millisecond
	reverifyInterval  = 500 * time.Millisecond
)

// leaseGoneBody is the notice: etcd deleted Member's key of Lease.
type leaseGoneBody struct {
	Member string `json:"member"`
	Lease  string `json:"lease"` // hex lease ID
}

// leaseGoneAnswer says whether the receiver dropped its lease.
type leaseGoneAnswer struct {
	Fenced bool `json:"fenced"`
}

// tellLeaseGone sends gone (a member whose key etcd deleted) the notice,
// once. It is usually dead, so failures are only logged at debug level.
func (c *Cluster) tellLeaseGone(gone memberRecord) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed || gone.Lease == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseGoneTimeout)
	defer cancel()
	var ans leaseGoneAnswer
	err := c.peers.post(ctx, gone.URL, leaseGonePath, leaseGoneBody{Member: gone.URL, Lease: gone.Lease}, &ans)
	switch {
	case err != nil:
		c.log.Debug("telling a gone member its lease expired failed", "member", gone.URL, "err", err)
	case ans.Fenced:
		c.log.Warn("a gone member was still running, cut off from etcd; told, it stopped driving its nodes", "member", gone.URL)
	}
}

// peerLeaseGone receives the notice.
func (c *Cluster) peerLeaseGone(g *gin.Context) {
	var b leaseGoneBody
	if err := decodePeerBody(g, &b); err != nil {
		peerFail(g, err)
		return
	}
	lease, ok := parseLease(b.Lease)
	fenced := ok && b.Member == c.self && c.leaseGone(g.Request.Context(), lease)
	g.JSON(http.StatusOK, leaseGoneAnswer{Fenced: fenced})
}

// leaseGone drops this instance's lease if it is still lease and etcd
// does not answer that it lives (asked only if its connection is up). A
// lease dropped without etcd's word is checked again in the background.
func (c *Cluster) leaseGone(ctx context.Context, lease clientv3.LeaseID) bool {
	c.mu.Lock()
	ms := c.member
	c.mu.Unlock()
	if ms == nil || ms.current() != lease {
		return false // not started, or a lease of an earlier run
	}
	known := false
	if c.etcdReady() {
		// etcd may answer: it has the last word.
		var alive bool
		alive, known = c.leaseAlive(ctx, lease)
		if alive {
			return false // it keeps the lease: only the member key was deleted (reassert writes it again)
		}
	}
	if !c.own.fence(lease) {
		return false
	}
	c.log.Warn("a cluster member saw this instance's etcd lease expire; its nodes went to the others, so it stopped driving their BMCs",
		"lease", leaseHex(lease))
	if !known {
		go c.reverify(ms, lease)
	}
	return true
}

// leaseAlive asks etcd about lease; known is false when it did not answer.
func (c *Cluster) leaseAlive(ctx context.Context, lease clientv3.LeaseID) (alive, known bool) {
	qctx, cancel := context.WithTimeout(ctx, leaseCheckTimeout)
	defer cancel()
	resp, err := c.cli.KeepAliveOnce(qctx, lease)
	switch {
	case err == nil:
		return resp.TTL > 0, true
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return false, true
	}
	return false, false
}

// reverify asks etcd about a lease dropped on a peer's word until etcd
// answers. Gone: nothing to do (the keepalive stream ends, and membership
// joins again). Alive after all (a slow etcd, and a member key deleted
// by hand): the lease is taken back, since nothing else would (its
// keepalive never broke), and with it the nodes it still holds.
func (c *Cluster) reverify(ms *membership, lease clientv3.LeaseID) {
	for {
		sleep(context.Background(), reverifyInterval)
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed || ms.current() != lease {
			return
		}
		alive, known := c.leaseAlive(context.Background(), lease)
		if !known {
			continue
		}
		if alive && c.own.unfence(lease) {
			c.log.Warn("etcd says this instance's lease lives after all; it drives its nodes again", "lease", leaseHex(lease))
		}
		return
	}
}

// post sends one instance-to-instance call outside a node's routes
// (path under peerPathPrefix) and decodes its answer into out.
func (p *peerClient) post(ctx context.Context, base, path string, body, out any) error {
	req, err := p.requestPath(ctx, http.MethodPost, base, path, body)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return &peerUnreachable{url: base, err: err}
	}
	defer resp.Body.Close()
	return readAnswer(resp, base, out)
}
