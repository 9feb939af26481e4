// Package etcdproc runs real etcd servers (the Debian etcd-server package's
// etcd binary) on loopback for obmd's cluster tests, benchmarks and demo:
// one member or a cluster of several, each killable and restartable on its
// own ports and data directory, so a test can take etcd away from obmd and
// give it back.
//
// It is test and benchmark support: obmd itself never imports it. It
// depends on the standard library and internal/syncbuf alone. A caller
// that finds no etcd binary gets ErrNotInstalled, whose text names the
// package to install.
package etcdproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"obmd/internal/freeport"
	"obmd/internal/syncbuf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled means no etcd binary is on PATH.
var ErrNotInstalled = errors.New("etcd is not installed: apt-get install -y etcd-server")

// LookPath returns the etcd binary's path, or ErrNotInstalled.
func LookPath() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Options tunes the cluster. Zero values take the defaults noted.
type Options struct {
	// Members is the cluster size (default 1).
	Members int
	// Heartbeat and Election are etcd's --heartbeat-interval and
	// --election-timeout (default 100 ms and 1 s, etcd's own). A smaller
	// election timeout makes a cluster that lost its leader elect a new
	// one sooner; it also lowers etcd's minimum lease TTL, which is
	// 1.5 x Election rounded up to whole seconds.
	Heartbeat, Election time.Duration
}

// Cluster is a running etcd cluster on loopback.
type Cluster struct {
	bin     string
	dir     string
	opts    Options
	initial string // --initial-cluster
	token   string // --initial-cluster-token, unique
	Members []*Member
}

// Member is one etcd server of a Cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	PeerURL   string
	dataDir   string
	c         *Cluster

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	log    *syncbuf.Tail
}

// TempDir makes a directory for etcd's data: under /dev/shm when it is
// writable, because etcd fsyncs every write and a loaded CI disk can take
// longer over an fsync than the lease TTLs under test; else under the
// system's temporary directory. The caller removes it.
func TempDir(prefix string) (string, error) {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", prefix); err == nil {
			return d, nil
		}
	}
	return os.MkdirTemp("", prefix)
}

// Start starts a fresh cluster with its data under dir and returns once
// every member answers /health (the cluster has a leader) and is proven to
// be this cluster's, or fails with the members' logs.
//
// Tests of several packages run at once, each with its etcds: a port
// chosen free may be taken before etcd binds it, and an etcd of another
// package may then answer on it. Ports are therefore drawn at random
// below the kernel's ephemeral range (where nothing binds port 0), every
// cluster has unique member names, a member counts as up only when the
// server answering on its URL names it, and a start that loses such a race
// is tried again on other ports.
func Start(ctx context.Context, dir string, opts Options) (*Cluster, error) {
	var err error
	for range startAttempts {
		var c *Cluster
		if c, err = startOnce(ctx, dir, opts); err == nil {
			return c, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrNotInstalled) {
			break
		}
		// The next attempt's members have other names, so other data
		// directories under dir.
	}
	return nil, err
}

const startAttempts = 3

