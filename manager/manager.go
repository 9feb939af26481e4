package manager

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-multierror"

	"obmd/store"
)

// NodeStore is the persistence the Manager needs; *store.Store (Badger)
// and package cluster's etcd store implement it. Every write must be
// durable when it returns nil. A write returns the store revision at which
// it was committed (or, for DeleteNode and SetTokenHash failing with
// store.ErrNotFound, at which the node was found absent): the order of the
// node's states in a store that several instances write, which
// ApplyStored compares. A store only this process writes returns 0.
// store.ErrUnavailable means the write was not acknowledged (HTTP 503).
type NodeStore interface {
	CreateNode(rec store.NodeRecord) (rev int64, err error)
	DeleteNode(id string) (rev int64, err error)
	SetTokenHash(id string, hash []byte) (rev int64, err error)
	Nodes() ([]store.NodeRecord, error)
}

// StoreChecker is implemented by a NodeStore that can tell whether it is
// open and accepts writes (for the daemon's readiness probe).
type StoreChecker interface {
	Check(ctx context.Context) error
}

// CheckStore reports whether the store is open and writable: nil when it
// is, or when the store cannot tell.
func (m *Manager) CheckStore(ctx context.Context) error {
	if c, ok := m.cfg.Store.(StoreChecker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Config configures a Manager. Zero values take the defaults.
type Config struct {
	Store   NodeStore // required
	Drivers *Registry // default BuiltinDrivers()
	Logger  *slog.Logger
	// OpTimeout bounds each BMC operation, waiting for an earlier operation
	// on the same node included (default 10 s). Past it the caller gets
	// ErrTimeout (504).
	OpTimeout time.Duration
	// SoftCycleTimeout bounds a power cycle without force, which waits for
	// the OS to shut down before powering on (default 60 s, so that the
	// ipmi driver's 30 s grace before forcing the node off fits).
	SoftCycleTimeout time.Duration
	Console          HubConfig
	// Observe, if set, is told of every BMC operation and console open
	// (for latency metrics).
	Observe OperationObserver
	// ConsoleLog, if set, keeps every node's console open and writes it to
	// files (consolelog.go).
	ConsoleLog *ConsoleLogConfig
	// Refresh, when set, re-reads node id from a store that other obmd
	// instances write too, handing what it finds to ApplyStored, before
	// the Manager answers that the node is unknown, that it exists, or
	// that a token is wrong: another instance may have changed the node a
	// moment before this one's watch of the store reports it. It must
	// return by ctx's deadline (RefreshTimeout) and may skip the read (when
	// the store is unreachable, or too many reads are in flight).
	Refresh func(ctx context.Context, id string)
}

// RefreshTimeout bounds one Config.Refresh.
const RefreshTimeout = time.Second

// DefaultOpTimeout is the default Config.OpTimeout.
const DefaultOpTimeout = 10 * time.Second

// DefaultSoftCycleTimeout is the default Config.SoftCycleTimeout.
const DefaultSoftCycleTimeout = 60 * time.Second

// MaxNodeIDLen bounds node IDs (bytes).
const MaxNodeIDLen = 256

// Manager is the node registry: drivers, tokens, per-node serialisation
// and console hubs. It is safe for concurrent use.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	stats   consoleStats
	drivers DriverCounters // DriverEnv.Counters of every node
	clogs   *consoleLogs   // nil without Config.ConsoleLog

	// adminMu serialises registrations, deletions and token changes, each of
	// which ends in a synchronous store write. BMC operations never take it.
	adminMu sync.Mutex

	mu    sync.RWMutex // guards nodes; held only for map access
	nodes map[string]*node

	// For a store shared with other instances (ApplyStored): nodes deleted
	// here at a revision the store's watch has not reached yet, so that an
	// older change still on its way cannot bring them back, and the
	// revision up to which the watch has delivered every change.
	tombstones map[string]int64 // (adminMu)
	storeRev   int64            // (adminMu)

	// absent stands in for a node that does not exist, so that checking a
	// token does the same work either way.
	absent *node
}

// node is one registered node.
type node struct {
	id     string
	typ    string
	info   DriverInfo
	stored []byte // the info as stored (compact JSON), to compare with the store's
	rev    int64  // store revision of the state applied last (adminMu)
	driver Driver
	log    *slog.Logger
	hub    *hub
	clog   *nodeLog // nil without console logs
	// sem holds one token while a BMC operation runs: operations on one node
	// are serialised, operations on different nodes are independent.
	sem chan struct{}

	mu        sync.Mutex // guards the fields below
	tokenHash [sha256.Size]byte
	hasToken  bool
	epoch     uint64 // bumped on every token change and on deletion
	deleted   bool
	lastErr   ErrorRecord   // the last failed operation, for Status
	goneErr   error         // why gone was closed
	gone      chan struct{} // closed when the node is deleted or shut down

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	shutdownErr  error
}

// New builds a Manager and loads every stored node. A stored node whose
// driver cannot be built (for example an "ipmi" node while the ipmi driver
// is not available) is kept, so it can still be deleted; its operations
// fail with the reason.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("manager: no store")
	}
	if cfg.Drivers == nil {
		cfg.Drivers = BuiltinDrivers()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.SoftCycleTimeout <= 0 {
		cfg.SoftCycleTimeout = max(DefaultSoftCycleTimeout, cfg.OpTimeout)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, nodes: make(map[string]*node), tombstones: make(map[string]int64)}
	if cfg.ConsoleLog != nil {
		// Logged consoles are kept open: output printed while nobody
		// watches is what an operator reads the log for.
		m.cfg.Console.KeepOpen = true
		clogs, err := newConsoleLogs(*cfg.ConsoleLog, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("manager: %w", err)
		}
		m.clogs = clogs
	}
	m.absent = &node{id: "", sem: make(chan struct{}, 1), gone: make(chan struct{})}
	if _, err := rand.Read(m.absent.tokenHash[:]); err != nil {
		return nil, fmt.Errorf("manager: reading random bytes: %w", err)
	}

	recs, err := cfg.Store.Nodes()
	if err != nil {
		return nil, fmt.Errorf("manager: loading nodes: %w", err)
	}
	for _, rec := range recs {
		n := m.loadNode(rec)
		m.nodes[rec.ID] = n
	}
	m.log.Info("nodes loaded", "count", len(recs))
	for _, n := range m.nodes {
		n.hub.keepOpen()
	}
	return m, nil
}

