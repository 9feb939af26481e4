package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestTCPPortsAreDistinctFreeAndBelowTheEphemeralRange(t *testing.T) {
	ports, err := TCP(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < low || p >= EphemeralLow() || seen[p] {
			t.Fatalf("ports %v: %d is repeated or outside [%d, %d)", ports, p, low, EphemeralLow())
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}

func TestRunIsFreeForUDPAndTCP(t *testing.T) {
	base, err := Run(3)
	if err != nil {
		t.Fatal(err)
	}
	if base < low || base+3 > EphemeralLow() {
		t.Fatalf("run %d..%d is outside [%d, %d)", base, base+2, low, EphemeralLow())
	}
	if !runFree(base, 3) {
		t.Fatalf("run at %d is not free", base)
	}
	// A port in use breaks the run.
	u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(base+1))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if runFree(base, 3) {
		t.Fatalf("run at %d counted free with port %d bound", base, base+1)
	}
}
