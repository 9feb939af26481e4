package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"obmd/internal/syncbuf"
)

// loggedManager is a Manager with console logs in a temporary directory,
// with one "fake" node "n" registered, and the node's driver.
func loggedManager(t *testing.T, cfg ConsoleLogConfig) (*Manager, *fakeDriver, *syncbuf.Buffer) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	logs := &syncbuf.Buffer{}
	fr := newFakeRegistry(t)
	m, err := New(Config{Store: newMemStore(), Drivers: fr.Registry, OpTimeout: time.Second, ConsoleLog: &cfg,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	registerT(t, m, "n", "fake", fakeInfoJSON("a"))
	return m, fr.driver(t, "n"), logs
}

// emit writes p to the console stream and waits, in the synctest
// bubble, until the hub and the log writer are idle again.
func emit(t *testing.T, s *fakeStream, p string) {
	t.Helper()
	if _, err := s.w.Write([]byte(p)); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
}

func readLog(t *testing.T, m *Manager, tenancy int) (string, *ConsoleLog) {
	t.Helper()
	cl, err := m.ConsoleLog("n", tenancy)
	if err != nil {
		t.Fatalf("ConsoleLog(n, %d): %v", tenancy, err)
	}
	defer cl.Content.Close()
	b, err := io.ReadAll(cl.Content)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != cl.Size {
		t.Errorf("read %d bytes, Size says %d", len(b), cl.Size)
	}
	return string(b), cl
}

// synctest's clock starts at midnight UTC, 1 January 2000.
const t0 = "2000-01-01T00:00:00.000Z"

// The console is open with nobody watching; every line is stamped with
// its arrival time; a token change starts a new file, and the log of the
// current tenancy holds nothing from before it.
func TestConsoleLogTenancies(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		m, d, _ := loggedManager(t, ConsoleLogConfig{Dir: dir})
		s := <-d.opened // opened at registration, without a viewer
		emit(t, s, "BIOS\r\nboot")
		time.Sleep(1500 * time.Millisecond)
		emit(t, s, "ing\r\n")
		mustToken(t, m, "n")
		synctest.Wait()
		time.Sleep(time.Second)
		emit(t, s, "tenant A\n")
		if err := m.RevokeToken("n"); err != nil {
			t.Fatal(err)
		}
		emit(t, s, "between tenants\n")

		got, cl := readLog(t, m, 0)
		if want := "2000-01-01T00:00:02.500Z between tenants\n"; got != want {
			t.Errorf("current tenancy's log = %q, want %q", got, want)
		}
		if cl.Tenancy != 3 || cl.Current != 3 || !slices.Equal(cl.Tenancies, []int{1, 2, 3}) {
			t.Errorf("tenancy %d (current %d) of %v, want 3 of [1 2 3]", cl.Tenancy, cl.Current, cl.Tenancies)
		}
		got, _ = readLog(t, m, 1)
		if want := t0 + " BIOS\r\n" + t0 + " booting\r\n"; got != want {
			t.Errorf("first tenancy's log = %q, want %q", got, want)
		}
		got, _ = readLog(t, m, 2)
		if want := "2000-01-01T00:00:02.500Z tenant A\n"; got != want {
			t.Errorf("second tenancy's log = %q, want %q", got, want)
		}
		if _, err := m.ConsoleLog("n", 9); !errors.Is(err, ErrNotFound) {
			t.Errorf("a tenancy without a log: %v, want ErrNotFound", err)
		}

		var names []string
		nodeDir := filepath.Join(dir, "n")
		if fi, err := os.Stat(nodeDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("node directory: %v, %v; want mode 0700", fi.Mode(), err)
		}
		entries, _ := os.ReadDir(nodeDir)
		for _, e := range entries {
			names = append(names, e.Name())
			if fi, err := e.Info(); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v (%v), want 0600", e.Name(), fi.Mode(), err)
			}
		}
		if want := []string{"000001-000000.log", "000002-000000.log", "000003-000000.log"}; !slices.Equal(names, want) {
			t.Errorf("log files %v, want %v", names, want)
		}
		st := m.Stats().ConsoleLog
		if st.Bytes != int64(len("BIOS\r\nbooting\r\ntenant A\nbetween tenants\n")+4*(len(t0)+1)) || st.WriteErrors != 0 || st.DroppedBytes != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Files rotate before a line would take them past MaxBytes, a line longer
// than a file is split, and only Keep files stay; the log of the tenancy
// is the newest output, in order.
func TestConsoleLogRotation(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		m, d, _ := loggedManager(t, ConsoleLogConfig{Dir: dir, MaxBytes: 100, Keep: 3})
		s := <-d.opened
		for i := range 20 {
			emit(t, s, fmt.Sprintf("line %02d\n", i)) // 33 bytes stamped: 3 to a file
		}
		// Files hold 3 lines (99 bytes); the last, lines 18 and 19. A line
		// longer than a file is broken where the file ends: 74 bytes, the
		// stamp and an added newline fill one, the rest goes to the next.
		emit(t, s, strings.Repeat("x", 100)+"\n")

		entries, _ := os.ReadDir(filepath.Join(dir, "n"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			fi, _ := e.Info()
			if fi.Size() > 100 {
				t.Errorf("%s is %d bytes, more than MaxBytes", e.Name(), fi.Size())
			}
		}
		if want := []string{"000001-000006.log", "000001-000007.log", "000001-000008.log"}; !slices.Equal(names, want) {
			t.Errorf("files kept: %v, want %v", names, want)
		}
		got, cl := readLog(t, m, 0)
		want := ""
		for _, line := range []string{"line 18\n", "line 19\n", strings.Repeat("x", 74) + "\n", strings.Repeat("x", 26) + "\n"} {
			want += t0 + " " + line
		}
		if got != want {
			t.Errorf("log after rotations:\n%q\nwant\n%q", got, want)
		}
		if cl.Tenancy != 1 || len(cl.Tenancies) != 1 {
			t.Errorf("tenancies %v", cl.Tenancies)
		}
	})
}

