package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"testing"
	"time"

	"obmd/api"
	"obmd/manager"
	"obmd/store"
)

// startInProcessDaemon serves obmd's API from this process, wired as
// cmd/obmd wires it (in-memory store, default manager settings), so that
// pprof and the execution tracer see obmd's code. Its Usage is this whole
// process's.
func startInProcessDaemon(t testing.TB) func(context.Context) (*Daemon, error) {
	return func(ctx context.Context) (*Daemon, error) {
		st, err := store.Open(store.InMemory, nil)
		if err != nil {
			return nil, err
		}
		m, err := manager.New(manager.Config{Store: st})
		if err != nil {
			st.Close()
			return nil, err
		}
		tok, err := newAdminToken()
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: api.New(m, api.Options{AdminToken: tok}), ReadHeaderTimeout: 10 * time.Second}
		srv.RegisterOnShutdown(m.EndConsoles)
		go srv.Serve(ln)
		usage := func() (ProcUsage, error) { return ReadProcUsage(os.Getpid()) }
		stop := func() error {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := srv.Shutdown(sctx)
			return errors.Join(err, m.Close(sctx), st.Close())
		}
		return newDaemon(ln.Addr().String(), tok, usage, stop), nil
	}
}

// TestProfileFanout profiles obmd during a console fan-out, with obmd in
// this process: set OBMD_BENCH_PROFILE to a directory to get cpu.pprof,
// heap.pprof (at the end of the window) and trace.out there;
// OBMD_BENCH_PROFILE_NODES and _VIEWERS size it (default 1000 x 1).
// The figures it logs are not comparable with the benchmark's: obmd shares
// the process with the simulated BMCs and the viewers.
func TestProfileFanout(t *testing.T) {
	dir := os.Getenv("OBMD_BENCH_PROFILE")
	if dir == "" {
		t.Skip("set OBMD_BENCH_PROFILE=DIR to profile obmd during a console fan-out")
	}
	nodes, viewers := 1000, 1
	if v, err := strconv.Atoi(os.Getenv("OBMD_BENCH_PROFILE_NODES")); err == nil {
		nodes = v
	}
	if v, err := strconv.Atoi(os.Getenv("OBMD_BENCH_PROFILE_VIEWERS")); err == nil {
		viewers = v
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	tr, err := os.Create(filepath.Join(dir, "trace.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	cfg := FanoutConfig{Nodes: nodes, ViewersPerNode: viewers, Duration: 5 * time.Second,
		startDaemon: startInProcessDaemon(t)}
	// The trace covers one second of the window.
	go func() {
		time.Sleep(cfg.Warmup + 4*time.Second)
		if trace.Start(tr) == nil {
			time.Sleep(time.Second)
			trace.Stop()
		}
		runtime.GC()
		if heap, err := os.Create(filepath.Join(dir, "heap.pprof")); err == nil {
			pprof.Lookup("heap").WriteTo(heap, 0)
			heap.Close()
		}
	}()
	r, err := ConsoleFanout(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
}
