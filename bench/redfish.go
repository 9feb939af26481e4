package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"obmd/fakebmc"
)

// RedfishPowerConfig sizes the Redfish power_status benchmark.
type RedfishPowerConfig struct {
	Obmd string // the obmd binary
	Curl string // the curl binary; empty: FindCurl
	// Requests is the number of obmd power_status requests measured, one
	// at a time (default 2,000).
	Requests int
	// CurlRequests is the number of curl login-query-logout sequences
	// measured, one at a time (default 30).
	CurlRequests int
}

// RedfishPowerResult compares GET /node/ID/power_status on a redfish node
// (obmd keeps the Redfish session and its TLS connection warm) with what a
// script without a daemon does per request: three curl processes, one to
// log in (POST to SessionService/Sessions), one to read the
// ComputerSystem's PowerState, one to log out (DELETE the session), against
// the same simulated BMC in the same run.
type RedfishPowerResult struct {
	Requests          int
	P50, P99          time.Duration
	ReqPerSec         float64 // one at a time
	CurlRequests      int
	CurlP50, CurlP99  time.Duration
	CurlPerSec        float64 // sequences per second, one at a time
	Ratio             float64 // ReqPerSec / CurlPerSec
	LatencyRatio      float64 // CurlP50 / P50
	LoginsWhileTimed  int     // BMC logins during obmd's timed requests (0: the session stayed warm)
	ObmdCPUPerRequest time.Duration
}

// FindCurl returns the curl binary, or an error saying how to install it.
func FindCurl() (string, error) {
	p, err := exec.LookPath("curl")
	if err != nil {
		return "", errors.New("curl is not installed (apt-get install curl): the Redfish baseline needs it")
	}
	return p, nil
}

// RegisterRedfish registers node id as a redfish node on the simulated
// BMC at baseURL, its certificate pinned with caPEM.
func (d *Daemon) RegisterRedfish(ctx context.Context, id, baseURL string, caPEM []byte) error {
	body := map[string]any{"type": "redfish", "info": map[string]any{
		"addr": baseURL, "user": benchUser, "pass": benchPassword, "ca_cert": string(caPEM),
	}}
	return d.call(ctx, http.MethodPut, "/node/"+url.PathEscape(id), true, body, nil)
}

// RedfishPower runs the Redfish power_status benchmark.
func RedfishPower(ctx context.Context, cfg RedfishPowerConfig) (RedfishPowerResult, error) {
	if cfg.Requests <= 0 {
		cfg.Requests = 2000
	}
	if cfg.CurlRequests <= 0 {
		cfg.CurlRequests = 30
	}
	if cfg.Curl == "" {
		p, err := FindCurl()
		if err != nil {
			return RedfishPowerResult{}, err
		}
		cfg.Curl = p
	}
	fleet, err := fakebmc.StartFleet(ctx, fakebmc.FleetConfig{
		Addr: "127.0.0.1:0",
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: benchUser, Password: []byte(benchPassword)}},
			StartOn: true,
			Redfish: &fakebmc.RedfishConfig{},
		},
	})
	if err != nil {
		return RedfishPowerResult{}, err
	}
	defer fleet.Close()
	bmc := fleet.BMC(0)
	dir, err := os.MkdirTemp("", "obmdbench-redfish-")
	if err != nil {
		return RedfishPowerResult{}, err
	}
	defer os.RemoveAll(dir)
	caFile := filepath.Join(dir, "bmc.pem")
	if err := os.WriteFile(caFile, fleet.RedfishCertPEM(), 0o644); err != nil {
		return RedfishPowerResult{}, err
	}

	d, err := StartDaemon(ctx, cfg.Obmd)
	if err != nil {
		return RedfishPowerResult{}, err
	}
	defer d.Stop()
	const id = "rf0"
	if err := d.RegisterRedfish(ctx, id, bmc.RedfishURL(), fleet.RedfishCertPEM()); err != nil {
		return RedfishPowerResult{}, err
	}
	tok, err := d.NewToken(ctx, id)
	if err != nil {
		return RedfishPowerResult{}, err
	}
	status := func(int) error {
		st, err := d.PowerStatus(ctx, id, tok)
		if err == nil && st != "on" {
			err = fmt.Errorf("power_status is %q; the simulated machine was started on", st)
		}
		return err
	}
	// Warm-up: the Redfish session, the BMC's TLS connection and the HTTP
	// connection to obmd open.
	if _, _, err := closedLoop(20, 1, status); err != nil {
		return RedfishPowerResult{}, fmt.Errorf("warm-up: %w", err)
	}
	r := RedfishPowerResult{Requests: cfg.Requests, CurlRequests: cfg.CurlRequests}
	logins := bmc.RedfishStats().Logins
	u0, err := d.Usage()
	if err != nil {
		return RedfishPowerResult{}, err
	}
	lat, elapsed, err := closedLoop(cfg.Requests, 1, status)
	if err != nil {
		return RedfishPowerResult{}, err
	}
	u1, err := d.Usage()
	if err != nil {
		return RedfishPowerResult{}, err
	}
	r.LoginsWhileTimed = bmc.RedfishStats().Logins - logins
	r.P50, r.P99 = Percentile(lat, 50), Percentile(lat, 99)
	r.ReqPerSec = float64(cfg.Requests) / elapsed.Seconds()
	r.ObmdCPUPerRequest = (u1.CPU - u0.CPU) / time.Duration(cfg.Requests)

	c := CurlRedfish{Path: cfg.Curl, BaseURL: bmc.RedfishURL(), CAFile: caFile, User: benchUser, Password: benchPassword, Dir: dir}
	lat, elapsed, err = closedLoop(cfg.CurlRequests, 1, func(int) error {
		st, err := c.PowerStatus(ctx)
		if err == nil && st != "On" {
			err = fmt.Errorf("curl read PowerState %q", st)
		}
		return err
	})
	if err != nil {
		return RedfishPowerResult{}, fmt.Errorf("baseline: %w", err)
	}
	r.CurlP50, r.CurlP99 = Percentile(lat, 50), Percentile(lat, 99)
	r.CurlPerSec = float64(cfg.CurlRequests) / elapsed.Seconds()
	r.Ratio = r.ReqPerSec / r.CurlPerSec
	r.LatencyRatio = float64(r.CurlP50) / float64(r.P50)
	if st := bmc.RedfishStats(); st.Sessions != 1 {
		return RedfishPowerResult{}, fmt.Errorf("baseline: %d sessions left open on the BMC, want only obmd's", st.Sessions)
	}
	return r, nil
}

