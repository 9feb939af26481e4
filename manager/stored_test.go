package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"obmd/store"
)

// Two Managers over one memStore play two instances of a cluster; the
// tests deliver the store's changes to the second by hand, in the orders a
// watch may deliver them.

func hashOfToken(t *testing.T, tok string) []byte {
	t.Helper()
	raw, err := hex.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(raw)
	return h[:]
}

// storedRec reads node id's record from the shared store (nil: absent).
func storedRec(t *testing.T, st *memStore, id string) *store.NodeRecord {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, ok := st.nodes[id]
	if !ok {
		return nil
	}
	return &rec
}

func TestApplyStoredTakesEffectAsLocalChanges(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := newMemStore()
		regA, regB := newFakeRegistry(t), newFakeRegistry(t)
		a, err := New(Config{Store: st, Drivers: regA.Registry})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(context.Background())
		b, err := New(Config{Store: st, Drivers: regB.Registry})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		deliver := func(id string) {
			st.mu.Lock()
			rev := st.rev
			st.mu.Unlock()
			b.ApplyStored(id, storedRec(t, st, id), rev)
			b.StoreProgress(rev)
		}

		// Registered and given a token on A: B serves it once told.
		registerT(t, a, "n", "fake", fakeInfoJSON("x"))
		deliver("n")
		tok1 := mustToken(t, a, "n")
		if _, err := b.Authorize("n", tok1); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("B accepted a token it was not told of: %v", err)
		}
		deliver("n")
		acc := mustAccess(t, b, "n", tok1)
		v, err := acc.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		<-regB.driver(t, "n").opened

		// The same state at a later revision (a write to another key, read
		// by a refresh) changes nothing: the viewer stays.
		st.rev++
		deliver("n")
		synctest.Wait()
		if err := v.Err(); err != nil {
			t.Fatalf("viewer ended by a change that changed nothing: %v", err)
		}

		// A new token on A ends B's viewer of the old one, as a local one would.
		tok2 := mustToken(t, a, "n")
		deliver("n")
		if err := v.Err(); !errors.Is(err, ErrTokenRevoked) {
			t.Fatalf("B's viewer after a new token on A: %v, want ErrTokenRevoked", err)
		}
		if err := acc.PowerOn(context.Background()); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("B's access of the old token still works: %v", err)
		}
		acc2 := mustAccess(t, b, "n", tok2)
		v2, err := acc2.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}

		// Deleted on A: B's viewer ends, its driver is closed.
		if err := a.Delete(context.Background(), "n"); err != nil {
			t.Fatal(err)
		}
		deliver("n")
		if err := v2.Err(); !errors.Is(err, ErrNodeDeleted) {
			t.Fatalf("B's viewer after the node was deleted on A: %v, want ErrNodeDeleted", err)
		}
		synctest.Wait()
		if !regB.driver(t, "n").isClosed() {
			t.Error("B did not close the deleted node's driver")
		}
		if _, err := b.Authorize("n", tok2); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("B still authorizes a deleted node: %v", err)
		}
	})
}

func TestApplyStoredIgnoresStaleStates(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	st := newMemStore()
	m := newTestManager(t, st, fr.Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("x"))
	rec1 := *storedRec(t, st, "n")
	rev1 := st.rev

	// The watch delivers this instance's own writes after newer ones.
	tok1 := mustToken(t, m, "n")
	recTok1, revTok1 := *storedRec(t, st, "n"), st.rev
	tok2 := mustToken(t, m, "n")
	m.ApplyStored("n", &recTok1, revTok1)
	if _, err := m.Authorize("n", tok2); err != nil {
		t.Fatalf("a late delivery of an older token undid the newer one: %v", err)
	}
	if _, err := m.Authorize("n", tok1); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the older token came back: %v", err)
	}

	// Deleted here: the older states still on their way must not bring it
	// back, until the watch has passed the deletion.
	if err := m.Delete(context.Background(), "n"); err != nil {
		t.Fatal(err)
	}
	delRev := st.rev
	m.ApplyStored("n", &rec1, rev1)
	m.ApplyStored("n", &recTok1, revTok1)
	if ids := m.NodeIDs(); len(ids) != 0 {
		t.Fatalf("a state older than the deletion brought the node back: %v", ids)
	}
	m.StoreProgress(delRev)
	m.adminMu.Lock()
	left := len(m.tombstones)
	m.adminMu.Unlock()
	if left != 0 {
		t.Errorf("%d tombstones left after the watch passed the deletion", left)
	}
	// A registration on another instance after that shows up.
	rec3 := store.NodeRecord{ID: "n", Type: "fake", Info: fakeInfoJSON("y"), TokenHash: hashOfToken(t, tok2)}
	m.ApplyStored("n", &rec3, delRev+1)
	if _, err := m.Authorize("n", tok2); err != nil {
		t.Fatalf("node registered elsewhere after the deletion: %v", err)
	}
	// Anything up to the watch's progress is old news.
	m.ApplyStored("n", nil, delRev)
	if len(m.NodeIDs()) != 1 {
		t.Fatal("a state at the watch's progress deleted the node")
	}
}

