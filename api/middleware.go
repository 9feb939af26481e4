package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// redactedQuery returns the raw query with every "token" parameter's value
// replaced, so that logs never hold a node token. A query that does not
// parse is not logged at all.
func redactedQuery(raw string) string {
	if raw == "" {
		return ""
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparsable query not logged]"
	}
	for k := range vals {
		if strings.EqualFold(k, "token") {
			for i := range vals[k] {
				vals[k][i] = "REDACTED"
			}
		}
	}
	return vals.Encode()
}

// accessLog logs one line per request: method, path, redacted query,
// status, size, duration and node. Never headers or bodies.
func (s *server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	s.metrics.countRequest(status)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	if status >= 400 && !authenticated(c) && !s.refusals.allow(time.Now()) {
		return // counted for the limiter's summary line
	}
	attrs := []slog.Attr{
		slog.String("method", boundField(c.Request.Method)),
		slog.String("path", boundField(c.Request.URL.Path)),
		slog.Int("status", status),
		slog.Int("bytes", max(0, c.Writer.Size())),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", c.ClientIP()),
	}
	if q := redactedQuery(c.Request.URL.RawQuery); q != "" {
		attrs = append(attrs, slog.String("query", boundField(q)))
	}
	if id := c.Param("node_id"); id != "" {
		attrs = append(attrs, slog.String("node", boundField(id)))
	}
	s.log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
}

// recovery turns a handler panic into a logged 500 instead of a dropped
// connection. http.ErrAbortHandler keeps its meaning.
func (s *server) recovery(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		s.log.Error("handler panic", "path", c.Request.URL.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		abortError(c, http.StatusInternalServerError, "internal server error")
	}()
	c.Next()
}

// metrics counts requests by status code.
type metrics struct {
	mu       sync.Mutex
	requests map[int]int64
}

func newMetrics() *metrics { return &metrics{requests: make(map[int]int64)} }

func (m *metrics) countRequest(status int) {
	m.mu.Lock()
	m.requests[status]++
	m.mu.Unlock()
}

// serveMetrics writes the counters in the Prometheus text format.
func (s *server) serveMetrics(c *gin.Context) {
	st := s.m.Stats()
	var b strings.Builder
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge("obmd_nodes", "Registered nodes.", int64(st.Nodes))
	gauge("obmd_console_viewers", "Connected console viewers.", st.Viewers)
	counter("obmd_console_bytes_total", "Console bytes read from BMCs.", st.ConsoleBytes)
	counter("obmd_console_dropped_bytes_total", "Console bytes lost to viewers too slow to keep up.", st.DroppedBytes)
	counter("obmd_console_reconnects_total", "Console streams reopened after they ended.", st.ConsoleReconnects)

	s.metrics.mu.Lock()
	codes := make([]int, 0, len(s.metrics.requests))
	for code := range s.metrics.requests {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	fmt.Fprintf(&b, "# HELP obmd_http_requests_total HTTP requests by status code.\n# TYPE obmd_http_requests_total counter\n")
	for _, code := range codes {
		fmt.Fprintf(&b, "obmd_http_requests_total{code=\"%d\"} %d\n", code, s.metrics.requests[code])
	}
	s.metrics.mu.Unlock()
	c.Data(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", []byte(b.String()))
}
