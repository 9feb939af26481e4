package bench

import (
	"testing"
	"time"
)

func TestEmissionCursor(t *testing.T) {
	t.Parallel()
	l := newEmissionLog(3)
	base := time.Unix(1000, 0)
	for i, line := range []uint64{10, 20, 35} {
		l.add(emission{Line: line, At: base.Add(time.Duration(i) * 20 * time.Millisecond).UnixNano()})
	}
	l.add(emission{Line: 50, At: base.Add(time.Second).UnixNano()}) // full: dropped
	if l.overflow.Load() != 1 {
		t.Errorf("overflow %d, want 1", l.overflow.Load())
	}
	c := emissionCursor{log: l}
	tests := []struct {
		line   uint64
		want   time.Duration // after base
		wantOK bool
	}{
		{5, 0, true},                      // before the first packet's last line: first packet
		{10, 0, true},                     // completed by the first packet
		{11, 20 * time.Millisecond, true}, // completed by the second
		{35, 40 * time.Millisecond, true},
		{36, 0, false}, // no packet recorded it (yet)
	}
	for _, tc := range tests {
		at, ok := c.at(tc.line)
		if ok != tc.wantOK || (ok && !at.Equal(base.Add(tc.want))) {
			t.Errorf("line %d: at %v ok %v; want base+%v ok %v", tc.line, at.Sub(base), ok, tc.want, tc.wantOK)
		}
	}
}

func TestEmissionLogRate(t *testing.T) {
	t.Parallel()
	l := newEmissionLog(8)
	base := time.Unix(1000, 0)
	// Lines 100..199 (4 characters each) over one second.
	l.add(emission{Line: 99, At: base.UnixNano()})
	l.add(emission{Line: 199, At: base.Add(time.Second).UnixNano()})
	rate, ok := l.rate(base, base.Add(2*time.Second))
	if !ok || rate != 400 {
		t.Errorf("rate %v ok %v; want 400 characters/s", rate, ok)
	}
	if _, ok := l.rate(base.Add(3*time.Second), base.Add(4*time.Second)); ok {
		t.Error("a rate from no packets")
	}
}
