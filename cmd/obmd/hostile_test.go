package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 9, defect 2: unauthenticated clients that connect and send
// nothing, send half a request, or declare a body they never send must not
// exhaust obmd's descriptors or hold its shutdown up.

// stuckKinds are the ways an attacker holds a connection.
var stuckKinds = []string{
	"", // connects and sends nothing
	"GET /node/x/power_status HTTP/1.1\r\nHost: a\r\n",                                                  // half a request
	"PUT /node/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", // a body that never comes
}

// attacker keeps n stuck connections open against addr, reopening each
// one obmd closes, until stop; it records how long each one lived.
type attacker struct {
	addr string
	mu   sync.Mutex
	open map[net.Conn]time.Time
	// lives are the lifetimes of the connections obmd closed.
	lives   []time.Duration
	dialErr int
	wg      sync.WaitGroup
}

func startAttack(ctx context.Context, addr string, n int) *attacker {
	a := &attacker{addr: addr, open: make(map[net.Conn]time.Time)}
	for i := range n {
		a.wg.Go(func() {
			for ctx.Err() == nil {
				a.hold(ctx, stuckKinds[i%len(stuckKinds)])
			}
		})
	}
	return a
}

// hold opens one connection, sends what kind says, and waits until obmd
// closes it or ctx ends.
func (a *attacker) hold(ctx context.Context, kind string) {
	// The attacker is another host: 127.0.0.2 (all of 127/8 is this
	// machine's loopback), while the tenant calls from 127.0.0.1.
	dialer := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c, err := dialer.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		a.mu.Lock()
		a.dialErr++
		a.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		return
	}
	opened := time.Now()
	a.mu.Lock()
	a.open[c] = opened
	a.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if kind != "" {
		c.Write([]byte(kind))
	}
	io.Copy(io.Discard, c) // until obmd closes it (or ctx does)
	a.mu.Lock()
	delete(a.open, c)
	if ctx.Err() == nil {
		a.lives = append(a.lives, time.Since(opened))
	}
	a.mu.Unlock()
}

// oldest is the age of the oldest connection still open.
func (a *attacker) oldest() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var age time.Duration
	for _, t := range a.open {
		age = max(age, time.Since(t))
	}
	return age
}

func TestDaemonStuckClientsCannotStarveIt(t *testing.T) {
	t.Parallel()
	const nofile = 256
	d := startDaemonWith(t, baseEnv(":memory:"), nofile)
	if !strings.Contains(d.logs.String(), `"max_conns":128`) {
		t.Fatalf("obmd under a %d-descriptor limit does not bound its connections to 128:\n%s", nofile, d.logs)
	}
	d.expect("PUT", "/node/n", mockNode, true, 200)
	tok := d.token("n")
	addr := strings.TrimPrefix(d.url, "http://")

	ctx, stop := context.WithCancel(context.Background())
	atk := startAttack(ctx, addr, 300) // more than the descriptors obmd has
	defer func() { stop(); atk.wg.Wait() }()

	// Throughout the attack, authenticated calls on fresh connections keep
	// answering within 1 s.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var slowest time.Duration
	calls := 0
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); calls++ {
		start := time.Now()
		resp, err := client.Get(d.url + "/node/n/power_status?token=" + tok)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("power_status during the attack, call %d: %v after %v\n%s", calls, err, took, tail(d.logs.String()))
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("power_status during the attack: %d %s", resp.StatusCode, body)
		}
		slowest = max(slowest, took)
		if took > time.Second {
			t.Errorf("power_status call %d took %v during the attack (bound 1s)", calls, took)
		}
		time.Sleep(50 * time.Millisecond) // pacing the probe, not synchronisation
	}
	// The admin API answers too, and obmd is alive.
	d.expect("GET", "/node", "", true, 200)
	if age := atk.oldest(); age > 15*time.Second {
		t.Errorf("an unauthenticated connection has stayed open for %v (bound 15s)", age)
	}
	atk.mu.Lock()
	var longest time.Duration
	for _, l := range atk.lives {
		longest = max(longest, l)
	}
	closed := len(atk.lives)
	atk.mu.Unlock()
	if longest > 15*time.Second {
		t.Errorf("obmd closed an unauthenticated connection only after %v (bound 15s)", longest)
	}
	t.Logf("%d authenticated calls, slowest %v; obmd closed %d attack connections, the longest-lived after %v", calls, slowest, closed, longest)
	stop()
	atk.wg.Wait()
}

