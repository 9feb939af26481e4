package peertest

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Datagram is one captured UDP payload, from the RMCP header on.
type Datagram struct {
	FromClient bool // "c2b": client (ipmitool) to BMC (ipmi_sim); false: "b2c"
	Bytes      []byte
}

// CaptureDir is testdata/captures at the module root, found from this
// source file's location so any package's tests can use it.
func CaptureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "captures")
}

// Capture reads testdata/captures/NAME.txt (see the README there for how
// each was recorded): lines "c2b HEX" or "b2c HEX" in capture order.
func Capture(t testing.TB, name string) []Datagram {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(CaptureDir(), name+".txt"))
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	d, err := ParseCapture(string(b))
	if err != nil {
		t.Fatalf("peertest: capture %s: %v", name, err)
	}
	return d
}

// ParseCapture decodes the capture file format.
func ParseCapture(text string) ([]Datagram, error) {
	var out []Datagram
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		dir, hexText, ok := strings.Cut(line, " ")
		if !ok || (dir != "c2b" && dir != "b2c") {
			return nil, fmt.Errorf(`line %d: want "c2b HEX" or "b2c HEX"`, i+1)
		}
		b, err := hex.DecodeString(hexText)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, Datagram{FromClient: dir == "c2b", Bytes: b})
	}
	return out, nil
}
