package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"obmd/manager"
)

// scrape reads /metrics with the scrape token and parses it as Prometheus
// does.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	body := e.expect(req{method: "GET", path: "/metrics", bearer: metricsToken}, 200)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// find returns the series of family name whose labels include want.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no %s in /metrics", name)
	}
	if f.GetType() != typ {
		t.Fatalf("%s is a %v, want %v", name, f.GetType(), typ)
	}
next:
	for _, m := range f.GetMetric() {
		got := labelsOf(m)
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s series with labels %v", name, want)
	return nil
}

// TestMetricsExposition scrapes /metrics after some traffic and checks it
// as Prometheus parses it: names, types, labels and the histograms.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("secret-node-name", mockInfo)
	tok := e.token("secret-node-name")
	q := "?token=" + tok
	for range 3 {
		e.expect(req{method: "POST", path: "/node/secret-node-name/power_on" + q}, 200)
	}
	e.expect(req{method: "GET", path: "/node/secret-node-name/power_status" + q}, 200)
	e.expect(req{method: "PUT", path: "/node/secret-node-name/boot_device" + q, body: `{"bootdev": "Z"}`}, 400)
	e.expect(req{method: "GET", path: "/node/secret-node-name/power_status?token=ffffffffffffffffffffffffffffffff"}, 401)
	e.expect(req{method: "GET", path: "/no/such/route"}, 404)
	e.expect(req{method: "FROB", path: "/node"}, 405)
	resp, err := e.srv.Client().Get(e.srv.URL + "/node/secret-node-name/console" + q)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for range 5 {
		sc.Scan()
	}
	resp.Body.Close()

	fams := e.scrape()
	for name, typ := range map[string]dto.MetricType{
		"obmd_nodes":                           dto.MetricType_GAUGE,
		"obmd_console_viewers":                 dto.MetricType_GAUGE,
		"obmd_console_bytes_total":             dto.MetricType_COUNTER,
		"obmd_console_dropped_bytes_total":     dto.MetricType_COUNTER,
		"obmd_console_reconnects_total":        dto.MetricType_COUNTER,
		"obmd_console_streams_lost_total":      dto.MetricType_COUNTER,
		"obmd_console_gap_seconds_total":       dto.MetricType_COUNTER,
		"obmd_console_viewer_gaps_total":       dto.MetricType_COUNTER,
		"obmd_bmc_sessions_open":               dto.MetricType_GAUGE,
		"obmd_sol_retransmits_total":           dto.MetricType_COUNTER,
		"obmd_sol_takeovers_total":             dto.MetricType_COUNTER,
		"go_goroutines":                        dto.MetricType_GAUGE,
		"process_resident_memory_bytes":        dto.MetricType_GAUGE,
		"obmd_http_request_duration_seconds":   dto.MetricType_HISTOGRAM,
		"obmd_bmc_operation_duration_seconds":  dto.MetricType_HISTOGRAM,
		"obmd_http_requests_total":             dto.MetricType_COUNTER,
		"obmd_bmc_dials_total":                 dto.MetricType_COUNTER,
		"obmd_rmcpplus_rejected_packets_total": dto.MetricType_COUNTER,
		"obmd_build_info":                      dto.MetricType_GAUGE,
		"obmd_console_log_bytes_total":         dto.MetricType_COUNTER,
		"obmd_console_log_write_errors_total":  dto.MetricType_COUNTER,
		"obmd_console_log_dropped_bytes_total": dto.MetricType_COUNTER,
	} {
		if f, ok := fams[name]; !ok || f.GetType() != typ {
			t.Errorf("%s: present %t, type %v; want a %v", name, ok, f.GetType(), typ)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if v := find(t, fams, "obmd_nodes", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v != 1 {
		t.Errorf("obmd_nodes = %v, want 1", v)
	}
	if v := find(t, fams, "obmd_console_bytes_total", dto.MetricType_COUNTER, nil).GetCounter().GetValue(); v < 10 {
		t.Errorf("obmd_console_bytes_total = %v after reading 5 lines", v)
	}
	build := labelsOf(find(t, fams, "obmd_build_info", dto.MetricType_GAUGE, nil))
	if build["version"] == "" || !strings.HasPrefix(build["goversion"], "go") {
		t.Errorf("obmd_build_info labels = %v", build)
	}
	for _, reason := range []string{"sequence", "integrity", "oversize"} {
		find(t, fams, "obmd_rmcpplus_rejected_packets_total", dto.MetricType_COUNTER, map[string]string{"reason": reason})
	}
	for _, result := range []string{"ok", "timeout", "auth", "canceled", "error"} {
		find(t, fams, "obmd_bmc_dials_total", dto.MetricType_COUNTER, map[string]string{"result": result})
	}

	// HTTP latency: by route pattern, method and code.
	h := find(t, fams, "obmd_http_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"route": "/node/:node_id/power_on", "method": "POST", "code": "200"}).GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() <= 0 || len(h.GetBucket()) < 10 {
		t.Errorf("power_on histogram: count %d, sum %v, %d buckets; want 3 samples", h.GetSampleCount(), h.GetSampleSum(), len(h.GetBucket()))
	}
	if last := h.GetBucket()[len(h.GetBucket())-1]; last.GetCumulativeCount() != 3 {
		t.Errorf("power_on histogram's last bucket (le %v) holds %d, want 3", last.GetUpperBound(), last.GetCumulativeCount())
	}
	find(t, fams, "obmd_http_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"route": "/node/:node_id/power_status", "method": "GET", "code": "401"})
	find(t, fams, "obmd_http_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"route": "unmatched", "method": "GET", "code": "404"})
	find(t, fams, "obmd_http_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"route": "unmatched", "method": "other", "code": "405"})
	find(t, fams, "obmd_http_requests_total", dto.MetricType_COUNTER, map[string]string{"code": "200"})
	for _, m := range fams["obmd_http_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "secret-node-name") || strings.Contains(l.GetValue(), "no/such") {
				t.Errorf("a label holds a node ID or a raw path: %v", labelsOf(m))
			}
		}
	}

	// BMC operations: by operation and outcome.
	op := find(t, fams, "obmd_bmc_operation_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"operation": "power_on", "outcome": "ok"}).GetHistogram()
	if op.GetSampleCount() != 3 {
		t.Errorf("power_on operations observed %d, want 3", op.GetSampleCount())
	}
	find(t, fams, "obmd_bmc_operation_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"operation": "set_boot_device", "outcome": "invalid"})
	find(t, fams, "obmd_bmc_operation_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"operation": "open_console", "outcome": "ok"})
}

// /metrics needs the scrape token (bearer, or Basic user "metrics") or the
// admin's credentials; nothing else, and never the token as the admin's
// password or the other way round.
func TestMetricsAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name string
		r    req
		want int
	}{
		{"no credentials", req{}, 401},
		{"admin", req{admin: true}, 200},
		{"bearer token", req{bearer: metricsToken}, 200},
		{"wrong bearer token", req{bearer: adminToken}, 401},
		{"basic metrics user", req{user: "metrics", pass: metricsToken}, 200},
		{"token as the admin's password", req{user: "admin", pass: metricsToken}, 401},
		{"admin token as the metrics password", req{user: "metrics", pass: adminToken}, 401},
	}
	for _, tc := range cases {
		tc.r.method, tc.r.path = "GET", "/metrics"
		got, body, hdr := e.do(tc.r)
		if got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
		if got == 401 && len(hdr.Values("WWW-Authenticate")) != 2 {
			t.Errorf("%s: WWW-Authenticate %q, want a Bearer and a Basic challenge", tc.name, hdr.Values("WWW-Authenticate"))
		}
	}

	// Without METRICS_TOKEN, only the admin scrapes the main listener: an
	// empty bearer token or password is not a credential.
	bare := newEnvWith(t, Options{})
	bare.expect(req{method: "GET", path: "/metrics", admin: true}, 200)
	for _, r := range []req{{}, {user: "metrics"}, {user: "metrics", pass: " "}} {
		r.method, r.path = "GET", "/metrics"
		if got, body, _ := bare.do(r); got != 401 {
			t.Errorf("no METRICS_TOKEN, %+v: %d %s, want 401", r, got, body)
		}
	}
	hr, _ := http.NewRequest("GET", bare.srv.URL+"/metrics", nil)
	hr.Header.Set("Authorization", "Bearer ")
	resp, err := bare.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no METRICS_TOKEN, empty bearer: %d, want 401", resp.StatusCode)
	}
}

// /readyz is 200 while the store is writable and every check passes, and
// 503 naming what failed otherwise; /livez and /healthz answer regardless.
func TestReadyz(t *testing.T) {
	t.Parallel()
	var listenerErr error
	e := newEnvWith(t, Options{Ready: []ReadinessCheck{{Name: "listener", Check: func(context.Context) error { return listenerErr }}}})
	if b := e.expect(req{method: "GET", path: "/readyz"}, 200); string(b) != `{"status":"ok"}` {
		t.Errorf("/readyz = %s", b)
	}
	listenerErr = errors.New("not serving yet")
	if b := e.expect(req{method: "GET", path: "/readyz"}, 503); !strings.Contains(string(b), "not ready: listener: not serving yet") {
		t.Errorf("/readyz with the listener down = %s", b)
	}
	listenerErr = nil
	e.expect(req{method: "GET", path: "/readyz"}, 200)

	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	if b := e.expect(req{method: "GET", path: "/readyz"}, 503); !strings.Contains(string(b), "not ready: store: the database is closed") {
		t.Errorf("/readyz with the store closed = %s", b)
	}
	e.expect(req{method: "GET", path: "/livez"}, 200)
	e.expect(req{method: "GET", path: "/healthz"}, 200)
}

// Probes and scrapes are logged at debug level: an info-level log holds
// none of them, but still every API call.
func TestProbesNotLoggedAtInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/livez", "/readyz", "/healthz"} {
		e.expect(req{method: "GET", path: p}, 200)
	}
	e.expect(req{method: "GET", path: "/metrics", bearer: metricsToken}, 200)
	e.expect(req{method: "GET", path: "/node", admin: true}, 200)
	logs := e.logs.String()
	for _, p := range []string{`"path":"/livez"`, `"path":"/readyz"`, `"path":"/healthz"`, `"path":"/metrics"`} {
		if strings.Contains(logs, p) {
			t.Errorf("a probe was logged at info level (%s):\n%s", p, logs)
		}
	}
	if !strings.Contains(logs, `"path":"/node"`) {
		t.Errorf("GET /node was not logged:\n%s", logs)
	}
}

// GET /node/{id}/console_log: the admin reads the current tenancy's
// console log, or an earlier one's; every line is stamped; the tenancies
// split the output without overlap or loss.
func TestConsoleLogRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *manager.Config) {
		c.ConsoleLog = &manager.ConsoleLogConfig{Dir: t.TempDir()}
	})
	e.register("n", mockInfo)
	// Logged consoles stay open: output arrives with nobody watching.
	tenancyLines := func(tenancy string) []int {
		t.Helper()
		path := "/node/n/console_log"
		if tenancy != "" {
			path += "?tenancy=" + tenancy
		}
		code, body, hdr := e.do(req{method: "GET", path: path, admin: true})
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET %s: %d %s %s", path, code, hdr.Get("Content-Type"), body)
		}
		var nums []int
		stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\d+)$`)
		for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
			if line == "" {
				continue
			}
			m := stamped.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("GET %s: line %q is not a timestamped counter line", path, line)
			}
			if _, err := time.Parse(time.RFC3339, strings.Fields(line)[0]); err != nil {
				t.Fatalf("timestamp of %q: %v", line, err)
			}
			n, _ := strconv.Atoi(m[1])
			nums = append(nums, n)
		}
		return nums
	}
	// watch reads n lines as the holder of a fresh token: once a viewer
	// has them, the log has them too (the hub records before viewers see).
	watch := func(n int) {
		t.Helper()
		resp, err := e.srv.Client().Get(e.srv.URL + "/node/n/console?token=" + e.token("n"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for range n {
			if !sc.Scan() {
				t.Fatalf("console ended: %v", sc.Err())
			}
		}
	}
	watch(5) // tenancy 2 (1 is before the first token)
	watch(5) // 3
	watch(1) // 4

	var all []int
	for i, tenancy := range []string{"2", "3", "4"} {
		lines := tenancyLines(tenancy)
		if len(lines) < []int{5, 5, 1}[i] {
			t.Fatalf("tenancy %s logged %d lines, fewer than its viewer read", tenancy, len(lines))
		}
		if i == 2 && tenancyLines("")[0] != lines[0] {
			t.Errorf("the current tenancy is not tenancy 4")
		}
		all = append(all, lines...)
	}
	for i := range all {
		if all[i] != all[0]+i {
			t.Fatalf("tenancies 2-4 together are not one unbroken count at %d: %v", i, all)
		}
	}

	code, _, hdr := e.do(req{method: "GET", path: "/node/n/console_log", admin: true})
	if code != 200 || hdr.Get("X-Obmd-Tenancy") != "4" || !strings.HasSuffix(hdr.Get("X-Obmd-Tenancies"), "2,3,4") || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", hdr)
	}
	tok := e.token("n")
	e.expect(req{method: "GET", path: "/node/n/console_log?token=" + tok}, 401) // the admin's only
	e.expect(req{method: "GET", path: "/node/n/console_log?tenancy=0", admin: true}, 400)
	e.expect(req{method: "GET", path: "/node/n/console_log?tenancy=x", admin: true}, 400)
	e.expect(req{method: "GET", path: "/node/n/console_log?tenancy=99", admin: true}, 404)
	e.expect(req{method: "GET", path: "/node/nobody/console_log", admin: true}, 404)

	off := newEnv(t)
	off.register("n", mockInfo)
	if b := off.expect(req{method: "GET", path: "/node/n/console_log", admin: true}, 501); !strings.Contains(string(b), "CONSOLE_LOG_DIR") {
		t.Errorf("without console logs: %s", b)
	}
}
