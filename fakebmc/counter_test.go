package fakebmc

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCounterStreamRead(t *testing.T) {
	c := newCounterStream()
	var sb strings.Builder
	for _, n := range []int{1, 2, 3, 7, 11, 1} { // odd chunk sizes split lines
		buf := make([]byte, n)
		if got := c.Read(buf); got != n {
			t.Fatalf("Read(%d) = %d", n, got)
		}
		sb.Write(buf)
	}
	const want = "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11"
	if sb.String() != want {
		t.Fatalf("stream = %q, want %q", sb.String(), want)
	}
}

// TestCounterStreamSkipMatchesRead checks Skip against the obvious
// reference, reading and discarding, across digit boundaries.
func TestCounterStreamSkipMatchesRead(t *testing.T) {
	cases := []struct {
		name      string
		pre, skip uint64
	}{
		{"nothing", 0, 0},
		{"within the first line", 0, 1},
		{"to the end of line 9", 0, 20},
		{"across 9 to 10", 17, 10},
		{"across 99 to 100", 5, 300},
		{"across 999 to 1000", 3, 4000},
		{"far", 1, 1234567},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		cases = append(cases, struct {
			name      string
			pre, skip uint64
		}{name: "random " + string(rune('a'+i%26)), pre: rng.Uint64N(50000), skip: rng.Uint64N(200000)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			skipped, read := newCounterStream(), newCounterStream()
			skipped.Read(make([]byte, tc.pre))
			read.Read(make([]byte, tc.pre))
			skipped.Skip(tc.skip)
			read.Read(make([]byte, tc.skip))
			a, b := make([]byte, 64), make([]byte, 64)
			skipped.Read(a)
			read.Read(b)
			if string(a) != string(b) {
				t.Fatalf("after pre=%d skip=%d: Skip gives %q, Read gives %q", tc.pre, tc.skip, a, b)
			}
		})
	}
}

func TestCounterStreamSkipToLineStart(t *testing.T) {
	c := newCounterStream()
	c.Read(make([]byte, 21)) // "0\n...9\n1" : mid-line in "10\n"
	if c.AtLineStart() {
		t.Fatal("AtLineStart true mid-line")
	}
	if got := c.NextValue(); got != 11 {
		t.Fatalf("NextValue mid-line = %d, want 11", got)
	}
	c.SkipToLineStart()
	if !c.AtLineStart() {
		t.Fatal("AtLineStart false after SkipToLineStart")
	}
	buf := make([]byte, 6)
	c.Read(buf)
	if string(buf) != "11\n12\n" {
		t.Fatalf("after SkipToLineStart read %q, want %q", buf, "11\n12\n")
	}
}
