// Package metrics is obmd's Prometheus exposition, built with
// client_golang: the daemon's own series (nodes, consoles, BMC sessions,
// dials, SOL, rejected packets, HTTP and BMC operation latencies), the
// build, and the Go runtime and process collectors, in one registry of its
// own (never the global one, so that two daemons in one test process do
// not collide).
//
// It only reads: counters kept by package manager, rmcpplus and sol are
// collected at scrape time, and the two histograms are fed by the API's
// middleware and the Manager's OperationObserver. Labels are bounded sets
// (route patterns, operation names, outcomes); a node ID is never a label.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"obmd/internal/buildinfo"
	"obmd/manager"
	"obmd/rmcpplus"
	"obmd/sol"
)

// HTTP latency buckets, seconds: a REST call on a warm BMC session takes
// well under a millisecond through obmd plus one BMC round trip; a cold
// handshake or a soft power cycle takes seconds. Console streams last as
// long as someone watches and land in +Inf.
var httpBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// BMC operation buckets, seconds: from a reused session's single round trip
// to a soft power cycle's grace period (SoftCycleTimeout, 60 s).
var bmcBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// Metrics is one daemon's registry and the instruments fed from outside.
type Metrics struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	bmcDuration  *prometheus.HistogramVec
}

// New builds the registry with the build info and the Go and process
// collectors. Attach the Manager with CollectManager.
func New(build buildinfo.Info) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "obmd_http_requests_total",
			Help: "HTTP requests by status code.",
		}, []string{"code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "obmd_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code (console streams count their whole length).",
			Buckets: httpBuckets,
		}, []string{"route", "method", "code"}),
		bmcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "obmd_bmc_operation_duration_seconds",
			Help:    "BMC operation latency by operation and outcome, the wait for the node's earlier operation included.",
			Buckets: bmcBuckets,
		}, []string{"operation", "outcome"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "obmd_build_info",
		Help: "Always 1; the labels say which obmd is running.",
		ConstLabels: prometheus.Labels{
			"version":   build.Version,
			"revision":  build.Revision,
			"goversion": build.GoVersion,
		},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.httpRequests,
		m.httpDuration,
		m.bmcDuration,
		sessionCollector{},
	)
	return m
}

// CollectManager adds the Manager's counters (nodes, consoles, dials, SOL
// takeovers, console logs) to the registry, read at each scrape.
func (m *Metrics) CollectManager(mgr *manager.Manager) {
	m.reg.MustRegister(managerCollector{mgr})
}

// Registry is the registry, for tests and for a caller that adds its own
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
// Errors while gathering are logged at warning level.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          promLogger{log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// ObserveHTTP records one HTTP request. route is the matched pattern
// ("/node/:node_id/power_on"), empty when nothing matched.
func (m *Metrics) ObserveHTTP(route, method string, code int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	c := strconv.Itoa(code)
	m.httpRequests.WithLabelValues(c).Inc()
	m.httpDuration.WithLabelValues(route, boundedMethod(method), c).Observe(took.Seconds())
}

// ObserveOperation is a manager.OperationObserver: it records one BMC
// operation ("power on" becomes operation="power_on").
func (m *Metrics) ObserveOperation(op, outcome string, took time.Duration) {
	m.bmcDuration.WithLabelValues(strings.ReplaceAll(op, " ", "_"), outcome).Observe(took.Seconds())
}

var _ manager.OperationObserver = (*Metrics)(nil).ObserveOperation

// boundedMethod keeps the method label to the methods HTTP defines: a
// client can send any token as a method, and each would be a new series.
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// promLogger routes promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (p promLogger) Println(v ...any) {
	if p.log != nil {
		p.log.Warn("serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
	}
}

