package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gin-gonic/gin"

	"obmd/api"
	"obmd/cluster"
	"obmd/manager"
	"obmd/metrics"
	"obmd/store"
)

// backend is where the nodes live: a Badger database for one instance, or
// etcd for an instance of a cluster (DB_TYPE=etcd), which also brings the
// cluster's driver wrapping, instance-to-instance routes and metrics.
type backend struct {
	store   manager.NodeStore
	refresh func(context.Context, string)
	drivers *manager.Registry
	cluster *cluster.Cluster // nil for one instance
	badger  *store.Store     // nil in a cluster
}

func openBackend(ctx context.Context, cfg config, log *slog.Logger) (*backend, error) {
	if cfg.Cluster == nil {
		if fixed, err := store.RestrictPermissions(cfg.DBPath); err != nil {
			return nil, &startupError{fmt.Errorf("DB_PATH %s: %w", cfg.DBPath, err), 2}
		} else if fixed > 0 {
			log.Warn("DB_PATH was readable by other users; restricted it to obmd's user", "db_path", cfg.DBPath, "changed", fixed)
		}
		st, err := store.Open(cfg.DBPath, log)
		if err != nil {
			return nil, &startupError{fmt.Errorf("DB_PATH %s: %w; check that the directory is obmd's and writable, and that no other obmd uses it", cfg.DBPath, err), 2}
		}
		return &backend{store: st, drivers: manager.BuiltinDrivers(), badger: st}, nil
	}
	cc := cfg.Cluster
	c, err := cluster.Open(ctx, cluster.Config{
		Endpoints:    cc.Endpoints,
		Prefix:       cc.Prefix,
		EtcdTLS:      cc.EtcdTLS,
		Token:        cc.Token,
		AdvertiseURL: cc.AdvertiseURL,
		PeerTLS:      cc.PeerTLS,
		Logger:       log,
	})
	if err != nil {
		return nil, &startupError{err, 1}
	}
	drivers, err := c.Drivers(manager.BuiltinDrivers())
	if err != nil {
		c.Close(ctx)
		return nil, err
	}
	return &backend{store: c.Store(), refresh: c.Store().Refresh, drivers: drivers, cluster: c}, nil
}

// routes adds the cluster's instance-to-instance routes to the API.
func (b *backend) routes(r *gin.Engine) {
	if b.cluster != nil {
		b.cluster.Routes(r, cluster.RouteHooks{Authenticated: api.MarkAuthenticated, Refused: api.RefuseUnauthenticated})
	}
}

// collect adds the cluster's gauges (members, owned nodes, etcd) to the
// daemon's metrics.
func (b *backend) collect(mt *metrics.Metrics) {
	if b.cluster != nil {
		mt.Registry().MustRegister(b.cluster.Collector())
	}
}

// start joins the cluster, once the API listens.
func (b *backend) start(m *manager.Manager) error {
	if b.cluster == nil {
		return nil
	}
	return b.cluster.Start(m)
}

// leaving is the start of a shutdown, before the Manager closes the
// nodes' drivers.
func (b *backend) leaving() {
	if b.cluster != nil {
		b.cluster.Leaving()
	}
}

// close closes the store, or leaves the cluster (after the Manager closed
// the nodes' drivers, so that their new owners find the BMCs free).
func (b *backend) close(ctx context.Context) error {
	if b.cluster != nil {
		return b.cluster.Close(ctx)
	}
	return b.badger.Close()
}
