package manager

import (
	"bytes"
	"testing"
)

func TestByteRing(t *testing.T) {
	t.Parallel()
	type step struct {
		write    string // bytes to write, or
		read     int    // bytes to read
		wantRead string
		wantLost int
	}
	cases := []struct {
		name  string
		cap   int
		steps []step
		tail  string // tail(100) at the end
	}{
		{"fits", 8, []step{{write: "abc"}, {read: 2, wantRead: "ab"}}, "c"},
		{"wraps without loss", 4, []step{{write: "abc"}, {read: 2, wantRead: "ab"}, {write: "def"}, {read: 4, wantRead: "cdef"}}, ""},
		{"overwrites oldest", 4, []step{{write: "abc"}, {write: "def", wantLost: 2}, {read: 10, wantRead: "cdef"}}, ""},
		{"write larger than ring", 4, []step{{write: "ab"}, {write: "0123456", wantLost: 5}, {read: 10, wantRead: "3456"}}, ""},
		{"write exactly the ring", 4, []step{{write: "ab"}, {write: "wxyz", wantLost: 2}}, "wxyz"},
		{"tail across the wrap", 4, []step{{write: "abc"}, {read: 3, wantRead: "abc"}, {write: "defg"}}, "defg"},
		{"empty read", 4, []step{{read: 4, wantRead: ""}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newByteRing(tc.cap)
			for i, s := range tc.steps {
				if s.write != "" {
					if lost := r.write([]byte(s.write)); lost != s.wantLost {
						t.Fatalf("step %d: write lost %d, want %d", i, lost, s.wantLost)
					}
					continue
				}
				buf := make([]byte, s.read)
				n := r.read(buf)
				if got := string(buf[:n]); got != s.wantRead {
					t.Fatalf("step %d: read %q, want %q", i, got, s.wantRead)
				}
			}
			if got := string(r.tail(100)); got != tc.tail {
				t.Fatalf("tail = %q, want %q", got, tc.tail)
			}
		})
	}
}

// FuzzByteRing checks the ring against a plain slice model: ops encodes a
// sequence of writes (even bytes: length) and reads (odd bytes: length).
func FuzzByteRing(f *testing.F) {
	f.Add(uint8(4), []byte{6, 3, 10, 1, 0, 9})
	f.Add(uint8(1), []byte{2, 2, 2, 1})
	f.Add(uint8(0), []byte{4, 1})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		r := newByteRing(int(capacity))
		var model []byte
		next := byte(0)
		for _, op := range ops {
			n := int(op >> 1)
			if op&1 == 0 {
				p := make([]byte, n)
				for i := range p {
					p[i] = next
					next++
				}
				model = append(model, p...)
				lost := max(0, len(model)-int(capacity))
				model = model[lost:]
				if got := r.write(p); got != lost {
					t.Fatalf("write lost %d, model %d", got, lost)
				}
			} else {
				buf := make([]byte, n)
				got := buf[:r.read(buf)]
				want := model[:min(n, len(model))]
				model = model[len(want):]
				if !bytes.Equal(got, want) {
					t.Fatalf("read %v, model %v", got, want)
				}
			}
			if r.len() != len(model) {
				t.Fatalf("len %d, model %d", r.len(), len(model))
			}
			if tail := r.tail(3); !bytes.Equal(tail, model[max(0, len(model)-3):]) {
				t.Fatalf("tail %v, model %v", tail, model)
			}
		}
	})
}
