package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"obmd/internal/etcdproc"
	"obmd/store"
)

func openTestCluster(t *testing.T, endpoints []string, prefix string) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Open(ctx, Config{Endpoints: endpoints, Prefix: prefix, Token: testCluster, AdvertiseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestStoreTransactions: register-if-absent, token replacement and
// deletion against a real etcd, from two clients as two instances would.
func TestStoreTransactions(t *testing.T) {
	t.Parallel()
	eps := sharedEtcd(t)
	prefix := testPrefix(t)
	a, b := openTestCluster(t, eps, prefix).Store(), openTestCluster(t, eps, prefix).Store()
	rec := store.NodeRecord{ID: "n1", Type: "mock", Info: json.RawMessage(`{"addr":"x"}`)}

	rev1, err := a.CreateNode(rec)
	if err != nil || rev1 <= 0 {
		t.Fatalf("CreateNode = %d, %v", rev1, err)
	}
	if _, err := b.CreateNode(rec); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateNode from another instance = %v, want ErrExists", err)
	}
	h := sha256.Sum256([]byte("token"))
	rev2, err := b.SetTokenHash("n1", h[:])
	if err != nil || rev2 <= rev1 {
		t.Fatalf("SetTokenHash = %d, %v (after %d)", rev2, err, rev1)
	}
	if _, err := a.SetTokenHash("n1", []byte("plaintext")); err == nil {
		t.Fatal("SetTokenHash accepted something that is not a SHA-256 digest")
	}
	nodes, err := a.Nodes()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}
	if got := nodes[0]; got.ID != "n1" || got.Type != "mock" || string(got.TokenHash) != string(h[:]) || got.Revision < rev2 {
		t.Fatalf("Nodes()[0] = %+v", got)
	}
	rev3, err := a.DeleteNode("n1")
	if err != nil || rev3 <= rev2 {
		t.Fatalf("DeleteNode = %d, %v", rev3, err)
	}
	if rev, err := b.DeleteNode("n1"); !errors.Is(err, store.ErrNotFound) || rev < rev3 {
		t.Fatalf("second DeleteNode = %d, %v, want ErrNotFound at %d or later", rev, err, rev3)
	}
	if _, err := b.SetTokenHash("n1", h[:]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetTokenHash of a deleted node = %v, want ErrNotFound", err)
	}
	// Registering again after a deletion works.
	if _, err := b.CreateNode(rec); err != nil {
		t.Fatal(err)
	}
}

// TestStoreUnavailable: with etcd not answering, a write fails with
// store.ErrUnavailable within writeTimeout, and works again once etcd is
// back.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	s := openTestCluster(t, ec.Endpoints(), testPrefix(t)).Store()
	if err := ec.Members[0].Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.CreateNode(store.NodeRecord{ID: "n", Type: "mock", Info: json.RawMessage(`{}`)})
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("CreateNode with etcd %v (pid %d) stopped = %v after %v, want ErrUnavailable", ec.Endpoints(), ec.Members[0].PID(), err, took)
	}
	if took > writeTimeout+2*time.Second {
		t.Errorf("the failed write took %v, want about %v", took, writeTimeout)
	}
	if err := ec.Members[0].Resume(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a write after etcd resumed", func() bool {
		_, err := s.CreateNode(store.NodeRecord{ID: "n", Type: "mock", Info: json.RawMessage(`{}`)})
		return err == nil || errors.Is(err, store.ErrExists)
	})
}

// TestReadiness: an instance is ready once it has joined, stays ready
// while etcd is away (it still serves its nodes), and is not after it
// left.
func TestReadiness(t *testing.T) {
	t.Parallel()
	ec := etcdproc.ForTest(t, etcdproc.Options{})
	in := startInstance(t, ec.Endpoints(), testPrefix(t))
	in.expect("GET", "/readyz", "", false, 200)
	ec.Members[0].Kill()
	in.expect("GET", "/readyz", "", false, 200)
	in.stop()
	if err := in.c.Store().Check(context.Background()); err == nil {
		t.Error("an instance that left the cluster says it is ready")
	}
}
