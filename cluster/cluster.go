package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"obmd/manager"
)

// LeaseTTL is the lifetime of an instance's etcd lease without a
// keepalive, and so how long a dead instance's nodes wait for a new owner.
// Power calls must work again within 5 s of an instance dying: etcd
// revokes an expired lease within half a second of its TTL (its lessor
// checks twice a second), the survivors' watches see the lock keys go, the
// new owner takes each lock with one transaction and its first BMC call
// dials a fresh session: about TTL + 0.6 s. 2 s is etcd's floor with its
// default election timeout; 3 s keeps a lease alive through two missed
// keepalives (sent every TTL/3) on a loaded machine.
const LeaseTTL = 3 * time.Second

// writeTimeout bounds one etcd write: past it the admin gets 503 (the
// write may still be applied later, but was never acknowledged).
const writeTimeout = 3 * time.Second

// DefaultPrefix is ETCD_PREFIX's default.
const DefaultPrefix = "/obmd/"

// Config configures an instance's membership of the cluster.
type Config struct {
	// Endpoints are etcd's client URLs (ETCD_ENDPOINTS).
	Endpoints []string
	// Prefix holds every key obmd writes (ETCD_PREFIX, default /obmd/).
	// It ends with "/".
	Prefix string
	// EtcdTLS, when set, is the client TLS configuration for etcd
	// (ETCD_CA, ETCD_CERT, ETCD_KEY).
	EtcdTLS *tls.Config
	// Token authenticates instance-to-instance calls (CLUSTER_TOKEN).
	Token string
	// AdvertiseURL is how the other instances reach this one
	// (ADVERTISE_URL): scheme, host and port of its API listener.
	AdvertiseURL string
	// PeerTLS, when set, is the TLS configuration for calling other
	// instances over https (their CA, CLUSTER_CA).
	PeerTLS *tls.Config
	Logger  *slog.Logger
}

// Cluster is this instance's membership of the cluster: its etcd client,
// the node store, its lease, the ownership of nodes and the calls to and
// from the other instances.
type Cluster struct {
	cfg   Config
	log   *slog.Logger
	cli   *clientv3.Client
	keys  keys
	self  string // this instance's member name: its advertised URL
	store *Store
	own   *owners
	peers *peerClient
	// served names the console streams this instance serves to the
	// others, for their viewers' input.
	served servedStreams

	mu       sync.Mutex // guards the fields below
	m        *manager.Manager
	snapRev  int64 // revision of the snapshot Nodes read
	started  bool
	closed   bool
	cancel   context.CancelFunc
	done     chan struct{} // closed when the background goroutines have returned
	member   *membership
	watchRev int64 // last revision the watch delivered
}

