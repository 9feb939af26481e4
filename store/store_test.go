package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	return s
}

func hashOf(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := openT(t, InMemory)
	defer s.Close()

	a := NodeRecord{ID: "node-a", Type: "mock", Info: json.RawMessage(`{"addr":"x","NumWrites":0}`)}
	b := NodeRecord{ID: "node-b", Type: "ipmi", Info: json.RawMessage(`{"addr":"10.0.0.4","user":"u","pass":"p"}`), TokenHash: hashOf("t")}
	for _, r := range []NodeRecord{b, a} {
		if _, err := s.CreateNode(r); err != nil {
			t.Fatalf("CreateNode(%s): %v", r.ID, err)
		}
	}
	if _, err := s.CreateNode(a); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateNode of an existing node: got %v, want ErrExists", err)
	}
	got, err := s.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeRecord{a, b}
	if len(got) != len(want) {
		t.Fatalf("Nodes() = %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Type != want[i].Type ||
			!bytes.Equal(got[i].Info, want[i].Info) || !bytes.Equal(got[i].TokenHash, want[i].TokenHash) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	if _, err := s.SetTokenHash("node-b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTokenHash("missing", hashOf("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetTokenHash on a missing node: got %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteNode("node-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteNode("node-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteNode: got %v, want ErrNotFound", err)
	}
	got, err = s.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "node-b" || got[0].TokenHash != nil {
		t.Errorf("after delete and clear: %+v", got)
	}
}

func TestRefusesNonDigestTokenHash(t *testing.T) {
	t.Parallel()
	s := openT(t, InMemory)
	defer s.Close()
	if _, err := s.CreateNode(NodeRecord{ID: "n", Type: "mock", Info: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	plaintext := make([]byte, 16) // what a raw 128-bit token would look like
	if _, err := s.SetTokenHash("n", plaintext); err == nil {
		t.Fatal("SetTokenHash accepted 16 bytes; only 32-byte SHA-256 digests may be stored")
	}
	if _, err := s.CreateNode(NodeRecord{ID: "m", Type: "mock", Info: json.RawMessage(`{}`), TokenHash: plaintext}); err == nil {
		t.Fatal("CreateNode accepted a 16-byte token hash")
	}
}

func TestReopenFromDisk(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "db", "nested") // created if missing
	s := openT(t, dir)
	rec := NodeRecord{ID: "n1", Type: "mock", Info: json.RawMessage(`{"addr":"a","NumWrites":3}`), TokenHash: hashOf("tok")}
	if _, err := s.CreateNode(rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	got, err := s.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "n1" || !bytes.Equal(got[0].TokenHash, rec.TokenHash) || !bytes.Equal(got[0].Info, rec.Info) {
		t.Fatalf("after reopen: %+v", got)
	}
}

// TestNoPlaintextTokenOnDisk writes a token's hash, closes the database and
// searches every file Badger left for the token in hex (both cases) and raw
// form. The hash's hex must be found, which proves the search reads the
// files the data went to.
func TestNoPlaintextTokenOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	tok := hex.EncodeToString(raw[:])
	h := hashOf(tok)

	s := openT(t, dir)
	if _, err := s.CreateNode(NodeRecord{ID: "n", Type: "mock", Info: json.RawMessage(`{"addr":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTokenHash("n", h); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var all []byte
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(all, []byte(hex.EncodeToString(h))) {
		t.Fatal("the token hash is not in the database files: the search does not see the stored data")
	}
	for _, needle := range [][]byte{[]byte(tok), []byte(strings.ToUpper(tok)), raw[:]} {
		if bytes.Contains(all, needle) {
			t.Fatalf("database files contain the plaintext token %x", needle)
		}
	}
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	t.Parallel()
	if _, err := Open("", nil); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// Check: an open store accepts the probe write (which never shows up as a
// node); a closed one is reported as such.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, path := range []string{InMemory, filepath.Join(t.TempDir(), "db")} {
		s := openT(t, path)
		if err := s.Check(context.Background()); err != nil {
			t.Fatalf("%s: Check on an open store: %v", path, err)
		}
		if err := s.Check(context.Background()); err != nil {
			t.Fatalf("%s: second Check: %v", path, err)
		}
		if nodes, err := s.Nodes(); err != nil || len(nodes) != 0 {
			t.Fatalf("%s: Nodes after probes = %v, %v; want none", path, nodes, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("%s: Check on a closed store = %v, want an error saying it is closed", path, err)
		}
	}
}
