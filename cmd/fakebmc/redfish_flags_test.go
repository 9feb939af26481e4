package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBadRedfishFlagsExitTwoWithOneLine(t *testing.T) {
	checkBadFlags(t, []badFlagCase{
		{"cert without redfish", []string{"-redfish-cert", "/tmp/x.pem"}, "-redfish-cert needs -redfish"},
		{"quirks without redfish", []string{"-redfish-quirks", "task-202"}, "-redfish-quirks needs -redfish"},
		{"unknown quirk", []string{"-redfish", "-redfish-quirks", "task-202,flaky"}, `-redfish-quirks: unknown Redfish quirk "flaky" (known: `},
		{"contradictory quirks", []string{"-redfish", "-redfish-quirks", "sessions-only,no-sessions"}, "leave no way to authenticate"},
		{"empty cert file", []string{"-redfish", "-redfish-cert", ""}, "-redfish-cert needs a file name"},
	})
}

func TestHelpDocumentsRedfish(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"-h"}, noEnv, &stderr); code != 0 {
		t.Fatalf("-h exit code %d", code)
	}
	for _, want := range []string{"-redfish-cert FILE", "-redfish-quirks LIST", "etag-required", "no-continuous", "no-powercycle", "sessions-only", "task-202", "slow-poweron"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestRedfishCertUnwritableExitsOne(t *testing.T) {
	var stderr syncBuffer
	code := run(t.Context(), []string{"-addr", "127.0.0.1:0", "-redfish", "-redfish-cert", filepath.Join(t.TempDir(), "no", "such", "dir.pem")}, noEnv, &stderr)
	if code != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "-redfish-cert") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestServesRedfish: -redfish serves HTTPS on each BMC's port number, with
// the certificate -redfish-cert wrote, and -redfish-quirks in effect.
func TestServesRedfish(t *testing.T) {
	base := freePortRun(t, 2)
	certFile := filepath.Join(t.TempDir(), "bmc.pem")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:" + strconv.Itoa(base), "-count", "2", "-redfish",
			"-redfish-cert", certFile, "-redfish-quirks", "sessions-only"}, noEnv, &stderr)
	}()
	stderr.waitFor(t, "BMC ready", 2, done)
	if !strings.Contains(stderr.String(), "redfish=https://127.0.0.1:"+strconv.Itoa(base+1)) || !strings.Contains(stderr.String(), "redfish_quirks=sessions-only") {
		t.Errorf("ready lines lack the Redfish URL or quirks:\n%s", stderr.String())
	}
	pemData, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("%s holds no certificate", certFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for i := range 2 {
		url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i))
		resp, err := client.Get(url + "/redfish/v1/")
		if err != nil {
			t.Fatalf("BMC %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("BMC %d service root: %d", i, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", url+"/redfish/v1/Systems", nil)
		req.SetBasicAuth("admin", "secret")
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("BMC %d: Basic answered %d under sessions-only, want 401", i, resp.StatusCode)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestRedfishPortInUse: a TCP port taken is named as such.
func TestRedfishPortInUse(t *testing.T) {
	base := freePortRun(t, 1)
	taken, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base))
	if err != nil {
		t.Skipf("TCP port %d not free: %v", base, err)
	}
	defer taken.Close()
	var stderr syncBuffer
	code := run(t.Context(), []string{"-addr", "127.0.0.1:" + strconv.Itoa(base), "-redfish"}, noEnv, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "TCP port 127.0.0.1:"+strconv.Itoa(base)+" is already in use") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
