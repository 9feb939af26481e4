package main

// Tests of what makes obmd a service operators can run: logs, version,
// SIGHUP, the metrics listener.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	log := newLogger(&b, "json", slog.LevelWarn)
	log.Info("hidden")
	log.Warn("shown", "took", 1200*time.Millisecond, slog.Group("g", "gap", 3*time.Second))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("at level warn, %d lines logged:\n%s", len(lines), b.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["took"] != "1.2s" || rec["g"].(map[string]any)["gap"] != "3s" {
		t.Errorf("durations in JSON: %s", lines[0])
	}
	b.Reset()
	newLogger(&b, "text", slog.LevelDebug).Debug("visible", "took", time.Second)
	if !strings.Contains(b.String(), "level=DEBUG msg=visible took=1s") {
		t.Errorf("text at level debug: %q", b.String())
	}
}

// A failure while running is one log line in the log's format, not a JSON
// line and a plain-text copy.
func TestRuntimeErrorLoggedOnce(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	env := with(goodEnv(), map[string]string{"LOG_FORMAT": "json"})
	rc := runWith(nil, envOf(env), io.Discard, &stderr, func(context.Context, config, *slog.Logger, <-chan os.Signal) error {
		return errors.New("HTTP server failed: accept: too many open files")
	})
	if rc != 1 {
		t.Errorf("exit status %d, want 1", rc)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[0], "too many open files") {
		t.Errorf("stderr is not one JSON line naming the error:\n%s", stderr.String())
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	// obmd -version and the startup line tell the same story.
	out, err := exec.Command(obmdBin, "-version").Output()
	if err != nil {
		t.Fatalf("obmd -version: %v", err)
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasPrefix(line, "obmd ") || !strings.HasSuffix(line, runtime.Version()+")") || strings.Count(line, "\n") != 0 {
		t.Errorf("obmd -version printed %q", line)
	}
	d := startDaemon(t, baseEnv(":memory:"))
	var rec struct {
		Version   string `json:"version"`
		Revision  string `json:"revision"`
		GoVersion string `json:"go_version"`
	}
	d.logRecord(t, "listening", &rec)
	if rec.Version == "" || !strings.Contains(line, "obmd "+rec.Version+" ") || rec.GoVersion != runtime.Version() {
		t.Errorf("startup line says version %q, go %q; -version says %q", rec.Version, rec.GoVersion, line)
	}
	if rec.Revision != "" && !strings.Contains(line, "revision "+rec.Revision) {
		t.Errorf("startup line says revision %q; -version says %q", rec.Revision, line)
	}

	// TestMain stamps the binary as make build does.
	if !strings.HasPrefix(line, "obmd "+testVersion+" (revision ") {
		t.Errorf("obmd -version printed %q, want the stamped version %s", line, testVersion)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "-X "+versionVar+"=$(VERSION)") {
		t.Errorf("make build does not stamp %s", versionVar)
	}
}

// The version stamp: the variable make build sets, and the version
// TestMain gives the binary under test.
const (
	versionVar  = "obmd/internal/buildinfo.version"
	testVersion = "v9.8.7-test"
)

// logRecord decodes the first log line with msg into v.
func (d *daemon) logRecord(t *testing.T, msg string, v any) {
	t.Helper()
	for _, line := range strings.Split(d.logs.String(), "\n") {
		var head struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &head) != nil || head.Msg != msg {
			continue
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no %q line in the log:\n%s", msg, d.logs)
}

// awaitLog waits until a log line contains want (the daemon reports its
// reaction to a signal only in its log).
func (d *daemon) awaitLog(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(d.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v:\n%s", want, within, d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDaemonLogLevelAndDurations(t *testing.T) {
	t.Parallel()
	env := baseEnv(":memory:")
	env["LOG_LEVEL"] = "debug"
	d := startDaemon(t, env)
	logs := d.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Errorf("LOG_LEVEL=debug shows no debug line:\n%s", logs)
	}
	if !strings.Contains(logs, `"op_timeout":"10s"`) {
		t.Errorf("the startup line does not give op_timeout as a duration string:\n%s", logs)
	}
	d.expect("GET", "/readyz", "", false, 200)
	d.stop(syscall.SIGTERM, 6*time.Second)
	// Probes show at debug level only, and every line is one JSON object.
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON line: %q", line)
		}
		if strings.Contains(line, `"path":"/readyz"`) && !strings.Contains(line, `"level":"DEBUG"`) {
			t.Errorf("a probe logged above debug: %s", line)
		}
	}
}

// SIGHUP without TLS is logged and ignored: obmd keeps serving.
func TestDaemonSIGHUPWithoutTLS(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, baseEnv(":memory:"))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.awaitLog(t, "SIGHUP ignored", 10*time.Second)
	d.expect("GET", "/livez", "", false, 200)
	select {
	case <-d.exited:
		t.Fatalf("obmd exited after SIGHUP:\n%s", d.logs)
	default:
	}
}

// writeCert writes a fresh certificate with serial to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile string, serial int64, notAfter time.Time) []byte {
	t.Helper()
	certPEM, keyPEM := certWithSerial(t, serial, notAfter)
	// Rename into place, as certbot and friends do, so obmd never reads a
	// half-written file.
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	return certPEM
}

