package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The console page: what a browser gets at /node/{id}/console?token=T
// (Accept naming text/html, no upgrade). It is static (the node id is read
// from the URL by its script, so nothing of the request is reflected into
// HTML) and connects back to the same URL by WebSocket. Its files are
// embedded: operators' networks are often closed, so no CDN. xterm.js
// comes from npm, pinned by web/package-lock.json; `make web` refreshes
// web/vendor from `npm ci` and writes web/vendor/MANIFEST, which a test
// checks against the lock file.

//go:embed web/console.html web/console.js web/console.css web/vendor
var webFiles embed.FS

// consolePageCSP allows the page its own scripts and styles (xterm.js
// sets inline styles), and WebSocket connections to its own origin only.
const consolePageCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webAsset is one embedded file as served.
type webAsset struct {
	body        []byte
	contentType string
	etag        string
}

// webAssets are the files under /console-web/, by name; consolePageHTML
// is the page.
var webAssets, consolePageHTML = loadWebAssets()

func loadWebAssets() (map[string]webAsset, []byte) {
	assets := map[string]webAsset{}
	add := func(name string, body []byte) {
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		assets[name] = webAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	for _, name := range []string{"console.js", "console.css"} {
		add(name, mustRead("web/"+name))
	}
	entries, err := fs.ReadDir(webFiles, "web/vendor")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		if name := e.Name(); name != "MANIFEST" {
			add(name, mustRead("web/vendor/"+name))
		}
	}
	return assets, mustRead("web/console.html")
}

func mustRead(name string) []byte {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: cannot be missing
	}
	return b
}

// wantsHTML reports whether r comes from a browser navigating to the
// console: its Accept header names text/html (curl and HIL's client send
// */*, which is the byte stream).
func wantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// consolePage serves the terminal page to a token holder. The token is
// checked here too, so a wrong one gets the same 401 as the byte stream.
func (s *server) consolePage(c *gin.Context) {
	if _, ok := s.authorize(c); !ok {
		return
	}
	if _, err := parseConsoleParams(c); err != nil {
		abortError(c, http.StatusBadRequest, err.Error())
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", consolePageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer") // the URL holds the token
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	c.Data(http.StatusOK, "text/html; charset=utf-8", consolePageHTML)
}

// consoleAsset serves the page's script, style and the embedded xterm.js.
func (s *server) consoleAsset(c *gin.Context) {
	a, ok := webAssets[c.Param("file")]
	if !ok {
		abortError(c, http.StatusNotFound, "no such file")
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache") // revalidated by ETag: a new obmd serves new files at once
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(a.body))
}