// failingFS is the OS file system whose file writes can be made to fail
// (ENOSPC, as on a full disk) or to block (a stalled disk).
type failingFS struct {
	osFS
	fail  atomic.Bool
	block chan struct{} // when non-nil, writes wait for it to be closed
	mu    sync.Mutex
}

func (f *failingFS) OpenFile(name string, flag int, perm fs.FileMode) (logFile, error) {
	lf, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &failingFile{logFile: lf, fs: f}, nil
}

type failingFile struct {
	logFile
	fs *failingFS
}

func (f *failingFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	block := f.fs.block
	f.fs.mu.Unlock()
	if block != nil {
		<-block
	}
	if f.fs.fail.Load() {
		// A full disk takes part of a write, then refuses the rest.
		n, _ := f.logFile.Write(p[:len(p)/2])
		return n, &fs.PathError{Op: "write", Path: "console log", Err: syscall.ENOSPC}
	}
	return f.logFile.Write(p)
}

// A full disk costs log lines, counted and logged once, never console
// output to viewers; when the disk has room again the log goes on with a
// fresh line.
func TestConsoleLogDiskFull(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ffs := &failingFS{}
		m, d, logs := loggedManager(t, ConsoleLogConfig{fs: ffs})
		s := <-d.opened
		a := mustAccess(t, m, "n", mustToken(t, m, "n"))
		v, err := a.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		emit(t, s, "before\n")
		ffs.fail.Store(true)
		emit(t, s, "lost one\n")
		emit(t, s, "lost two\n")
		ffs.fail.Store(false)
		emit(t, s, "after\n")

		got := make([]byte, len("before\nlost one\nlost two\nafter\n"))
		if _, err := io.ReadFull(v, got); err != nil || string(got) != "before\nlost one\nlost two\nafter\n" {
			t.Fatalf("the viewer read %q (%v): the disk must not cost viewers anything", got, err)
		}
		st := m.Stats().ConsoleLog
		if st.WriteErrors != 2 || st.DroppedBytes == 0 {
			t.Errorf("stats %+v, want 2 write errors and bytes dropped", st)
		}
		text, _ := readLog(t, m, 0)
		if !strings.HasPrefix(text, t0+" before\n") || !strings.HasSuffix(text, "\n"+t0+" after\n") || strings.Contains(text, "lost two") {
			t.Errorf("log after the disk filled and emptied:\n%q", text)
		}
		out := logs.String()
		if n := strings.Count(out, "console log write failed"); n != 1 {
			t.Errorf("the failure was logged %d times, want once per run of failures:\n%s", n, out)
		}
		if !strings.Contains(out, "no space left on device") || !strings.Contains(out, "console log writes work again") {
			t.Errorf("the log does not say what failed and that it recovered:\n%s", out)
		}
	})
}

