package api

import (
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"obmd/internal/syncbuf"
)

func TestBoundField(t *testing.T) {
	if got := boundField("short"); got != "short" {
		t.Errorf("boundField(short) = %q", got)
	}
	long := strings.Repeat("é", 300) // 600 bytes
	got := boundField(long)
	if len(got) > maxLogField+32 || !utf8.ValidString(got) || !strings.HasSuffix(got, "...[344 more bytes]") {
		t.Errorf("boundField(600 bytes of é) = %q (%d bytes)", got, len(got))
	}
}

func TestRefusalLimiter(t *testing.T) {
	var buf syncbuf.Buffer
	l := newRefusalLimiter(slog.New(slog.NewJSONHandler(&buf, nil)))
	now := time.Now()
	allowed := 0
	for range 1000 { // a burst
		if l.allow(now) {
			allowed++
		}
	}
	if allowed != refusalBurst {
		t.Errorf("a burst of 1000 refusals: %d lines allowed, want %d", allowed, refusalBurst)
	}
	// Two seconds later the bucket has refilled by refusalRate a second.
	allowed = 0
	for range 1000 {
		if l.allow(now.Add(2 * time.Second)) {
			allowed++
		}
	}
	if allowed != int(2*refusalRate) {
		t.Errorf("2 s later: %d lines allowed, want %d", allowed, int(2*refusalRate))
	}
	l.stop()
	if out := buf.String(); !strings.Contains(out, `"msg":"refused requests not logged one by one"`) || !strings.Contains(out, `"count":1970`) {
		t.Errorf("summary line: %s", out)
	}
}

func TestServerErrorLogIsBounded(t *testing.T) {
	var buf syncbuf.Buffer
	el := ServerErrorLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	for range 500 {
		el.Printf("http: TLS handshake error from 127.0.0.2:%d: EOF", 40000)
	}
	if n := strings.Count(buf.String(), "TLS handshake error"); n != refusalBurst {
		t.Errorf("500 connection errors wrote %d lines, want %d", n, refusalBurst)
	}
}
