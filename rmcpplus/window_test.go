package rmcpplus

import "testing"

func TestSeqWindow(t *testing.T) {
	type step struct {
		seq  uint32
		want bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"zero is never valid in a session", []step{{0, false}, {1, true}, {0, false}}},
		{"in order", []step{{1, true}, {2, true}, {3, true}, {4, true}}},
		{"first packet may start anywhere", []step{{1000, true}, {1001, true}}},
		{"duplicate of highest rejected", []step{{1, true}, {2, true}, {2, false}}},
		{"duplicate of older rejected", []step{{1, true}, {2, true}, {3, true}, {1, false}, {2, false}}},
		{"reordered inside window accepted once", []step{{1, true}, {3, true}, {2, true}, {2, false}, {4, true}}},
		{"gap then late arrivals", []step{{10, true}, {5, true}, {9, true}, {5, false}, {11, true}, {6, true}}},
		{"exactly window-1 behind accepted", []step{{100, true}, {100 - seqWindowSize + 1, true}}},
		{"window behind rejected", []step{{100, true}, {100 - seqWindowSize, false}}},
		{"far behind rejected", []step{{1000, true}, {1, false}}},
		{"large jump forward clears history", []step{{1, true}, {200, true}, {199, true}, {200, false}, {1, false}}},
		{"jump of 63 keeps bitmap", []step{{1, true}, {64, true}, {63, true}, {64, false}}},
		{"jump of 64 keeps new highest", []step{{1, true}, {65, true}, {65, false}, {64, true}}},
		{"wraps past 0xFFFFFFFF", []step{{0xFFFFFFFE, true}, {0xFFFFFFFF, true}, {1, true}, {0xFFFFFFFF, false}, {2, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w seqWindow
			for i, s := range tt.steps {
				if got := w.check(s.seq); got != s.want {
					t.Fatalf("step %d: check(%d) = %v, want %v", i, s.seq, got, s.want)
				}
				if got := w.accept(s.seq); got != s.want {
					t.Fatalf("step %d: accept(%d) = %v, want %v", i, s.seq, got, s.want)
				}
			}
		})
	}
}

// Checking must not record: a packet that fails its integrity check after
// check() must not burn its sequence number.
func TestSeqWindowCheckDoesNotRecord(t *testing.T) {
	var w seqWindow
	w.accept(5)
	for range 3 {
		if !w.check(6) {
			t.Fatal("check(6) = false")
		}
	}
	if !w.accept(6) {
		t.Fatal("accept(6) = false after checks")
	}
	if w.accept(6) {
		t.Fatal("accept(6) twice = true")
	}
}

// TestSeqWindowLatenessFitsSOL: a packet overtaken by up to 7 later ones
// gets through, one overtaken by 8 or more does not. SOL (IPMI v2.0 section
// 15.9) numbers its packets 1..15 and can tell a late copy from a new packet
// only up to 7 numbers back; a wider window let a SOL retransmission
// overtaken by 13 packets through on a reordering link, and the console
// took it for new data (the stall of fakebmc's TestSOLEchoThroughLossyLink).
func TestSeqWindowLatenessFitsSOL(t *testing.T) {
	const highest = 1000
	for overtaken := uint32(1); overtaken <= 40; overtaken++ {
		var w seqWindow
		if !w.accept(highest) {
			t.Fatalf("accept(%d) = false on an empty window", highest)
		}
		want := overtaken <= 7
		if got := w.accept(highest - overtaken); got != want {
			t.Errorf("a packet overtaken by %d later ones: accepted = %v, want %v", overtaken, got, want)
		}
	}
}