// A stalled disk never stalls the console: the queue drops what does not
// fit, counts it, and the file marks the gap once the disk moves again.
func TestConsoleLogStalledDisk(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ffs := &failingFS{block: make(chan struct{})}
		m, d, _ := loggedManager(t, ConsoleLogConfig{fs: ffs, QueueBytes: 1024})
		s := <-d.opened
		a := mustAccess(t, m, "n", mustToken(t, m, "n"))
		v, err := a.OpenConsole(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		chunk := strings.Repeat("y", 99) + "\n"
		var viewed int
		for range 50 { // 5000 bytes against a 1024-byte queue
			emit(t, s, chunk)
			n, err := v.Read(make([]byte, 4096))
			if err != nil {
				t.Fatal(err)
			}
			viewed += n
		}
		if viewed != 5000 {
			t.Fatalf("the viewer read %d bytes of 5000 while the disk stalled", viewed)
		}
		if st := m.Stats().ConsoleLog; st.DroppedBytes < 5000-1024-100 {
			t.Errorf("stats %+v: want the bytes past the queue counted as dropped", st)
		}
		ffs.mu.Lock()
		close(ffs.block)
		ffs.block = nil
		ffs.mu.Unlock()
		emit(t, s, "recovered\n")
		text, _ := readLog(t, m, 0)
		if !regexp.MustCompile(`\n` + regexp.QuoteMeta(t0) + ` \[obmd: \d+ bytes of console output not logged: the log writer fell behind\]\n` +
			regexp.QuoteMeta(t0) + ` recovered\n$`).MatchString(text) {
			t.Errorf("no gap marker before the output that came after the stall:\n%s", text)
		}
	})
}

// A kept-open console opens with nobody watching, is retried after a
// failed open, and is reopened after its stream ends, all without a
// viewer; a viewer arriving during an idle backoff cuts it short.
func TestConsoleKeptOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		d.openErrs = []error{BMCError("activate SOL", errScripted), nil, BMCError("activate SOL", errScripted), BMCError("activate SOL", errScripted)}
		h, stats := newTestHub(HubConfig{KeepOpen: true}, d)
		defer h.close(context.Background(), ErrShuttingDown)
		start := time.Now()
		h.keepOpen()
		s := <-d.opened // the second open, after backoffMin
		if took := time.Since(start); took != backoffMin {
			t.Errorf("first retry after %v, want %v", took, backoffMin)
		}
		s.w.Close() // the BMC dropped SOL: reopened with nobody watching
		// Two failed reopens: the idle backoff grows past backoffMax.
		synctest.Wait()
		time.Sleep(backoffMin + 2*backoffMin + 4*backoffMin/2)
		synctest.Wait()
		lostAt := time.Now()
		v := attach(t, h, 0) // pokes the waiting reopen
		s2 := <-d.opened
		if took := time.Since(lostAt); took > 0 {
			t.Errorf("a viewer waited %v for the reopen, want at once", took)
		}
		go s2.w.Write([]byte("back\n"))
		got := make([]byte, 64)
		n, err := v.Read(got)
		if err != nil || !strings.Contains(string(got[:n]), "console reconnected after") {
			t.Errorf("viewer read %q (%v), want the reconnect marker", got[:n], err)
		}
		if stats.lost.Load() != 1 || stats.reconnects.Load() != 1 {
			t.Errorf("lost %d, reconnects %d; want 1, 1", stats.lost.Load(), stats.reconnects.Load())
		}
	})
}

// After a restart the log goes on in the same tenancy's file (tokens
// persist), on a line of its own even if the last one was cut short.
func TestConsoleLogAfterRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		m, d, _ := loggedManager(t, ConsoleLogConfig{Dir: dir})
		emit(t, <-d.opened, "cut sho")
		m.Close(context.Background())

		m, d, _ = loggedManager(t, ConsoleLogConfig{Dir: dir})
		emit(t, <-d.opened, "rt\n")
		got, cl := readLog(t, m, 0)
		if want := t0 + " cut sho\n" + t0 + " rt\n"; got != want || cl.Tenancy != 1 {
			t.Errorf("log after a restart (tenancy %d) = %q, want %q in tenancy 1", cl.Tenancy, got, want)
		}
	})
}

func TestNodeDirName(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, id := range []string{"n1", ".", "..", ".hidden", "a b", "a%20b", "ü", "x\\y"} {
		name := nodeDirName(id)
		if name == "." || name == ".." || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
			t.Errorf("nodeDirName(%q) = %q: not one safe path element", id, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("nodeDirName(%q) = nodeDirName(%q) = %q", id, other, name)
		}
		seen[name] = id
	}
}
