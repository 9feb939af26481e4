package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
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
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelWarn
	case quietRoutes[c.FullPath()]:
		level = slog.LevelDebug // probes and scrapes come every few seconds
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
