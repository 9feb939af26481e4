// Package store persists obmd's nodes in Badger: each node's driver type,
// its driver info (which, for IPMI, necessarily holds the BMC password, since
// obmd must log in to the BMC) and the SHA-256 hash of its current token.
//
// It must never hold a plaintext token: SetTokenHash refuses anything that is
// not a SHA-256 digest. It knows nothing of drivers, HTTP or BMCs; validating
// the info is the manager's job. Every write is synchronous (SyncWrites), so a
// write that returned nil survives kill -9 of the process.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// InMemory is the DB_PATH value that selects a store that lives only as long
// as the process.
const InMemory = ":memory:"

// Errors returned by Store methods, and by the other stores obmd can use
// (package cluster's etcd store).
var (
	ErrExists   = errors.New("node already exists")
	ErrNotFound = errors.New("no such node")
	// ErrUnavailable means the store could not be reached or did not
	// confirm a write in time; the write was not acknowledged (a shared
	// store such as etcd may still apply it later). Badger never returns it.
	ErrUnavailable = errors.New("store unavailable")
)

// NodeRecord is one node as persisted.
type NodeRecord struct {
	ID   string
	Type string
	// Info is the driver's info object exactly as accepted at registration.
	Info json.RawMessage
	// TokenHash is the SHA-256 digest of the node's current token, or nil
	// when the node has no token.
	TokenHash []byte
	// Revision orders the states of one node in a store shared by several
	// obmd instances (etcd's revision at which this record was read); 0 for
	// a store with no revisions (Badger), which only this process writes.
	Revision int64
}

// recordV1 is the on-disk encoding of a NodeRecord (the key holds the ID).
type recordV1 struct {
	Version     int             `json:"version"`
	Type        string          `json:"type"`
	Info        json.RawMessage `json:"info"`
	TokenSHA256 string          `json:"token_sha256,omitempty"`
}

const (
	recordVersion = 1
	nodePrefix    = "node/"
)

// Store is a Badger database of nodes. It is safe for concurrent use.
type Store struct {
	db *badger.DB

	probeMu   sync.Mutex
	lastProbe time.Time // last successful write probe (Check)
}