func (m *Manager) loadNode(rec store.NodeRecord) *node {
	log := m.log.With("node", rec.ID)
	var info DriverInfo
	drv, err := func() (Driver, error) {
		t, err := m.cfg.Drivers.lookup(rec.Type)
		if err != nil {
			return nil, err
		}
		info, err = t.ParseInfo(rec.Info)
		if err != nil {
			return nil, err
		}
		if t.New == nil {
			return nil, unavailableType(rec.Type)
		}
		return t.New(info, DriverEnv{NodeID: rec.ID, Logger: log, Counters: &m.drivers})
	}()
	if err != nil {
		log.Warn("stored node has no working driver; its operations will fail until it is re-registered",
			"type", rec.Type, "err", err)
		reason := fmt.Errorf("node %q (type %q) cannot be driven: %w", rec.ID, rec.Type, err)
		if !hasKind(err) {
			reason = &Error{Kind: ErrInternal, Reason: reason.Error()}
		}
		drv = brokenDriver{err: reason}
	}
	n := m.newNode(rec.ID, rec.Type, info, drv, log)
	n.stored = compactOr(rec.Info)
	n.rev = rec.Revision
	if len(rec.TokenHash) == sha256.Size {
		copy(n.tokenHash[:], rec.TokenHash)
		n.hasToken = true
	}
	return n
}

func unavailableType(typ string) error {
	return UnsupportedError(fmt.Sprintf("driver type %q is not available in this build of obmd", typ))
}

