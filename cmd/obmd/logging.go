package main

import (
	"io"
	"log/slog"
)

// newLogger is obmd's logger: text or JSON lines on w, one line per event,
// from level up. Durations are written as Go duration strings ("1.2s")
// in both formats: slog's JSON handler would write nanoseconds, which
// nobody reading a log wants to divide.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationsAsText is a slog ReplaceAttr that writes durations with
// time.Duration.String; slog calls it for attributes inside groups too.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
