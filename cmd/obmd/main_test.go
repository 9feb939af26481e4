package main

// Subprocess tests: TestMain builds the obmd binary once; each test runs it
// with a configuration in its environment, on 127.0.0.1 port 0 (obmd logs
// the address it got), and talks to it over real HTTP.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"obmd/internal/syncbuf"
)

var obmdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "obmd-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	obmdBin = filepath.Join(dir, "obmd")
	// Stamped as make build stamps it (TestVersion checks both).
	build := exec.Command("go", "build", "-ldflags", "-X "+versionVar+"="+testVersion, "-o", obmdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building obmd for the subprocess tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running obmd process.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	logs   *syncbuf.Buffer
	exited chan struct{}
	err    error // Wait's result, after exited is closed
	client *http.Client
}

// startDaemon runs obmd with exactly env (plus LOG_FORMAT=json) and waits
// for its "listening" line.
func startDaemon(t *testing.T, env map[string]string) *daemon {
	t.Helper()
	return startDaemonWith(t, env, 0)
}

// startDaemonWith is startDaemon with the process's descriptor limit set
// to nofile (0: inherited).
func startDaemonWith(t *testing.T, env map[string]string, nofile int) *daemon {
	t.Helper()
	d := &daemon{t: t, logs: &syncbuf.Buffer{}, exited: make(chan struct{}), client: &http.Client{Timeout: 10 * time.Second}}
	d.cmd = exec.Command(obmdBin)
	if nofile > 0 {
		d.cmd = exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0"`, nofile), obmdBin)
	}
	d.cmd.Env = []string{"LOG_FORMAT=json"}
	for k, v := range env {
		d.cmd.Env = append(d.cmd.Env, k+"="+v)
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(d.logs, line)
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
				TLS  bool   `json:"tls"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				scheme := "http"
				if rec.TLS {
					scheme = "https"
				}
				listening <- scheme + "://" + rec.Addr
			}
		}
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	select {
	case d.url = <-listening:
	case <-d.exited:
		t.Fatalf("obmd exited before listening (%v):\n%s", d.err, d.logs)
	case <-time.After(20 * time.Second):
		t.Fatalf("obmd did not report listening within 20s:\n%s", d.logs)
	}
	return d
}

// stop signals the daemon and waits for it to exit, failing after limit.
func (d *daemon) stop(sig syscall.Signal, limit time.Duration) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(limit):
		d.t.Fatalf("obmd still running %v after %v:\n%s", limit, sig, d.logs)
	}
}

func (d *daemon) do(method, path, body string, admin bool) (int, []byte) {
	d.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, d.url+path, rd)
	if err != nil {
		d.t.Fatal(err)
	}
	if admin {
		req.SetBasicAuth("admin", goodToken)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *daemon) expect(method, path, body string, admin bool, want int) []byte {
	d.t.Helper()
	got, b := d.do(method, path, body, admin)
	if got != want {
		d.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, want)
	}
	return b
}

func (d *daemon) token(node string) string {
	d.t.Helper()
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(d.expect("POST", "/node/"+node+"/token", "", true, 200), &tr); err != nil {
		d.t.Fatal(err)
	}
	return tr.Token
}

func baseEnv(dbPath string) map[string]string {
	return map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": goodToken, "DB_PATH": dbPath}
}

const mockNode = `{"type": "mock", "info": {"addr": "10.0.0.4", "NumWrites": 0}}`

// TestDaemonHILFlow runs HIL's integration flow against the real binary,
// then shuts it down with SIGTERM while a console is streaming.
func TestDaemonHILFlow(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, baseEnv(":memory:"))
	d.expect("GET", "/healthz", "", false, 200)
	d.expect("PUT", "/node/node-99", mockNode, true, 200)
	d.expect("PUT", "/node/node-99", mockNode, true, 409)
	tok := d.token("node-99")
	q := "?token=" + tok
	d.expect("POST", "/node/node-99/power_off"+q, "", false, 200)
	d.expect("PUT", "/node/node-99/boot_device"+q, `{"bootdev": "A"}`, false, 200)
	d.expect("PUT", "/node/node-99/boot_device"+q, `{"bootdev": "pxe"}`, false, 400)
	d.expect("POST", "/node/node-99/power_cycle"+q, `{"force": true}`, false, 200)
	d.expect("POST", "/node/node-99/power_cycle"+q, `{"force": false}`, false, 200)
	if b := d.expect("GET", "/node/node-99/power_status"+q, "", false, 200); string(b) != `{"power_status":"Mock Status"}` {
		t.Errorf("power_status: %s", b)
	}
	d.expect("GET", "/node/node-99/power_status?token=ffffffffffffffffffffffffffffffff", "", false, 401)
	d.expect("GET", "/node/nobody/power_status"+q, "", false, 401)

	resp, err := http.Get(d.url + "/node/node-99/console" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/octet-stream" {
		t.Fatalf("console: %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for i := range 50 {
		if !sc.Scan() || sc.Text() != strconv.Itoa(i) {
			t.Fatalf("console line %d = %q (%v)", i, sc.Text(), sc.Err())
		}
	}

	// Graceful shutdown ends the console stream and exits 0 within 5 s.
	start := time.Now()
	d.stop(syscall.SIGTERM, 6*time.Second)
	if d.err != nil {
		t.Fatalf("obmd exited with %v after SIGTERM:\n%s", d.err, d.logs)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("console stream after shutdown: %v", err)
	}
	logs := d.logs.String()
	for _, secret := range []string{tok, goodToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret:\n%s", logs)
		}
	}
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in the logs:\n%s", logs)
	}
}

// TestDaemonSurvivesKill: acknowledged writes survive SIGKILL.
func TestDaemonSurvivesKill(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db")
	d := startDaemon(t, baseEnv(dir))
	for _, n := range []string{"n1", "n2", "n3"} {
		d.expect("PUT", "/node/"+n, mockNode, true, 200)
	}
	t1 := d.token("n1")
	d.token("n2")
	t3 := d.token("n3")
	d.expect("DELETE", "/node/n3/token", "", true, 200)
	d.expect("DELETE", "/node/n2", "", true, 200)
	d.stop(syscall.SIGKILL, 5*time.Second)

	d = startDaemon(t, baseEnv(dir))
	if b := d.expect("GET", "/node/n1/power_status?token="+t1, "", false, 200); !bytes.Contains(b, []byte("Mock Status")) {
		t.Errorf("n1 after restart: %s", b)
	}
	d.expect("GET", "/node/n3/power_status?token="+t3, "", false, 401) // revoked stays revoked
	d.expect("DELETE", "/node/n2", "", true, 404)                      // deleted stays deleted
	d.expect("PUT", "/node/n1", mockNode, true, 409)
	d.token("n3")
	d.stop(syscall.SIGTERM, 6*time.Second)

	// No plaintext token anywhere in the database files.
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, tok := range []string{t1, t3} {
			if bytes.Contains(b, []byte(tok)) {
				t.Errorf("%s contains a plaintext token", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDaemonConfigErrors: a bad configuration stops obmd with exit status
// 2 and one line per problem naming the variable.
func TestDaemonConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"bad admin token", map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": "secret", "DB_PATH": ":memory:"},
			[]string{"obmd: ADMIN_TOKEN must be 32 hex digits (128 bits); generate one with obmd -gen-token"}},
		{"postgres", map[string]string{"LISTEN_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": goodToken, "DB_PATH": ":memory:", "DB_TYPE": "postgres"},
			[]string{"obmd: DB_TYPE \"postgres\" is not supported"}},
		{"plaintext off loopback", map[string]string{"LISTEN_ADDR": "0.0.0.0:0", "ADMIN_TOKEN": goodToken, "DB_PATH": ":memory:"},
			[]string{"obmd: LISTEN_ADDR \"0.0.0.0:0\" is not a loopback address"}},
		{"nothing set", map[string]string{},
			[]string{"obmd: LISTEN_ADDR is not set", "obmd: ADMIN_TOKEN is not set", "obmd: DB_PATH is not set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(obmdBin)
			cmd.Env = []string{}
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("obmd exited with %v, want status 2; stderr:\n%s", err, &stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), &stderr)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %q does not start with %q", lines[i], w)
				}
			}
		})
	}
}

func TestDaemonPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(obmdBin)
	cmd.Env = []string{"LISTEN_ADDR=" + ln.Addr().String(), "ADMIN_TOKEN=" + goodToken, "DB_PATH=:memory:"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("obmd on a busy port exited with %v, want status 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "obmd: cannot listen on LISTEN_ADDR "+ln.Addr().String()) {
		t.Errorf("output does not say the port is taken:\n%s", out)
	}
}

// TestDaemonTLS serves HTTPS with a throwaway self-signed certificate.
func TestDaemonTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPEM, keyPEM := selfSignedCert(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(":memory:")
	env["TLS_CERT"], env["TLS_KEY"] = certFile, keyFile
	d := startDaemon(t, env)
	if !strings.HasPrefix(d.url, "https://") {
		t.Fatalf("obmd reports %s, want https", d.url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	d.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	d.expect("GET", "/healthz", "", false, 200)
	d.expect("GET", "/metrics", "", true, 200)
	d.stop(syscall.SIGTERM, 6*time.Second)
}

func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	return certWithSerial(t, 1, time.Now().Add(time.Hour))
}

// certWithSerial makes a self-signed certificate for 127.0.0.1 with serial,
// valid until notAfter, and its key, both PEM.
func certWithSerial(t *testing.T, serial int64, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "obmd test " + strconv.FormatInt(serial, 10)},
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              notAfter,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
