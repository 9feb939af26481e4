package api

import (
	"context"
	"fmt"
	stdlog "log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log amplification (issue 9, defect 3): an unauthenticated client chooses
// the path, node ID and query it sends, and how many requests. Access log
// fields are therefore cut to maxLogField bytes (marked), and lines about
// refused requests from clients that did not authenticate go through a
// refusalLimiter, so that a burst of them costs a bounded number of lines.

// maxLogField bounds one client-chosen field of a log line, in bytes.
const maxLogField = 256

// boundField cuts s to maxLogField bytes (at a UTF-8 boundary) and says
// how much was left out.
func boundField(s string) string {
	if len(s) <= maxLogField {
		return s
	}
	cut := maxLogField
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s...[%d more bytes]", s[:cut], len(s)-cut)
}

// Refused-request logging: a burst of refusalBurst lines, then
// refusalRate a second; the lines not written are counted and reported in
// one summary line refusalSummaryAfter after the first was held back.
const (
	refusalBurst        = 20
	refusalRate         = 5.0
	refusalSummaryAfter = 10 * time.Second
)

// refusalLimiter is a token bucket for log lines about refused requests.
type refusalLimiter struct {
	log *slog.Logger

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
	summary    *time.Timer
}

func newRefusalLimiter(log *slog.Logger) *refusalLimiter {
	return &refusalLimiter{log: log, tokens: refusalBurst}
}

// allow reports whether one more refusal line may be written now; if not,
// it is counted for the summary.
func (l *refusalLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(refusalBurst, l.tokens+now.Sub(l.last).Seconds()*refusalRate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.suppressed++
	if l.summary == nil {
		l.summary = time.AfterFunc(refusalSummaryAfter, l.flush)
	}
	return false
}

// flush writes the summary of the lines held back.
func (l *refusalLimiter) flush() {
	l.mu.Lock()
	n := l.suppressed
	l.suppressed, l.summary = 0, nil
	l.mu.Unlock()
	if n > 0 {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, "refused requests not logged one by one",
			slog.Int64("count", n), slog.Duration("within", refusalSummaryAfter))
	}
}

// stop cancels a pending summary and writes it at once.
func (l *refusalLimiter) stop() {
	l.mu.Lock()
	t := l.summary
	l.mu.Unlock()
	if t != nil && t.Stop() {
		l.flush()
	}
}

// ServerErrorLog is for http.Server.ErrorLog: net/http reports there what
// clients do wrong at the connection level (TLS handshakes that fail,
// malformed requests), one line each, which a flood of connections would
// turn into a flood of lines. It writes them to logger at level Warn
// through the same kind of limiter as refused requests.
func ServerErrorLog(logger *slog.Logger) *stdlog.Logger {
	return stdlog.New(&limitedWriter{lim: newRefusalLimiter(logger), log: logger}, "", 0)
}

type limitedWriter struct {
	lim *refusalLimiter
	log *slog.Logger
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.lim.allow(time.Now()) {
		msg := boundField(strings.TrimRight(string(p), "\n"))
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "http server", slog.String("err", msg))
	}
	return len(p), nil
}
