package rmcpplus

import (
	"net"
	"os"
	"testing"
)

// TestManualServe serves the test BMC on $RMCPPLUS_SERVE until killed, for
// trying real clients by hand.
func TestManualServe(t *testing.T) {
	addr := os.Getenv("RMCPPLUS_SERVE")
	if addr == "" {
		t.Skip("set RMCPPLUS_SERVE=127.0.0.1:PORT to serve the test BMC by hand")
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testServerConfig(&testHandler{})
	cfg.CipherSuites = []uint8{17, 16, 15, 3, 2, 1}
	t.Log(NewServer(cfg).Serve(pc))
}
