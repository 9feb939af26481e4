package bench

import (
	"bytes"
	"strconv"
	"testing"
)

func TestCounterCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		want   CounterCheck // only the exported counters are compared
	}{
		{"from the start: the first line only syncs", "0\n1\n2\n", CounterCheck{First: 1, Lines: 2}},
		{"joined mid-line", "23\n124\n125\n126\n", CounterCheck{First: 124, Lines: 3}},
		{"partial last line is not judged", "7\n8\n9", CounterCheck{First: 8, Lines: 1}},
		{"carriage returns ignored", "7\r\n8\r\n9\r\n", CounterCheck{First: 8, Lines: 2}},
		{"gap of two lines", "4\n5\n6\n9\n10\n", CounterCheck{First: 5, Lines: 4, Missing: 2}},
		{"duplicate line", "4\n5\n6\n6\n7\n", CounterCheck{First: 5, Lines: 3, Backward: 1}},
		{"reordered lines", "4\n5\n7\n6\n8\n", CounterCheck{First: 5, Lines: 3, Missing: 1, Backward: 1}},
		{"obmd drop marker", "4\n5\r\n[obmd: 120 bytes dropped: viewer too slow]\r\n6\n", CounterCheck{First: 5, Lines: 2, Garbage: 1}},
		{"reconnect marker then a jump", "4\n5\r\n[obmd: console reconnected after 1.2s]\r\n90\n", CounterCheck{First: 5, Lines: 2, Garbage: 1, Missing: 84}},
		{"line too long", "1\n" + string(bytes.Repeat([]byte("9"), 40)) + "\n2\n", CounterCheck{First: 2, Lines: 1, Garbage: 1}},
		{"does not fit 64 bits", "1\n99999999999999999999\n", CounterCheck{Garbage: 1}},
		{"largest value", "1\n18446744073709551615\n", CounterCheck{First: 18446744073709551615, Lines: 1}},
		{"nothing but a partial line", "12345", CounterCheck{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Bytes = uint64(len(tc.stream))
			// Whole, and split at every position: the verdict is the same.
			for split := 0; split <= len(tc.stream); split++ {
				var c CounterCheck
				c.Write([]byte(tc.stream[:split]))
				c.Write([]byte(tc.stream[split:]))
				if got := counters(&c); got != counters(&tc.want) {
					t.Fatalf("split at %d: got %+v, want %+v", split, got, counters(&tc.want))
				}
			}
		})
	}
}

// counterFigures is the comparable part of a CounterCheck.
type counterFigures struct{ First, Bytes, Lines, Missing, Backward, Garbage uint64 }

func counters(c *CounterCheck) counterFigures {
	return counterFigures{c.First, c.Bytes, c.Lines, c.Missing, c.Backward, c.Garbage}
}

func TestCounterCheckOnLine(t *testing.T) {
	t.Parallel()
	var got []uint64
	c := CounterCheck{OnLine: func(v uint64) { got = append(got, v) }}
	c.Write([]byte("8\n9\n10\n10\n12\nx\n13\n"))
	want := []uint64{9, 10, 12, 13}
	if len(got) != len(want) {
		t.Fatalf("OnLine saw %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("OnLine saw %v, want %v", got, want)
		}
	}
	if c.Gaps() != 3 || c.Last() != 13 {
		t.Errorf("gaps %d last %d; want 3 (missing 11, duplicate 10, garbage x) and 13", c.Gaps(), c.Last())
	}
}

func TestCounterOffset(t *testing.T) {
	t.Parallel()
	// Against the stream itself, built the slow way.
	var stream []byte
	for v := range uint64(12000) {
		if got := CounterOffset(v); got != uint64(len(stream)) {
			t.Fatalf("CounterOffset(%d) = %d, want %d", v, got, len(stream))
		}
		stream = strconv.AppendUint(stream, v, 10)
		stream = append(stream, '\n')
	}
	// Decade boundaries far out: 10^k starts after all shorter lines.
	tests := []struct{ v, want uint64 }{
		{10, 20},
		{100, 20 + 90*3},
		{1000000, 20 + 90*3 + 900*4 + 9000*5 + 90000*6 + 900000*7},
	}
	for _, tc := range tests {
		if got := CounterOffset(tc.v); got != tc.want {
			t.Errorf("CounterOffset(%d) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

// FuzzCounterCheck: arbitrary bytes never panic, the verdict does not
// depend on how the stream is chunked, and nothing is counted twice.
func FuzzCounterCheck(f *testing.F) {
	f.Add([]byte("0\n1\n2\n3\n"), 3)
	f.Add([]byte("4\n5\r\n[obmd: 120 bytes dropped: viewer too slow]\r\n6\n"), 10)
	f.Add([]byte("1\n18446744073709551615\n99999999999999999999\n"), 5)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var whole, parts CounterCheck
		whole.Write(data)
		if len(data) > 0 {
			split = ((split % len(data)) + len(data)) % len(data)
		} else {
			split = 0
		}
		parts.Write(data[:split])
		parts.Write(data[split:])
		if counters(&whole) != counters(&parts) {
			t.Fatalf("chunking changed the verdict: %+v vs %+v", counters(&whole), counters(&parts))
		}
		newlines := uint64(bytes.Count(data, []byte("\n")))
		if whole.Lines+whole.Backward+whole.Garbage > newlines {
			t.Fatalf("%d lines judged from %d newlines", whole.Lines+whole.Backward+whole.Garbage, newlines)
		}
	})
}
