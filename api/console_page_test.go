package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedWebFilesMatchLock: the xterm.js obmd embeds is the one
// web/package-lock.json pins. `make web` copies the files from `npm ci`
// and writes web/vendor/MANIFEST; here every package line must carry the
// version and integrity the lock file has, every embedded file must have
// the manifest's SHA-256, and no file may be embedded unlisted. Where
// node_modules is present (after `make web`), the files must also equal
// the installed packages'.
func TestEmbeddedWebFilesMatchLock(t *testing.T) {
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	raw, err := os.ReadFile("web/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatal(err)
	}
	manifest := string(mustRead("web/vendor/MANIFEST"))
	listed := map[string]bool{}
	pkgs := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(manifest), "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "#"):
		case len(f) == 4 && f[0] == "package":
			want, ok := lock.Packages["node_modules/"+f[1]]
			if !ok || want.Version != f[2] || want.Integrity != f[3] {
				t.Errorf("MANIFEST has %s %s %s; package-lock.json pins %s %s (run make web)", f[1], f[2], f[3], want.Version, want.Integrity)
			}
			pkgs[f[1]] = true
		case len(f) == 5 && f[0] == "file":
			body, err := webFiles.ReadFile("web/vendor/" + f[1])
			if err != nil {
				t.Errorf("MANIFEST lists %s, which is not embedded", f[1])
				continue
			}
			sum := sha256.Sum256(body)
			if got := hex.EncodeToString(sum[:]); got != f[4] {
				t.Errorf("embedded %s has SHA-256 %s, MANIFEST says %s (run make web)", f[1], got, f[4])
			}
			if !pkgs[f[2]] {
				t.Errorf("MANIFEST lists %s from %s, a package it does not pin", f[1], f[2])
			}
			listed[f[1]] = true
			if installed, err := os.ReadFile(filepath.Join("web/node_modules", f[2], f[3])); err == nil && !bytes.Equal(installed, body) {
				t.Errorf("embedded %s differs from web/node_modules/%s/%s (run make web)", f[1], f[2], f[3])
			}
		default:
			t.Errorf("MANIFEST line %q is not understood", line)
		}
	}
	for name := range lock.Packages {
		if pkg, ok := strings.CutPrefix(name, "node_modules/"); ok && !pkgs[pkg] {
			t.Errorf("package-lock.json pins %s, which MANIFEST does not list", pkg)
		}
	}
	entries, err := fs.ReadDir(webFiles, "web/vendor")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "MANIFEST" && !listed[e.Name()] {
			t.Errorf("web/vendor/%s is embedded but not in MANIFEST", e.Name())
		}
	}
	if len(listed) == 0 {
		t.Fatal("MANIFEST lists no file")
	}
}

// TestConsolePageAndAssets: the page needs the token, carries its
// security headers, and its files are served with their types.
func TestConsolePageAndAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("m", mockInfo)
	tok := e.token("m")
	get := func(path string, html bool) *http.Response {
		r, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		if html {
			r.Header.Set("Accept", "text/html")
		}
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/node/m/console?token="+strings.Repeat("0", 32), true); r.StatusCode != 401 {
		t.Errorf("page with a wrong token: %d, want 401", r.StatusCode)
	}
	if r := get("/node/m/console?mode=x&token="+tok, true); r.StatusCode != 400 {
		t.Errorf("page with a bad mode: %d, want 400", r.StatusCode)
	}
	r := get("/node/m/console?token="+tok, true)
	for h, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": consolePageCSP,
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("page %s: %q, want %q", h, got, want)
		}
	}
	for name, ct := range map[string]string{"xterm.js": "text/javascript", "console.js": "text/javascript", "xterm.css": "text/css", "addon-fit.js": "text/javascript"} {
		r := get("/console-web/"+name, false)
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), ct) || r.Header.Get("ETag") == "" {
			t.Errorf("/console-web/%s: %d %q etag %q", name, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("ETag"))
		}
	}
	if r := get("/console-web/MANIFEST", false); r.StatusCode != 404 {
		t.Errorf("/console-web/MANIFEST: %d, want 404", r.StatusCode)
	}
}