// servedSerial opens a new TLS connection (no reuse) and returns the
// serial number of the certificate obmd presents.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// SIGHUP re-reads TLS_CERT/TLS_KEY: a new connection sees the new
// certificate while a console stream opened before keeps streaming; a bad
// or expired new certificate is refused and the last good one stays.
func TestDaemonSIGHUPReloadsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1, time.Now().Add(time.Hour))
	env := baseEnv(":memory:")
	env["TLS_CERT"], env["TLS_KEY"] = certFile, keyFile
	d := startDaemon(t, env)
	addr := strings.TrimPrefix(d.url, "https://")
	d.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	if s := servedSerial(t, addr); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}

	d.expect("PUT", "/node/n", mockNode, true, 200)
	tok := d.token("n")
	streamClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := streamClient.Get(d.url + "/node/n/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Fatalf("console: %d over serial %v", resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber)
	}
	lines := bufio.NewScanner(resp.Body)
	next := 0
	readLines := func(n int) {
		t.Helper()
		for range n {
			if !lines.Scan() || lines.Text() != strconv.Itoa(next) {
				t.Fatalf("console line %d = %q (%v)", next, lines.Text(), lines.Err())
			}
			next++
		}
	}
	readLines(20)

	writeCert(t, certFile, keyFile, 2, time.Now().Add(time.Hour))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.awaitLog(t, "TLS certificate reloaded", 10*time.Second)
	if s := servedSerial(t, addr); s != 2 {
		t.Fatalf("after SIGHUP a new connection sees serial %d, want 2", s)
	}
	readLines(20) // the stream opened under serial 1 is still up

	// A broken pair and an expired certificate are refused; serial 2 stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.awaitLog(t, "TLS certificate not reloaded", 10*time.Second)
	writeCert(t, certFile, keyFile, 3, time.Now().Add(-time.Hour))
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.awaitLog(t, "expired at", 10*time.Second)
	if s := servedSerial(t, addr); s != 2 {
		t.Fatalf("after bad reloads a new connection sees serial %d, want 2 (the last good one)", s)
	}
	readLines(20)
	d.expect("GET", "/readyz", "", false, 200)
	d.stop(syscall.SIGTERM, 6*time.Second)
	if d.err != nil {
		t.Fatalf("obmd exited with %v:\n%s", d.err, d.logs)
	}
}

// METRICS_ADDR serves /metrics without authentication on its own
// listener, and nothing else there; the main listener still wants a
// credential.
func TestDaemonMetricsAddr(t *testing.T) {
	t.Parallel()
	env := baseEnv(":memory:")
	env["METRICS_ADDR"] = ":0"
	env["METRICS_TOKEN"] = otherToken
	d := startDaemon(t, env)
	var rec struct {
		MetricsAddr string `json:"metrics_addr"`
	}
	d.logRecord(t, "listening", &rec)
	host, _, err := net.SplitHostPort(rec.MetricsAddr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("metrics listener on %q, want 127.0.0.1 for a bare :port", rec.MetricsAddr)
	}
	get := func(url string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + rec.MetricsAddr + "/metrics"); code != 200 || !strings.Contains(body, "obmd_nodes 0") {
		t.Errorf("METRICS_ADDR /metrics: %d\n%.300s", code, body)
	}
	if code, _ := get("http://" + rec.MetricsAddr + "/node"); code != 404 {
		t.Errorf("METRICS_ADDR /node: %d, want 404 (only /metrics is served there)", code)
	}
	if code, _ := get(d.url + "/metrics"); code != 401 {
		t.Errorf("LISTEN_ADDR /metrics without a credential: %d, want 401", code)
	}
	if code, _ := get(d.url+"/metrics", "Authorization", "Bearer "+otherToken); code != 200 {
		t.Errorf("LISTEN_ADDR /metrics with METRICS_TOKEN: %d, want 200", code)
	}
}

// CONSOLE_LOG_DIR: the real daemon logs a console nobody watches, in
// private files (an existing directory others could read is made
// private), and the admin reads it back.
func TestDaemonConsoleLog(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "console")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the test's umask
	env := baseEnv(":memory:")
	env["CONSOLE_LOG_DIR"] = dir
	d := startDaemon(t, env)
	if !strings.Contains(d.logs.String(), "CONSOLE_LOG_DIR was readable by other users") {
		t.Errorf("no warning about the readable CONSOLE_LOG_DIR:\n%s", d.logs)
	}
	d.expect("PUT", "/node/n", mockNode, true, 200)
	tok := d.token("n")
	resp, err := d.client.Get(d.url + "/node/n/console?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for range 3 {
		sc.Scan()
	}
	resp.Body.Close()
	body := string(d.expect("GET", "/node/n/console_log", "", true, 200))
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) < 3 {
		t.Fatalf("console log holds %d lines after a viewer read 3:\n%s", len(lines), body)
	}
	for _, l := range lines {
		stamp, _, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, stamp); err != nil {
			t.Fatalf("line %q does not start with an RFC 3339 time: %v", l, err)
		}
	}
	d.stop(syscall.SIGTERM, 6*time.Second)
	for _, p := range []string{dir, filepath.Join(dir, "n"), filepath.Join(dir, "n", "000002-000000.log")} {
		fi, err := os.Stat(p)
		want := os.FileMode(0o600)
		if fi != nil && fi.IsDir() {
			want = 0o700
		}
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v (%v), want mode %v", p, fi.Mode(), err, want)
		}
	}
}