func TestApplyStoredReplacesReRegisteredNode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fr := newFakeRegistry(t)
		m, err := New(Config{Store: newMemStore(), Drivers: fr.Registry})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		tok := "00112233445566778899aabbccddeeff"
		m.ApplyStored("n", &store.NodeRecord{ID: "n", Type: "fake", Info: fakeInfoJSON("old"), TokenHash: hashOfToken(t, tok)}, 10)
		old := fr.driver(t, "n")
		v, err := mustAccess(t, m, "n", tok).OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		// Deleted and registered again elsewhere (new info, same token
		// hash), both before this instance heard of the deletion.
		m.ApplyStored("n", &store.NodeRecord{ID: "n", Type: "fake", Info: fakeInfoJSON("new"), TokenHash: hashOfToken(t, tok)}, 12)
		if err := v.Err(); !errors.Is(err, ErrNodeDeleted) {
			t.Fatalf("viewer of the replaced node: %v, want ErrNodeDeleted", err)
		}
		synctest.Wait()
		if !old.isClosed() {
			t.Error("the replaced node's driver was not closed")
		}
		if cur := fr.driver(t, "n"); cur == old || cur.name != "new" {
			t.Errorf("node's driver is %q, want a new one for the new info", cur.name)
		}
	})
}

// TestRefreshBeforeRefusing: a token or node another instance made a
// moment ago is found by asking the store before answering 401 or 404.
func TestRefreshBeforeRefusing(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	st := newMemStore()
	var mu sync.Mutex
	var refreshed []string
	var m *Manager
	m = newTestManagerConfig(t, Config{Store: st, Drivers: fr.Registry, Refresh: func(ctx context.Context, id string) {
		mu.Lock()
		refreshed = append(refreshed, id)
		mu.Unlock()
		if _, ok := ctx.Deadline(); !ok {
			t.Error("Refresh called without a deadline")
		}
		st.mu.Lock()
		rev := st.rev
		st.mu.Unlock()
		m.ApplyStored(id, storedRec(t, st, id), rev)
	}})
	// "Another instance" writes straight to the store.
	tok := "00112233445566778899aabbccddeeff"
	st.nodes["n"] = store.NodeRecord{ID: "n", Type: "fake", Info: fakeInfoJSON("x"), TokenHash: hashOfToken(t, tok)}
	st.rev = 7
	if _, err := m.Authorize("n", tok); err != nil {
		t.Fatalf("token made on another instance: %v", err)
	}
	// Deleted elsewhere: registering it again here is not a 409.
	delete(st.nodes, "n")
	st.rev = 8
	if err := m.Register("n", "fake", fakeInfoJSON("y")); err != nil {
		t.Fatalf("registering a node deleted elsewhere: %v", err)
	}
	// Registered elsewhere: a token for it is not a 404.
	st.nodes["o"] = store.NodeRecord{ID: "o", Type: "fake", Info: fakeInfoJSON("o")}
	st.rev = 20
	if _, err := m.NewToken("o"); err != nil {
		t.Fatalf("token for a node registered elsewhere: %v", err)
	}
	if _, err := m.Status("p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Status of an unknown node: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(refreshed) != "[n n o p]" {
		t.Errorf("refreshed %v, want [n n o p]", refreshed)
	}
}

func newTestManagerConfig(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func TestStoreUnavailableIs503Kind(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	m := newTestManager(t, st, newFakeRegistry(t).Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("x"))
	st.fail = fmt.Errorf("etcd: %w: context deadline exceeded", store.ErrUnavailable)
	for name, err := range map[string]error{
		"register": m.Register("o", "fake", fakeInfoJSON("o")),
		"delete":   m.Delete(context.Background(), "n"),
		"revoke":   m.RevokeToken("n"),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the store unreachable: %v, want ErrUnavailable", name, err)
		}
	}
	if ids := m.NodeIDs(); len(ids) != 1 {
		t.Errorf("nodes %v after refused writes, want [n]", ids)
	}
}

func TestForwardedAccessOutlivesTokens(t *testing.T) {
	t.Parallel()
	fr := newFakeRegistry(t)
	m := newTestManager(t, newMemStore(), fr.Registry, time.Second)
	registerT(t, m, "n", "fake", fakeInfoJSON("x"))
	mustToken(t, m, "n")
	fa, err := m.Forwarded("n")
	if err != nil {
		t.Fatal(err)
	}
	mustToken(t, m, "n")
	if err := fa.PowerOn(context.Background()); err != nil {
		t.Fatalf("forwarded call after a token change: %v", err)
	}
	if err := m.Delete(context.Background(), "n"); err != nil {
		t.Fatal(err)
	}
	if err := fa.PowerOn(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("forwarded call on a deleted node: %v, want ErrNotFound", err)
	}
	if _, err := m.Forwarded("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Forwarded(missing) = %v, want ErrNotFound", err)
	}
}
