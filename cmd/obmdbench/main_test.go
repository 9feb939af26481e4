package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; empty: success
		check   func(*testing.T, *options)
	}{
		{name: "defaults run everything five times", check: func(t *testing.T, o *options) {
			if o.runs != 5 || len(o.only) != len(scenarioNames) || o.results != "bench/RESULTS.md" {
				t.Errorf("runs %d, %d scenarios, results %q", o.runs, len(o.only), o.results)
			}
			if o.command != "obmdbench" {
				t.Errorf("recorded command %q, want the invocation", o.command)
			}
		}},
		{name: "subset and sizes", args: []string{"-only", "sol, idle", "-idle-nodes", "50", "-sol-duration", "2s"}, check: func(t *testing.T, o *options) {
			if len(o.only) != 2 || !o.only["sol"] || !o.only["idle"] || o.idleNodes != 50 || o.solDuration != 2*time.Second {
				t.Errorf("got only=%v idle-nodes=%d sol-duration=%v", o.only, o.idleNodes, o.solDuration)
			}
		}},
		{name: "recorded command", args: []string{"-command", "make bench"}, check: func(t *testing.T, o *options) {
			if o.command != "make bench" {
				t.Errorf("command %q", o.command)
			}
		}},
		{name: "unknown scenario", args: []string{"-only", "warm,turbo"}, wantErr: `unknown scenario "turbo"`},
		{name: "no runs", args: []string{"-runs", "0"}, wantErr: "need at least 1"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}