func startOnce(ctx context.Context, dir string, opts Options) (*Cluster, error) {
	bin, err := LookPath()
	if err != nil {
		return nil, err
	}
	if opts.Members <= 0 {
		opts.Members = 1
	}
	c := &Cluster{bin: bin, dir: dir, opts: opts}
	ports, err := freeport.TCP(2 * opts.Members)
	if err != nil {
		return nil, err
	}
	id := strconv.FormatUint(rand.Uint64()&0xffffffff, 36)
	var initial []string
	for i := range opts.Members {
		m := &Member{
			Name:      "etcd" + strconv.Itoa(i) + "-" + id,
			ClientURL: "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			PeerURL:   "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			c:         c,
		}
		m.dataDir = filepath.Join(dir, m.Name)
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	c.token = "obmd-test-" + id
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, m := range c.Members {
		if err := m.WaitHealthy(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Endpoints lists the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Leader returns the index of the member that leads the cluster, as the
// members' own /v3 JSON gateway tells it (maintenance status names the
// leader's ID and the answering member's).
func (c *Cluster) Leader() (int, error) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for i, m := range c.Members {
		resp, err := client.Post(m.ClientURL+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
		if err != nil {
			continue
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && st.Leader != "" && st.Leader == st.Header.MemberID {
			return i, nil
		}
	}
	return 0, errors.New("no etcd member says it is the leader")
}

// Close kills every member and waits for it to exit.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		m.Kill()
	}
}

func (m *Member) args() []string {
	a := []string{
		"--name", m.Name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", m.c.initial,
		"--initial-cluster-token", m.c.token,
		"--initial-cluster-state", "new",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	}
	if d := m.c.opts.Heartbeat; d > 0 {
		a = append(a, "--heartbeat-interval", strconv.FormatInt(d.Milliseconds(), 10))
	}
	if d := m.c.opts.Election; d > 0 {
		a = append(a, "--election-timeout", strconv.FormatInt(d.Milliseconds(), 10))
	}
	return a
}

// start runs the member's process (again, after Kill, on the same ports
// and data directory: --initial-cluster-state is ignored once the data
// directory holds a member).
func (m *Member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.c.bin, m.args()...)
	// etcd reads ETCD_* variables as flags: keep the caller's (obmd's own
	// ETCD_ENDPOINTS, say) away from it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	log := &syncbuf.Tail{Max: 32 << 10}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	m.cmd, m.exited, m.log = cmd, exited, log
	return nil
}

// WaitHealthy waits until the member answers /health with {"health":"true"}
// (it is serving and its cluster has a leader).
func (m *Member) WaitHealthy(ctx context.Context) error {
	m.mu.Lock()
	exited, log := m.exited, m.log
	m.mu.Unlock()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), `"health":"true"`) {
				switch err := m.isOurs(client); {
				case err == nil:
					return nil
				case errors.Is(err, errNotOurs):
					return fmt.Errorf("etcd %s: %w", m.Name, err)
				}
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("etcd %s exited before it was healthy: %s", m.Name, log.String())
		case <-ctx.Done():
			return fmt.Errorf("etcd %s not healthy: %w; its log: %s", m.Name, ctx.Err(), log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to exit. It is a no-op on
// a member that is not running.
func (m *Member) Kill() {
	m.signal(syscall.SIGKILL)
}

// Pause stops the member with SIGSTOP: its sockets stay open but nothing
// answers, as with a hung server or a black-holed network. It returns once
// the kernel reports the process stopped. Resume undoes it.
func (m *Member) Pause() error {
	if err := m.signalOnly(syscall.SIGSTOP); err != nil {
		return err
	}
	pid := m.PID()
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return nil // not Linux's /proc: the signal is all there is to go by
		}
		// The state is the field after the parenthesised command name.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd %s (pid %d) not stopped 5s after SIGSTOP: %s", m.Name, pid, b)
		}
		time.Sleep(time.Millisecond) // the kernel gives no event for a group stop
	}
}

// Resume continues a paused member (SIGCONT).
func (m *Member) Resume() error { return m.signalOnly(syscall.SIGCONT) }

func (m *Member) signalOnly(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("etcd %s is not running", m.Name)
	}
	return m.cmd.Process.Signal(sig)
}

func (m *Member) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process must run to die of SIGTERM
	_ = cmd.Process.Signal(sig)
	<-exited
	m.mu.Lock()
	if m.cmd == cmd {
		m.cmd = nil
	}
	m.mu.Unlock()
}

// errNotOurs: another etcd answers on the member's URL.
var errNotOurs = errors.New("another etcd answers on this member's URL")

// isOurs asks the server on the member's URL for its cluster's members
// (the /v3 JSON gateway) and checks that this member is one of them.
func (m *Member) isOurs(client *http.Client) error {
	resp, err := client.Post(m.ClientURL+"/v3/cluster/member/list", "application/json", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct {
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return err
	}
	for _, mem := range list.Members {
		if mem.Name == m.Name {
			return nil
		}
	}
	return errNotOurs
}

// Restart starts a killed member again on its ports and data directory and
// waits until it is healthy.
func (m *Member) Restart(ctx context.Context) error {
	m.Kill()
	if err := m.start(); err != nil {
		return err
	}
	return m.WaitHealthy(ctx)
}

// PID is the member's process id (0 when it is not running).
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Log returns the tail of the member's log.
func (m *Member) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log == nil {
		return ""
	}
	return m.log.String()
}
