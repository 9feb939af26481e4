package etcdproc

import (
	"context"
	"os"
	"testing"
	"time"
)

// ForTest starts a cluster for one test, which may kill or pause its
// members: the test skips (naming the package to install) where etcd is
// missing, fails if it does not start within 30 s, and the cluster and its
// data go when the test ends.
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if _, err := LookPath(); err != nil {
		t.Skip(err.Error())
	}
	dir, err := TempDir("obmd-etcd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ec, err := Start(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	return ec
}