// Open connects to etcd and checks that it answers. Nothing is written
// until Start.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoints")
	}
	if cfg.Token == "" || cfg.AdvertiseURL == "" {
		return nil, errors.New("cluster: a cluster token and an advertised URL are required")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: 5 * time.Second,
		// A member that stops answering is given up within ~4 s, and the
		// client moves on to another endpoint.
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		PermitWithoutStream:  true,
		TLS:                  cfg.EtcdTLS,
		// gRPC's default reconnect backoff grows to two minutes: an etcd
		// that comes back after a long outage would be noticed that late.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
		// The client's own log is zap; obmd logs what matters itself.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	c := &Cluster{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "cluster"),
		cli:  cli,
		keys: keys{prefix: cfg.Prefix},
		self: cfg.AdvertiseURL,
	}
	c.store = &Store{c: c, refreshSlots: make(chan struct{}, maxRefreshes)}
	c.own = newOwners(c)
	c.peers = newPeerClient(cfg.Token, cfg.PeerTLS)
	// A linearizable read proves etcd answers (and has a leader).
	probe, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Get(probe, c.keys.prefix+"probe", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("cluster: etcd at %s does not answer: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return c, nil
}

// Store is the node store the Manager must use (manager.Config.Store),
// with Refresh as manager.Config.Refresh.
func (c *Cluster) Store() *Store { return c.store }

// Self is this instance's member name (its advertised URL).
func (c *Cluster) Self() string { return c.self }

// Drivers wraps every driver type of base so that the Manager's driver for
// a node is the cluster's (driver.go): the real driver while this instance
// owns the node, a forwarder to the owner otherwise.
func (c *Cluster) Drivers(base *manager.Registry) (*manager.Registry, error) {
	r := manager.NewRegistry()
	for _, name := range base.Names() {
		t, _ := base.Type(name)
		w := manager.DriverType{ParseInfo: t.ParseInfo}
		if t.New != nil {
			w.New = func(info manager.DriverInfo, env manager.DriverEnv) (manager.Driver, error) {
				return c.own.attach(t, info, env), nil
			}
		}
		if err := r.Register(name, w); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Start joins the cluster: it follows etcd's changes from the snapshot the
// Manager loaded (Nodes), registers this instance with a lease and starts
// taking the nodes it should own. Call it once the API listens, so that
// the other instances can reach this one as soon as they see it.
func (c *Cluster) Start(m *manager.Manager) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("cluster: started twice")
	}
	if c.snapRev == 0 {
		c.mu.Unlock()
		return errors.New("cluster: Start before the Manager loaded the nodes (Store().Nodes)")
	}
	c.started = true
	c.m = m
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	from := c.snapRev
	c.mu.Unlock()

	ms, err := join(ctx, c)
	if err != nil {
		c.mu.Lock()
		c.started = false
		c.mu.Unlock()
		cancel()
		close(c.done)
		return err
	}
	c.mu.Lock()
	c.member = ms
	c.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { c.watch(ctx, from) })
	wg.Go(func() { ms.run(ctx) })
	go func() {
		wg.Wait()
		close(c.done)
	}()
	c.log.Info("joined the cluster", "self", c.self, "endpoints", strings.Join(c.cfg.Endpoints, ","), "prefix", c.keys.prefix)
	return nil
}

// Leaving stops the ownership decisions, before the Manager closes the
// nodes' drivers at shutdown: the nodes are then not handed over one
// transaction at a time, since Close frees every lock at once.
func (c *Cluster) Leaving() { c.own.closing() }

// Close leaves the cluster: call it after the Manager is closed (its
// drivers closed, SOL deactivated). Revoking the lease deletes this
// instance's member key and node locks at once, so the others take its
// nodes over without waiting for the lease to expire.
func (c *Cluster) Close(ctx context.Context) error {
	c.own.closing()
	c.mu.Lock()
	cancel, done, ms := c.cancel, c.done, c.member
	c.closed = true
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	var err error
	if ms != nil {
		err = ms.leave(ctx)
	}
	c.peers.close()
	if cerr := c.cli.Close(); cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
		err = cerr
	}
	return err
}

// etcdReady reports whether the etcd client has a working connection.
func (c *Cluster) etcdReady() bool {
	return c.cli.ActiveConnection().GetState() == connectivity.Ready
}

// manager returns the Manager once started (nil before).
func (c *Cluster) manager() *manager.Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}

// keys is the layout of obmd's keys under the prefix.
type keys struct{ prefix string }

func (k keys) nodes() string             { return k.prefix + "nodes/" }
func (k keys) node(id string) string     { return k.prefix + "nodes/" + id }
func (k keys) members() string           { return k.prefix + "members/" }
func (k keys) member(name string) string { return k.prefix + "members/" + url.PathEscape(name) }
func (k keys) owners() string            { return k.prefix + "owners/" }
func (k keys) owner(id string) string    { return k.prefix + "owners/" + id }

// peerHTTPClient is the transport for instance-to-instance calls.
func peerTransport(tlsConf *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true, // console streams are flushed per chunk
	}
}