func (m *Manager) newNode(id, typ string, info DriverInfo, drv Driver, log *slog.Logger) *node {
	n := &node{id: id, typ: typ, info: info, driver: drv, log: log, sem: make(chan struct{}, 1), gone: make(chan struct{}), shutdownDone: make(chan struct{})}
	open := func(ctx context.Context) (io.ReadCloser, error) {
		start := time.Now()
		rc, err := doOp(ctx, n, m.cfg.OpTimeout, "open console", func(ctx context.Context) (io.ReadCloser, error) {
			return n.driver.OpenConsole(ctx)
		}, func(rc io.ReadCloser) { rc.Close() })
		if err != nil && ctx.Err() == nil {
			n.noteError("open console", err)
		}
		m.observe("open console", err, start)
		return rc, err
	}
	n.hub = newHub(m.cfg.Console, open, log.With("component", "console"), &m.stats)
	if m.clogs != nil {
		n.clog = m.clogs.node(id)
		n.hub.recorder = n.clog
	}
	return n
}

// validateNodeID accepts node IDs an operator can read and type back: 1
// to MaxNodeIDLen bytes of printable UTF-8 (letters, marks, digits,
// punctuation, symbols and the ASCII space), no leading or trailing space,
// no '/', and not "." or ".." (which URL paths resolve away). Control and
// format characters (bidirectional overrides among them) could make one
// ID look like another in a log or a listing.
func validateNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDLen || !utf8.ValidString(id) {
		return Invalidf("node id must be 1 to %d bytes of UTF-8", MaxNodeIDLen)
	}
	if id == "." || id == ".." {
		return Invalidf("node id must not be %q", id)
	}
	if strings.TrimSpace(id) != id {
		return Invalidf("node id must not begin or end with a space")
	}
	for _, r := range id {
		switch {
		case r == '/':
			return Invalidf("node id must not contain '/'")
		case r == ' ':
		case !unicode.IsGraphic(r) || unicode.IsSpace(r):
			return Invalidf("node id must be printable: %U is a control, format or non-ASCII space character", r)
		}
	}
	return nil
}

func (m *Manager) lookup(id string) *node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nodes[id]
}

// Register adds a node. The info is validated by the driver type's
// ParseInfo (ErrInvalid); an existing id is ErrExists; a type known but not
// available in this build is ErrUnsupported. The node is durable when
// Register returns nil.
func (m *Manager) Register(id, typ string, info json.RawMessage) error {
	if err := validateNodeID(id); err != nil {
		return err
	}
	t, err := m.cfg.Drivers.lookup(typ)
	if err != nil {
		return err
	}
	parsed, err := t.ParseInfo(info)
	if err != nil {
		return err
	}
	if m.lookup(id) != nil {
		m.refresh(id) // another instance may have deleted it a moment ago
	}

	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if m.lookup(id) != nil {
		return &Error{Kind: ErrExists, Reason: fmt.Sprintf("node %q is already registered; delete it first to change it", id)}
	}
	if t.New == nil {
		return unavailableType(typ)
	}
	log := m.log.With("node", id)
	drv, err := t.New(parsed, DriverEnv{NodeID: id, Logger: log, Counters: &m.drivers})
	if err != nil {
		if hasKind(err) {
			return err
		}
		return &Error{Kind: ErrInternal, Reason: "creating the driver", Err: err}
	}
	compact := compactOr(info)
	rev, err := m.cfg.Store.CreateNode(store.NodeRecord{ID: id, Type: typ, Info: compact})
	if err != nil {
		drv.Close()
		if errors.Is(err, store.ErrExists) {
			return &Error{Kind: ErrExists, Reason: fmt.Sprintf("node %q is already registered", id)}
		}
		return storeError("storing the node", err)
	}
	n := m.newNode(id, typ, parsed, drv, log)
	n.stored, n.rev = compact, rev
	delete(m.tombstones, id)
	m.mu.Lock()
	m.nodes[id] = n
	m.mu.Unlock()
	log.Info("node registered", "type", typ, "info", parsed)
	n.hub.keepOpen()
	return nil
}