// Open opens (creating it if missing) the Badger directory at path, or an
// in-memory database when path is InMemory. Badger's own log messages go to
// logger at warning level and above; its informational chatter is dropped.
func Open(path string, logger *slog.Logger) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var opts badger.Options
	if path == InMemory {
		opts = badger.DefaultOptions("").WithInMemory(true)
	} else {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("store: creating database directory: %w", err)
		}
		opts = badger.DefaultOptions(path)
	}
	// obmd stores a handful of small records: size Badger for that instead of
	// its defaults (64 MiB memtables, 1 GiB value log files, 256 MiB cache).
	opts = opts.
		WithSyncWrites(true).
		WithLogger(badgerLogger{logger.With("component", "badger")}).
		WithMemTableSize(4 << 20).
		WithValueThreshold(64 << 10).
		WithNumMemtables(2).
		WithValueLogFileSize(16 << 20).
		WithBlockCacheSize(1 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		// Records are tiny; uncompressed tables keep the files greppable,
		// which is how the tests prove no plaintext token is stored.
		WithCompression(options.None)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("store: opening Badger database at %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// RestrictPermissions makes an existing database directory, and the
// files directly in it, private to their owner (0700 and 0600): the
// database holds BMC passwords, and Badger creates files with the
// process's umask. It returns how many it changed; a missing directory (it
// will be created 0700) or InMemory is nothing to do. It fails if a mode
// cannot be changed, for example because the directory belongs to another
// user.
func RestrictPermissions(path string) (int, error) {
	if path == InMemory || path == "" {
		return 0, nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("not a directory")
	}
	changed := 0
	restrict := func(p string, mode fs.FileMode, private fs.FileMode) error {
		if mode.Perm()&0o077 == 0 {
			return nil
		}
		if err := os.Chmod(p, private); err != nil {
			return fmt.Errorf("other users can read it and it cannot be made private: %w", err)
		}
		changed++
		return nil
	}
	if err := restrict(path, fi.Mode(), 0o700); err != nil {
		return changed, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return changed, err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if err := restrict(filepath.Join(path, e.Name()), info.Mode(), 0o600); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// probeKey is written by Check; it is outside nodePrefix, so Nodes never
// sees it.
const probeKey = "health/probe"

// probeEvery bounds how often Check writes (each write is synced to disk):
// a readiness probe that anyone may call must not turn into an fsync per
// request.
const probeEvery = time.Second

// Check reports whether the database is open and accepts a synced write,
// for the daemon's readiness probe. An open database is probed with a
// write at most once per probeEvery; in between, the last success stands.
func (s *Store) Check(ctx context.Context) error {
	if s.db.IsClosed() {
		return errors.New("the database is closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	now := time.Now()
	if !s.lastProbe.IsZero() && now.Sub(s.lastProbe) < probeEvery {
		return nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(probeKey), now.UTC().AppendFormat(nil, time.RFC3339Nano))
	})
	if err != nil {
		return fmt.Errorf("the database does not accept writes: %w", err)
	}
	s.lastProbe = now
	return nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

func nodeKey(id string) []byte { return []byte(nodePrefix + id) }

// EncodeRecord is a node's stored form (JSON, versioned; the ID is the
// key's), shared by every store so that nodes can move between them.
func EncodeRecord(rec NodeRecord) ([]byte, error) {
	r := recordV1{Version: recordVersion, Type: rec.Type, Info: rec.Info}
	if len(rec.TokenHash) > 0 {
		r.TokenSHA256 = hex.EncodeToString(rec.TokenHash)
	}
	return json.Marshal(r)
}

// DecodeRecord reads what EncodeRecord wrote for node id.
func DecodeRecord(id string, val []byte) (NodeRecord, error) {
	var r recordV1
	if err := json.Unmarshal(val, &r); err != nil {
		return NodeRecord{}, fmt.Errorf("store: node %q: corrupt record: %w", id, err)
	}
	if r.Version != recordVersion {
		return NodeRecord{}, fmt.Errorf("store: node %q: record version %d, this obmd reads version %d", id, r.Version, recordVersion)
	}
	rec := NodeRecord{ID: id, Type: r.Type, Info: r.Info}
	if r.TokenSHA256 != "" {
		h, err := hex.DecodeString(r.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			return NodeRecord{}, fmt.Errorf("store: node %q: corrupt token hash", id)
		}
		rec.TokenHash = h
	}
	return rec, nil
}

// CheckTokenHash refuses anything but a SHA-256 digest (or nothing), so
// that a plaintext token can never be stored.
func CheckTokenHash(h []byte) error {
	if len(h) != 0 && len(h) != sha256.Size {
		return fmt.Errorf("store: refusing a token hash of %d bytes: only SHA-256 digests (%d bytes) are stored", len(h), sha256.Size)
	}
	return nil
}

// CreateNode stores a new node. It fails with ErrExists if the ID is taken.
// Badger has no revisions: rev is always 0.
func (s *Store) CreateNode(rec NodeRecord) (rev int64, err error) {
	if err := CheckTokenHash(rec.TokenHash); err != nil {
		return 0, err
	}
	val, err := EncodeRecord(rec)
	if err != nil {
		return 0, err
	}
	return 0, s.db.Update(func(txn *badger.Txn) error {
		_, err := txn.Get(nodeKey(rec.ID))
		switch {
		case err == nil:
			return ErrExists
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return txn.Set(nodeKey(rec.ID), val)
	})
}

// DeleteNode removes a node. It fails with ErrNotFound if there is none.
func (s *Store) DeleteNode(id string) (rev int64, err error) {
	return 0, s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(nodeKey(id)); err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return ErrNotFound
			}
			return err
		}
		return txn.Delete(nodeKey(id))
	})
}

// SetTokenHash replaces the node's token hash; nil clears it. Only SHA-256
// digests are accepted, so a plaintext token can never reach the disk.
func (s *Store) SetTokenHash(id string, hash []byte) (rev int64, err error) {
	if err := CheckTokenHash(hash); err != nil {
		return 0, err
	}
	return 0, s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(nodeKey(id))
		if err != nil {
			if errors.Is(err, badger.ErrKeyNotFound) {
				return ErrNotFound
			}
			return err
		}
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		rec, err := DecodeRecord(id, val)
		if err != nil {
			return err
		}
		rec.TokenHash = hash
		val, err = EncodeRecord(rec)
		if err != nil {
			return err
		}
		return txn.Set(nodeKey(id), val)
	})
}

// Nodes returns every stored node, ordered by ID.
func (s *Store) Nodes() ([]NodeRecord, error) {
	var out []NodeRecord
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(nodePrefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			id := string(bytes.TrimPrefix(item.Key(), []byte(nodePrefix)))
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := DecodeRecord(id, val)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// badgerLogger routes Badger's messages to slog: errors as errors, warnings
// as warnings, and drops the informational and debug chatter.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(trimNewline(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(trimNewline(fmt.Sprintf(f, a...)))
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

func trimNewline(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