// CurlRedfish reads a system's PowerState the way a script without a
// daemon does: curl logs in, reads, logs out, three processes. The
// password and the session token reach curl through a config file on its
// standard input (-K -), never its argument list.
type CurlRedfish struct {
	Path     string // the curl binary
	BaseURL  string // https://host:port
	CAFile   string // the BMC's certificate (--cacert)
	User     string
	Password string
	Dir      string // for curl's header dump
}

// curlQuote quotes s for a curl config file.
func curlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// run runs one curl with config on stdin and returns its output.
func (c CurlRedfish) run(ctx context.Context, config string, args ...string) ([]byte, error) {
	argv := append([]string{"-sS", "--fail", "--max-time", "10", "--cacert", c.CAFile, "-K", "-"}, args...)
	cmd := exec.CommandContext(ctx, c.Path, argv...)
	cmd.Stdin = strings.NewReader(config)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("curl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// PowerStatus logs in, reads /redfish/v1/Systems/1's PowerState and logs
// out.
func (c CurlRedfish) PowerStatus(ctx context.Context) (string, error) {
	login, err := json.Marshal(map[string]string{"UserName": c.User, "Password": c.Password})
	if err != nil {
		return "", err
	}
	hdrFile := filepath.Join(c.Dir, "login-headers")
	if _, err := c.run(ctx, "data = "+curlQuote(string(login))+"\n",
		"-o", "/dev/null", "-D", hdrFile, "-H", "Content-Type: application/json", c.BaseURL+"/redfish/v1/SessionService/Sessions"); err != nil {
		return "", err
	}
	raw, err := os.ReadFile(hdrFile)
	if err != nil {
		return "", err
	}
	var token, loc string
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case !ok:
		case strings.EqualFold(k, "X-Auth-Token"):
			token = strings.TrimSpace(v)
		case strings.EqualFold(k, "Location"):
			loc = strings.TrimSpace(v)
		}
	}
	if token == "" || loc == "" {
		return "", fmt.Errorf("curl login: no X-Auth-Token or Location in %q", raw)
	}
	auth := "header = " + curlQuote("X-Auth-Token: "+token) + "\n"
	body, err := c.run(ctx, auth, c.BaseURL+"/redfish/v1/Systems/1")
	if err != nil {
		return "", err
	}
	var sys struct{ PowerState string }
	if err := json.Unmarshal(body, &sys); err != nil {
		return "", fmt.Errorf("curl read a system that is not JSON: %w", err)
	}
	if _, err := c.run(ctx, auth, "-o", "/dev/null", "-X", "DELETE", c.BaseURL+loc); err != nil {
		return "", err
	}
	return sys.PowerState, nil
}