// compactOr returns raw as compact JSON, or raw itself if it does not parse.
func compactOr(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// storeError is a failed store write: ErrUnavailable (503) when the store
// did not acknowledge it, ErrInternal otherwise.
func storeError(what string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &Error{Kind: ErrUnavailable, Reason: what + ": the node store did not acknowledge the change; retry when it is reachable again", Err: err,
			Tenant: "obmd's node store is unreachable; retrying later may help"}
	}
	return &Error{Kind: ErrInternal, Reason: what, Err: err}
}

// refresh asks the shared store, if any, for node id's current state.
func (m *Manager) refresh(id string) {
	if m.cfg.Refresh == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), RefreshTimeout)
	defer cancel()
	m.cfg.Refresh(ctx, id)
}

// Delete unregisters a node: its token stops working and its viewers are
// disconnected at once; then its console and driver are closed, waiting at
// most until ctx is done (the rest finishes in the background).
func (m *Manager) Delete(ctx context.Context, id string) error {
	if m.lookup(id) == nil {
		m.refresh(id) // another instance may have registered it a moment ago
	}
	m.adminMu.Lock()
	n := m.lookup(id)
	if n == nil {
		m.adminMu.Unlock()
		return &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	}
	rev, err := m.cfg.Store.DeleteNode(id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.adminMu.Unlock()
		return storeError("deleting the node from the store", err)
	}
	m.removeLocked(n, rev)
	m.adminMu.Unlock()
	n.log.Info("node deleted")

	ctx, cancel := context.WithTimeout(ctx, m.cfg.OpTimeout)
	defer cancel()
	if err := n.shutdown(ctx, ErrNodeDeleted); err != nil {
		n.log.Warn("closing the deleted node's driver", "err", err)
	}
	return nil
}