// TestDaemonStuckClientDoesNotDelayShutdown: a connection stuck sending a
// body it declared does not hold SIGTERM up for the shutdown grace.
func TestDaemonStuckClientDoesNotDelayShutdown(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, baseEnv(":memory:"))
	d.expect("PUT", "/node/n", mockNode, true, 200)
	addr := strings.TrimPrefix(d.url, "http://")
	var conns []net.Conn
	for _, kind := range stuckKinds {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(kind))
		conns = append(conns, c)
	}
	// The refused request with a body is answered and its connection closed
	// at once, not drained.
	c := conns[2]
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 401") {
		t.Fatalf("a refused request with an unsent body: read %q, %v; want a 401 and the connection closed", got, err)
	}
	start := time.Now()
	d.stop(syscall.SIGTERM, 4*time.Second)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("SIGTERM with stuck clients took %v", took)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// TestDaemonClosesStuckConnections: below the connection bound, nothing
// evicts them, and obmd still closes every stuck unauthenticated
// connection within seconds (bound: 15 s).
func TestDaemonClosesStuckConnections(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, baseEnv(":memory:"))
	addr := strings.TrimPrefix(d.url, "http://")
	var wg sync.WaitGroup
	lives := make(chan time.Duration, 3*len(stuckKinds))
	for i := range cap(lives) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		opened := time.Now()
		c.Write([]byte(stuckKinds[i%len(stuckKinds)]))
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if err != nil {
				t.Errorf("stuck connection %d: %v (still open after 20s?)", i, err)
			}
			lives <- time.Since(opened)
		})
	}
	wg.Wait()
	close(lives)
	var longest time.Duration
	for l := range lives {
		longest = max(longest, l)
	}
	if longest > 15*time.Second {
		t.Errorf("a stuck unauthenticated connection lived %v (bound 15s)", longest)
	}
	t.Logf("the longest-lived stuck connection was closed after %v", longest)
}

// TestDaemonDatabaseIsPrivate: the database holds BMC passwords. With a
// DB_PATH created world-readable beforehand, obmd makes it private and
// creates every file 0600 (issue 9, defect 6).
func TestDaemonDatabaseIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	d := startDaemon(t, baseEnv(dir))
	d.expect("PUT", "/node/n", `{"type":"ipmi","info":{"addr":"127.0.0.1:1","user":"u","pass":"bmc-pass-Xy7"}}`, true, 200)
	d.token("n")
	d.stop(syscall.SIGTERM, 10*time.Second)
	var files int
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: other users can read it", p, info.Mode().Perm())
		}
		if !e.IsDir() {
			files++
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walking %s: %v (%d files)", dir, err, files)
	}
}

// TestDaemonBadDBPath: a DB_PATH obmd cannot use stops it with one line
// naming DB_PATH, and exit status 2.
func TestDaemonBadDBPath(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, filepath.Join(file, "db")} {
		cmd := exec.Command(obmdBin)
		cmd.Env = []string{"LISTEN_ADDR=127.0.0.1:0", "ADMIN_TOKEN=" + goodToken, "DB_PATH=" + path}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "obmd: DB_PATH "+path) {
			t.Errorf("DB_PATH %s: exit %v, stderr:\n%s\nwant status 2 and one line naming DB_PATH", path, err, &stderr)
		}
	}
}
