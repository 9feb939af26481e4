package manager

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

func marker(n int) string {
	return fmt.Sprintf("\r\n[obmd: %d bytes dropped: viewer too slow]\r\n", n)
}

// TestDroppedMarkerFormat pins the marker's exact text, which operators and
// scripts see in their console streams.
func TestDroppedMarkerFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		n    uint64
		want string
	}{
		{1, "\r\n[obmd: 1 bytes dropped: viewer too slow]\r\n"},
		{9216, "\r\n[obmd: 9216 bytes dropped: viewer too slow]\r\n"},
		{1<<64 - 1, "\r\n[obmd: 18446744073709551615 bytes dropped: viewer too slow]\r\n"},
	}
	for _, tc := range cases {
		got := appendDroppedMarker(nil, tc.n)
		if string(got) != tc.want {
			t.Errorf("marker(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if len(got) > maxDroppedMarker {
			t.Errorf("marker(%d) is %d bytes, more than maxDroppedMarker", tc.n, len(got))
		}
	}
}

// TestRingCursor drives one ring and one cursor through writes and reads of
// given sizes and checks every read's bytes and skip count.
func TestRingCursor(t *testing.T) {
	t.Parallel()
	type step struct {
		write string // bytes to write, or
		read  int    // a read with a buffer this long
		want  string // what the read returns
		skip  uint64 // stream bytes the read skips
	}
	cases := []struct {
		name  string
		cap   int
		start uint64 // the cursor's starting offset
		steps []step
	}{
		{"fits", 8, 0, []step{
			{write: "abc"}, {read: 10, want: "abc"}, {read: 10, want: ""}}},
		{"short reads", 8, 0, []step{
			{write: "abcdef"}, {read: 4, want: "abcd"}, {read: 4, want: "ef"}}},
		{"wrap-around without loss", 4, 0, []step{
			{write: "abc"}, {read: 3, want: "abc"},
			{write: "def"}, {read: 10, want: "def"},
			{write: "ghij"}, {read: 10, want: "ghij"}}},
		{"overtaken: exact count, then the ring", 4, 0, []step{
			{write: "abcdef"}, {read: 100, want: marker(2) + "cdef", skip: 2}}},
		{"cursor exactly at the boundary loses nothing", 4, 0, []step{
			{write: "ab"}, {read: 2, want: "ab"},
			{write: "cdef"}, {read: 10, want: "cdef"}}},
		{"cursor one byte past the boundary", 4, 0, []step{
			{write: "ab"}, {read: 1, want: "a"},
			{write: "cdef"}, {read: 100, want: marker(1) + "cdef", skip: 1}}},
		{"write longer than the ring", 4, 0, []step{
			{write: "0123456789"}, {read: 100, want: marker(6) + "6789", skip: 6}}},
		{"marker read one byte at a time", 4, 0, []step{
			{write: "0123456789"},
			{read: 1, want: "\r", skip: 6}, {read: 1, want: "\n"},
			{read: len(marker(6)) - 2, want: marker(6)[2:]},
			{read: 1, want: "6"}, {read: 10, want: "789"}}},
		{"overtaken again while reading a marker", 4, 0, []step{
			{write: "abcdef"}, {read: 5, want: marker(2)[:5], skip: 2},
			{write: "ghij"},
			{read: 200, want: marker(2)[5:] + marker(4) + "ghij", skip: 4}}},
		{"marker then data in one read", 4, 0, []step{
			{write: "abcdefgh"}, {read: len(marker(4)) + 2, want: marker(4) + "ef", skip: 4},
			{read: 10, want: "gh"}}},
		{"reader that keeps up across many wraps", 3, 0, []step{
			{write: "ab"}, {read: 2, want: "ab"}, {write: "cde"}, {read: 9, want: "cde"},
			{write: "f"}, {write: "gh"}, {read: 1, want: "f"}, {read: 9, want: "gh"}}},
		{"cursor starting in replayed bytes", 4, 3, []step{
			{write: "abcdef"}, {read: 10, want: "def"}}},
		{"no buffer: everything is lost, visibly", 0, 0, []step{
			{read: 10, want: ""}, {write: "abc"}, {read: 100, want: marker(3), skip: 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newConsoleRing(tc.cap)
			c := ringCursor{off: tc.start}
			for i, s := range tc.steps {
				if s.write != "" {
					r.write([]byte(s.write))
					continue
				}
				buf := make([]byte, s.read)
				n, skip := c.read(&r, buf)
				if got := string(buf[:n]); got != s.want || skip != s.skip {
					t.Fatalf("step %d: read %q skipping %d, want %q skipping %d", i, got, skip, s.want, s.skip)
				}
				if c.off < r.oldest() && c.lost == 0 || c.off > r.head {
					t.Fatalf("step %d: cursor %d outside [%d, %d] with no marker pending", i, c.off, r.oldest(), r.head)
				}
			}
			if c.pending(&r) {
				t.Fatalf("cursor still has something to read at the end")
			}
		})
	}
}

// TestRingReplay: ?replay=N starts a cursor N bytes back, bounded by what
// the ring holds.
func TestRingReplay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cap     int
		written string
		replay  int
		want    string
	}{
		{"none", 8, "hello world", 0, ""},
		{"negative", 8, "hello world", -5, ""},
		{"some", 8, "hello world", 5, "world"},
		{"exactly the ring", 8, "hello world", 8, "lo world"},
		{"one more than the ring", 8, "hello world", 9, "lo world"},
		{"huge", 8, "hello world", 1 << 30, "lo world"},
		{"more than written, ring not full", 8, "hi", 5, "hi"},
		{"nothing written", 8, "", 5, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newConsoleRing(tc.cap)
			r.write([]byte(tc.written))
			c := ringCursor{off: r.replayFrom(tc.replay)}
			buf := make([]byte, 100)
			n, skip := c.read(&r, buf)
			if got := string(buf[:n]); got != tc.want || skip != 0 {
				t.Fatalf("replay %d read %q skipping %d, want %q and no skip", tc.replay, got, skip, tc.want)
			}
		})
	}
}