// removeLocked takes n out of the registry, deleted at store revision rev:
// its token stops working and its viewers are disconnected at once. The
// caller holds adminMu and shuts n down afterwards.
func (m *Manager) removeLocked(n *node, rev int64) {
	m.mu.Lock()
	delete(m.nodes, n.id)
	m.mu.Unlock()
	if rev > m.tombstones[n.id] && rev > m.storeRev {
		m.tombstones[n.id] = rev
	}
	n.mu.Lock()
	n.deleted = true
	n.hasToken = false
	n.epoch++
	n.markGoneLocked(&Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q was deleted", n.id)})
	n.hub.newTenancy(ErrNodeDeleted)
	n.mu.Unlock()
}

// markGoneLocked makes waiting and future operations fail with reason.
func (n *node) markGoneLocked(reason error) {
	if n.goneErr == nil {
		n.goneErr = reason
		close(n.gone)
	}
}

// shutdown closes the node's console, waits for any operation in flight and
// closes its driver. It runs once; later calls wait for the first.
func (n *node) shutdown(ctx context.Context, reason error) error {
	n.mu.Lock()
	n.markGoneLocked(&Error{Kind: ErrInternal, Reason: "obmd is shutting down"})
	n.mu.Unlock()
	n.shutdownOnce.Do(func() {
		go func() {
			defer close(n.shutdownDone)
			var errs error
			if err := n.hub.close(context.Background(), reason); err != nil {
				errs = multierror.Append(errs, err)
			}
			n.sem <- struct{}{} // no operation in flight, and none will start
			if err := n.driver.Close(); err != nil {
				errs = multierror.Append(errs, fmt.Errorf("node %q: closing driver: %w", n.id, err))
			}
			if n.clog != nil {
				n.clog.close() // after the hub: nothing more to record
			}
			n.shutdownErr = errs
		}()
	})
	select {
	case <-n.shutdownDone:
		return n.shutdownErr
	case <-ctx.Done():
		return fmt.Errorf("node %q: still closing: %w", n.id, ctx.Err())
	}
}

// NewToken gives the node a fresh 128-bit token (32 hex digits), replacing
// the previous one and disconnecting that token's console viewers. Only the
// token's SHA-256 is kept, in memory and in the store.
func (m *Manager) NewToken(id string) (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", &Error{Kind: ErrInternal, Reason: "reading random bytes", Err: err}
	}
	h := sha256.Sum256(raw[:])
	if err := m.setToken(id, h[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(raw[:]), nil
}

// RevokeToken invalidates the node's token, if any, and disconnects its
// console viewers.
func (m *Manager) RevokeToken(id string) error {
	return m.setToken(id, nil)
}

func (m *Manager) setToken(id string, hash []byte) error {
	if m.lookup(id) == nil {
		m.refresh(id) // another instance may have registered it a moment ago
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	n := m.lookup(id)
	if n == nil {
		return &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	}
	rev, err := m.cfg.Store.SetTokenHash(id, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Deleted through another instance; its watch will say so here.
		return &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	case err != nil:
		return storeError("storing the token hash", err)
	}
	n.rev = max(n.rev, rev)
	n.setTokenLocked(hash)
	if hash != nil {
		n.log.Info("token replaced")
	} else {
		n.log.Info("token revoked")
	}
	return nil
}

// setTokenLocked makes hash (nil: none) the node's token, ending the
// previous token's access and disconnecting its viewers. The caller holds
// the Manager's adminMu.
func (n *node) setTokenLocked(hash []byte) {
	n.mu.Lock()
	n.hasToken = hash != nil
	copy(n.tokenHash[:], hash)
	n.epoch++
	n.hub.newTenancy(ErrTokenRevoked)
	n.mu.Unlock()
}

// tokenDigest parses a token (32 hex digits, either case) and hashes it. A
// malformed token is hashed too, so that every check costs the same.
func tokenDigest(tok string) (digest [sha256.Size]byte, wellFormed bool) {
	var raw [16]byte
	if len(tok) == 2*len(raw) {
		if _, err := hex.Decode(raw[:], []byte(tok)); err == nil {
			return sha256.Sum256(raw[:]), true
		}
	}
	return sha256.Sum256([]byte(tok)), false
}

// Authorize checks a node token. A wrong, malformed or missing token and an
// unknown node all give the same ErrUnauthorized, after the same work: one
// SHA-256 and one constant-time comparison.
func (m *Manager) Authorize(id, tok string) (*Access, error) {
	digest, wellFormed := tokenDigest(tok)
	a, err := m.authorize(id, digest, wellFormed)
	if err != nil && m.cfg.Refresh != nil {
		// The token may be one another instance made a moment ago: ask
		// the shared store before refusing. An unknown node costs the
		// same read, so the answer's timing still does not tell them apart.
		m.refresh(id)
		a, err = m.authorize(id, digest, wellFormed)
	}
	return a, err
}

func (m *Manager) authorize(id string, digest [sha256.Size]byte, wellFormed bool) (*Access, error) {
	n := m.lookup(id)
	target := n
	if target == nil {
		target = m.absent
	}
	target.mu.Lock()
	want, has, epoch := target.tokenHash, target.hasToken, target.epoch
	target.mu.Unlock()
	match := subtle.ConstantTimeCompare(digest[:], want[:]) == 1
	if !match || !has || !wellFormed || n == nil {
		return nil, errUnauthorizedToken
	}
	return &Access{m: m, n: n, epoch: epoch}, nil
}

var errUnauthorizedToken = &Error{Kind: ErrUnauthorized, Reason: "missing or invalid token"}

// Access is a token holder's handle on one node. Every call rechecks that
// the token is still current.
type Access struct {
	m     *Manager
	n     *node
	epoch uint64
	// forwarded: another instance of the cluster checked the token and
	// forwarded the call here, the node's owner (see Forwarded).
	forwarded bool
}

// NodeID returns the node's id.
func (a *Access) NodeID() string { return a.n.id }

// current fails if the token was changed or the node deleted since
// Authorize. Callers hold a.n.mu.
func (a *Access) currentLocked() error {
	if a.n.deleted {
		return &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q was deleted", a.n.id)}
	}
	if a.n.epoch != a.epoch && !a.forwarded {
		return errUnauthorizedToken
	}
	return nil
}

func (n *node) isDeleted() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deleted
}

func (a *Access) current() error {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	return a.currentLocked()
}

func (a *Access) do(ctx context.Context, op string, f func(ctx context.Context, d Driver) error) error {
	return a.doWithin(ctx, a.m.cfg.OpTimeout, op, f)
}

func (a *Access) doWithin(ctx context.Context, timeout time.Duration, op string, f func(ctx context.Context, d Driver) error) error {
	start := time.Now()
	_, err := doOp(ctx, a.n, timeout, op, func(ctx context.Context) (struct{}, error) {
		if err := a.current(); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, f(ctx, a.n.driver)
	}, nil)
	a.m.observe(op, err, start)
	if err != nil {
		a.n.log.Warn("operation failed", "op", op, "err", err)
		if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrUnauthorized) {
			a.n.noteError(op, err)
		}
	} else {
		a.n.log.Info("operation done", "op", op)
	}
	return err
}

// PowerOn turns the node on.
func (a *Access) PowerOn(ctx context.Context) error {
	return a.do(ctx, "power on", func(ctx context.Context, d Driver) error { return d.PowerOn(ctx) })
}

// PowerOff turns the node off (hard off).
func (a *Access) PowerOff(ctx context.Context) error {
	return a.do(ctx, "power off", func(ctx context.Context, d Driver) error { return d.PowerOff(ctx) })
}

// PowerCycle resets the node (force) or shuts it down softly and powers it
// back on.
func (a *Access) PowerCycle(ctx context.Context, force bool) error {
	op, timeout := "power cycle", a.m.cfg.SoftCycleTimeout
	if force {
		op, timeout = "forced power cycle", a.m.cfg.OpTimeout
	}
	return a.doWithin(ctx, timeout, op, func(ctx context.Context, d Driver) error { return d.PowerCycle(ctx, force) })
}

// SetBootDevice sets the persistent boot device.
func (a *Access) SetBootDevice(ctx context.Context, dev string) error {
	return a.do(ctx, "set boot device", func(ctx context.Context, d Driver) error { return d.SetBootDevice(ctx, dev) })
}

// PowerStatus reports the node's power state.
func (a *Access) PowerStatus(ctx context.Context) (string, error) {
	var status string
	err := a.do(ctx, "power status", func(ctx context.Context, d Driver) error {
		s, err := d.PowerStatus(ctx)
		status = s
		return err
	})
	if err != nil {
		return "", err
	}
	return status, nil
}

// OpenConsole connects a console viewer whose stream starts up to replay
// bytes back in the node's recent output (bounded by the scrollback). The
// first viewer waits for the console to open (ErrBMC / ErrTimeout if it
// cannot); later ones join at once. The viewer is disconnected when the
// token changes or the node is deleted.
func (a *Access) OpenConsole(ctx context.Context, replay int) (*Viewer, error) {
	j, err := a.JoinConsole(replay)
	if err != nil {
		return nil, err
	}
	return j.Ready(ctx)
}

// JoinConsole is OpenConsole's first half: the viewer joins the console at
// once, and from then on receives everything it prints, though the console
// may still be opening. A server that tells its client "connected" between
// JoinConsole and Ready (a WebSocket upgrade) thus never loses output
// printed after the client heard it. The caller ends with Ready or Close.
func (a *Access) JoinConsole(replay int) (*JoiningViewer, error) {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	if err := a.currentLocked(); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			// The token was good at Authorize: it has been replaced or
			// revoked since, and the client is told so.
			return nil, &Error{Kind: ErrUnauthorized, Err: ErrTokenRevoked}
		}
		return nil, err
	}
	v, s, err := a.n.hub.joinAs(replay, a.forwarded)
	if err != nil {
		return nil, err
	}
	return &JoiningViewer{a: a, v: v, s: s}, nil
}