var (
	descNodes        = prometheus.NewDesc("obmd_nodes", "Registered nodes.", nil, nil)
	descViewers      = prometheus.NewDesc("obmd_console_viewers", "Connected console viewers.", nil, nil)
	descConsoleBytes = prometheus.NewDesc("obmd_console_bytes_total", "Console bytes read from BMCs.", nil, nil)
	descDropped      = prometheus.NewDesc("obmd_console_dropped_bytes_total", "Console bytes lost to viewers too slow to keep up.", nil, nil)
	descReconnects   = prometheus.NewDesc("obmd_console_reconnects_total", "Console streams reopened after they ended.", nil, nil)
	descLost         = prometheus.NewDesc("obmd_console_streams_lost_total", "Console streams that ended while the console was wanted (BMC reset, session lost).", nil, nil)
	descGap          = prometheus.NewDesc("obmd_console_gap_seconds_total", "Console time without output between a lost stream and its reopening, summed.", nil, nil)
	descViewerGaps   = prometheus.NewDesc("obmd_console_viewer_gaps_total", "Times a viewer fell so far behind that it skipped ahead (a drop marker in its stream).", nil, nil)
	descDials        = prometheus.NewDesc("obmd_bmc_dials_total", "BMC sessions dialled, by result (ok, timeout, auth, canceled, error).", []string{"result"}, nil)
	descLogBytes     = prometheus.NewDesc("obmd_console_log_bytes_total", "Console log bytes written to CONSOLE_LOG_DIR, timestamps included.", nil, nil)
	descLogErrors    = prometheus.NewDesc("obmd_console_log_write_errors_total", "Console log writes and file opens that failed (disk full, permissions).", nil, nil)
	descLogDropped   = prometheus.NewDesc("obmd_console_log_dropped_bytes_total", "Console output not logged: the log writer fell behind, or a write failed.", nil, nil)
	descTakeovers    = prometheus.NewDesc("obmd_sol_takeovers_total", "Stale SOL activations deactivated so that a console could open (completion code 80h).", nil, nil)

	descSessions    = prometheus.NewDesc("obmd_bmc_sessions_open", "Established RMCP+ sessions to BMCs.", nil, nil)
	descRejected    = prometheus.NewDesc("obmd_rmcpplus_rejected_packets_total", "Inbound RMCP+ session packets dropped, by reason: sequence (outside the window: duplicate or replay), integrity (AuthCode or decryption failed), oversize.", []string{"reason"}, nil)
	descRetransmits = prometheus.NewDesc("obmd_sol_retransmits_total", "SOL data packets obmd resent because the BMC did not acknowledge them in time.", nil, nil)
)

// managerCollector reads manager.Stats at each scrape.
type managerCollector struct{ m *manager.Manager }

func (c managerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodes, descViewers, descConsoleBytes, descDropped, descReconnects,
		descLost, descGap, descViewerGaps, descDials, descTakeovers, descLogBytes, descLogErrors, descLogDropped} {
		ch <- d
	}
}

func (c managerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descNodes, float64(st.Nodes))
	gauge(descViewers, float64(st.Viewers))
	counter(descConsoleBytes, float64(st.ConsoleBytes))
	counter(descDropped, float64(st.DroppedBytes))
	counter(descReconnects, float64(st.ConsoleReconnects))
	counter(descLost, float64(st.ConsoleStreamsLost))
	counter(descGap, st.ConsoleGap.Seconds())
	counter(descViewerGaps, float64(st.ViewerGaps))
	for result, n := range st.Dials {
		counter(descDials, float64(n), result)
	}
	counter(descTakeovers, float64(st.SOLTakeovers))
	counter(descLogBytes, float64(st.ConsoleLog.Bytes))
	counter(descLogErrors, float64(st.ConsoleLog.WriteErrors))
	counter(descLogDropped, float64(st.ConsoleLog.DroppedBytes))
}

// sessionCollector reads the process-wide rmcpplus and sol counters.
type sessionCollector struct{}

func (sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessions
	ch <- descRejected
	ch <- descRetransmits
}

func (sessionCollector) Collect(ch chan<- prometheus.Metric) {
	rc := rmcpplus.Counters()
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(rc.SessionsOpen))
	for _, r := range []struct {
		reason string
		n      uint64
	}{{"sequence", rc.RejectedSequence}, {"integrity", rc.RejectedIntegrity}, {"oversize", rc.RejectedOversize}} {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(r.n), r.reason)
	}
	ch <- prometheus.MustNewConstMetric(descRetransmits, prometheus.CounterValue, float64(sol.Counters().Retransmits))
}