// streamByte is the byte at offset off of a fuzzed console stream: never
// ASCII, so the marker (all ASCII) cannot be confused with stream bytes.
func streamByte(off uint64) byte { return 0x80 | byte((off*2654435761)>>13)&0x7f }

var markerRE = regexp.MustCompile(`^\r\n\[obmd: ([0-9]+) bytes dropped: viewer too slow\]\r\n`)

// checkViewerStream checks what a viewer read from start to head: runs of
// stream bytes, each the stream from where the previous run ended plus
// the count of the markers between them, ending at head.
func checkViewerStream(t *testing.T, got []byte, start, head uint64) (markers int) {
	t.Helper()
	pos := start
	for len(got) > 0 {
		if got[0] < 0x80 {
			m := markerRE.FindSubmatch(got)
			if m == nil {
				t.Fatalf("at stream offset %d: neither stream bytes nor a whole marker: %q", pos, got[:min(len(got), 70)])
			}
			n, _ := strconv.ParseUint(string(m[1]), 10, 64)
			if n == 0 {
				t.Fatalf("at stream offset %d: a marker for 0 bytes", pos)
			}
			pos += n
			markers++
			got = got[len(m[0]):]
			continue
		}
		if want := streamByte(pos); got[0] != want {
			t.Fatalf("at stream offset %d: read %#x, want %#x", pos, got[0], want)
		}
		pos++
		got = got[1:]
	}
	if pos != head {
		t.Fatalf("viewer ended at stream offset %d, want the head %d", pos, head)
	}
	return markers
}

// FuzzRingCursor writes chunks of random sizes to a ring read by two
// cursors. "prompt" drains the ring, in reads of fuzzed sizes, before every
// write: unless a single write exceeds the ring it never sees a marker and
// reads exactly the stream. "lagging" reads only when the input says so:
// it must read the stream with exact markers where it was overtaken (each
// skip exactly as far as the oldest byte held), ending at the head.
//
// Each op is two bytes: a kind (0 write, 1 lagging reads, 2 prompt's read
// size) and an argument.
func FuzzRingCursor(f *testing.F) {
	f.Add(uint8(3), []byte{0, 2, 1, 1, 0, 5, 1, 80, 0, 9})
	f.Add(uint8(0), []byte{0, 3, 0, 3, 1, 1, 1, 2, 1, 255})
	f.Add(uint8(15), []byte{2, 1, 0, 40, 1, 5, 0, 200, 2, 7, 0, 16, 1, 30})
	f.Add(uint8(255), []byte{0, 255, 0, 255, 0, 255, 1, 255, 1, 3})
	f.Fuzz(func(t *testing.T, capByte uint8, ops []byte) {
		capacity := int(capByte) // 0: a ring without a buffer
		r := newConsoleRing(capacity)
		var prompt, lagging ringCursor
		var promptGot, laggingGot []byte
		promptRead, keptUp := 1, true
		read := func(c *ringCursor, size int, into *[]byte) int {
			oldest, off, owed := r.oldest(), c.off, c.lost > 0
			buf := make([]byte, size)
			n, skip := c.read(&r, buf)
			switch {
			case skip > 0 && (off >= oldest || skip != oldest-off):
				t.Fatalf("cursor at %d skipped %d with the oldest byte at %d", off, skip, oldest)
			case skip == 0 && off < oldest && !owed && size > 0:
				t.Fatalf("cursor at %d behind the oldest byte %d did not skip", off, oldest)
			case c.off > r.head:
				t.Fatalf("cursor %d past the head %d", c.off, r.head)
			}
			*into = append(*into, buf[:n]...)
			return n
		}
		for i := 0; i+1 < len(ops); i += 2 {
			arg := int(ops[i+1])
			switch ops[i] % 3 {
			case 0:
				for read(&prompt, promptRead, &promptGot) > 0 {
				}
				p := make([]byte, arg)
				for j := range p {
					p[j] = streamByte(r.head + uint64(j))
				}
				r.write(p)
				keptUp = keptUp && arg <= capacity
			case 1:
				read(&lagging, arg, &laggingGot)
			case 2:
				promptRead = arg + 1
			}
		}
		for read(&prompt, promptRead, &promptGot) > 0 {
		}
		for read(&lagging, 97, &laggingGot) > 0 {
		}
		if markers := checkViewerStream(t, promptGot, 0, r.head); keptUp && markers > 0 {
			t.Fatalf("a viewer that kept up read %d markers", markers)
		}
		checkViewerStream(t, laggingGot, 0, r.head)
	})
}