// JoiningViewer is a viewer joined to a console that may still be opening.
type JoiningViewer struct {
	a *Access
	v *Viewer
	s *consoleSession
}

// Ready waits for the console to be open and returns the viewer; on an
// error the viewer is closed.
func (j *JoiningViewer) Ready(ctx context.Context) (*Viewer, error) {
	err := j.a.n.hub.wait(ctx, j.v, j.s)
	// The token may have changed, or the node gone, while the console was
	// opening: that viewer was disconnected (and an open for nobody else
	// stopped), and its client gets the same answer as if it had come a
	// moment later.
	if why := j.v.Err(); errors.Is(why, ErrTokenRevoked) || errors.Is(why, ErrNodeDeleted) {
		j.v.Close()
		if j.a.n.isDeleted() {
			return nil, &Error{Kind: ErrNotFound, Err: ErrNodeDeleted}
		}
		return nil, &Error{Kind: ErrUnauthorized, Err: ErrTokenRevoked}
	}
	if err != nil {
		return nil, err
	}
	return j.v, nil
}

// Close gives up a viewer that never became Ready.
func (j *JoiningViewer) Close() { j.v.Close() }

// doOp runs f with the node's operation slot held, bounded by timeout
// (waiting for the slot included). If the deadline passes first, the caller
// gets ErrTimeout at once while f keeps the slot until it returns, so a
// stalled BMC blocks only its own node; a result that arrives too late is
// handed to abandon (if non-nil) to release it.
func doOp[T any](ctx context.Context, n *node, timeout time.Duration, op string, f func(ctx context.Context) (T, error), abandon func(T)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, timeout)
	select {
	case n.sem <- struct{}{}:
	case <-n.gone:
		cancel()
		n.mu.Lock()
		err := n.goneErr
		n.mu.Unlock()
		return zero, err
	case <-ctx.Done():
		cancel()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, withOp(op, TenantError(ErrTimeout, fmt.Sprintf("%s: an earlier operation on this node is still running after %s", op, timeout), nil,
				"an earlier operation on this node is still running; retry when it has finished"))
		}
		return zero, ctx.Err()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	var mu sync.Mutex
	gaveUp := false
	go func() {
		defer func() { <-n.sem }()
		defer cancel()
		v, err := callRecovering(ctx, op, f)
		mu.Lock()
		late := gaveUp
		mu.Unlock()
		if late {
			if err == nil && abandon != nil {
				abandon(v)
			}
			return
		}
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, classifyDriverError(op, timeout, r.err)
	case <-ctx.Done():
		mu.Lock()
		select {
		case r := <-done: // finished just in time
			mu.Unlock()
			return r.v, classifyDriverError(op, timeout, r.err)
		default:
			gaveUp = true
		}
		mu.Unlock()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, withOp(op, TimeoutError(fmt.Sprintf("%s: the BMC did not answer within %s", op, timeout), nil))
		}
		return zero, ctx.Err()
	}
}

