package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// binDir holds the commands the tests build (obmd, fakebmc), once per test
// binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "obmd-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // package path -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// buildCmd builds a command of this module once per test binary.
func buildCmd(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		b.path, b.err = BuildCommand(ctx, binDir, pkg)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