// callRecovering runs f, turning a panic in a driver into an ErrInternal so
// that one faulty driver cannot take the daemon down.
func callRecovering[T any](ctx context.Context, op string, f func(ctx context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Kind: ErrInternal, Reason: fmt.Sprintf("%s: driver panic: %v", op, r)}
		}
	}()
	return f(ctx)
}

// Stats is a snapshot of the Manager's counters.
type Stats struct {
	Nodes             int
	Viewers           int64
	ConsoleBytes      int64 // read from drivers
	DroppedBytes      int64 // skipped by viewers too slow to keep up
	ConsoleReconnects int64
	// ConsoleStreamsLost counts console streams that ended while the
	// console was wanted (BMC reset, session lost), each followed by
	// reopening; ConsoleGap is the output time lost to them, summed over
	// the reopens that succeeded.
	ConsoleStreamsLost int64
	ConsoleGap         time.Duration
	// ViewerGaps counts the times a viewer fell so far behind that it
	// skipped ahead (a drop marker in its stream).
	ViewerGaps int64
	// Dials counts BMC session dials by result (DialResult names).
	Dials        map[string]int64
	SOLTakeovers int64
	// ConsoleLog is zero without console logs.
	ConsoleLog ConsoleLogStats
}

// Stats returns the current counters.
func (m *Manager) Stats() Stats {
	m.mu.RLock()
	nodes := len(m.nodes)
	m.mu.RUnlock()
	return Stats{
		Nodes:             nodes,
		Viewers:           m.stats.viewers.Load(),
		ConsoleBytes:      m.stats.bytes.Load(),
		DroppedBytes:      m.stats.dropped.Load(),
		ConsoleReconnects: m.stats.reconnects.Load(),

		ConsoleStreamsLost: m.stats.lost.Load(),
		ConsoleGap:         time.Duration(m.stats.gapNanos.Load()),
		ViewerGaps:         m.stats.viewerGaps.Load(),
		Dials:              m.drivers.Dials(),
		SOLTakeovers:       m.drivers.SOLTakeovers.Load(),
		ConsoleLog:         m.consoleLogStats(),
	}
}

func (m *Manager) consoleLogStats() ConsoleLogStats {
	if m.clogs == nil {
		return ConsoleLogStats{}
	}
	return m.clogs.stats()
}

// NodeIDs lists the registered nodes, sorted.
func (m *Manager) NodeIDs() []string {
	m.mu.RLock()
	ids := make([]string, 0, len(m.nodes))
	for id := range m.nodes {
		ids = append(ids, id)
	}
	m.mu.RUnlock()
	sort.Strings(ids)
	return ids
}

func (m *Manager) allNodes() []*node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*node, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n)
	}
	return out
}

// EndConsoles disconnects every console viewer with ErrShuttingDown and
// refuses new ones: the first step of a graceful shutdown, so that HTTP
// console streams finish.
func (m *Manager) EndConsoles() {
	for _, n := range m.allNodes() {
		n.hub.refuse(ErrShuttingDown)
	}
}

// Close shuts every node down (console, in-flight operation, driver) in
// parallel, waiting at most until ctx is done, and reports every failure.
// The store is the caller's to close afterwards.
func (m *Manager) Close(ctx context.Context) error {
	m.EndConsoles()
	nodes := m.allNodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.shutdown(ctx, ErrShuttingDown) })
	}
	wg.Wait()
	if m.clogs != nil {
		m.clogs.close()
	}
	var all *multierror.Error
	for _, err := range errs {
		if err != nil {
			all = multierror.Append(all, err)
		}
	}
	return all.ErrorOrNil()
}

// ConsoleLog returns a node's console log for one tenancy (0: the current
// one), for the admin. Without console logs it is ErrUnsupported.
func (m *Manager) ConsoleLog(id string, tenancy int) (*ConsoleLog, error) {
	if m.clogs == nil {
		return nil, UnsupportedError("console logs are off: set CONSOLE_LOG_DIR to keep them")
	}
	n := m.lookup(id)
	if n == nil {
		return nil, &Error{Kind: ErrNotFound, Reason: fmt.Sprintf("node %q is not registered", id)}
	}
	return n.clog.read(tenancy)
}

// brokenDriver stands in for a stored node whose driver cannot be built.
type brokenDriver struct{ err error }

func (b brokenDriver) PowerOn(context.Context) error                      { return b.err }
func (b brokenDriver) PowerOff(context.Context) error                     { return b.err }
func (b brokenDriver) PowerCycle(context.Context, bool) error             { return b.err }
func (b brokenDriver) PowerStatus(context.Context) (string, error)        { return "", b.err }
func (b brokenDriver) SetBootDevice(context.Context, string) error        { return b.err }
func (b brokenDriver) OpenConsole(context.Context) (io.ReadCloser, error) { return nil, b.err }
func (b brokenDriver) Close() error                                       { return nil }
