package api

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"obmd/fakebmc"
)

// The console page in a real browser: Debian's chromium, headless, driven
// over the DevTools protocol by chromedp. The page must load from obmd
// alone (no network here: xterm.js is embedded), connect its WebSocket,
// show consecutive counter lines in the terminal's buffer, and send what
// is typed into the terminal to the machine, whose echo it shows.
// Screenshots are saved to $OBMD_TEST_ARTIFACTS (or the test's temporary
// directory).

// chromiumPath finds Debian's chromium, or skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium; .ci/run installs it)")
	return ""
}

// artifactDir is where the test's screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("OBMD_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// newBrowser starts a headless chromium with a fresh profile and no
// background network traffic (this machine has no network).
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1000, 560),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// termText is the terminal's whole buffer, one line per row.
const termText = `(() => { const b = window.obmdConsole.term.buffer.active; const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
  return out.join("\n"); })()`

// waitFor polls expr in the page until it is true (the browser gives no
// event for "the terminal shows this").
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))
}

func screenshot(t *testing.T, dir, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		png, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		p := filepath.Join(dir, name)
		t.Logf("screenshot: %s", p)
		return chromedp.Void{}, os.WriteFile(p, png, 0o644)
	}
}

// typeKeys types text as a person would: per key a keyDown that carries
// the character and a keyUp. (chromedp's SendKeys also sends a separate
// char event, which a real keyboard never does; xterm.js handles the key
// on keyDown and cancels the browser's own keypress, so the extra event
// would type every character twice.)
func typeKeys(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, r := range text {
			var down, up *input.DispatchKeyEventParams
			for _, k := range kb.Encode(r) {
				switch k.Type {
				case kb.KeyDown:
					down = k
				case kb.KeyUp:
					up = k
				case kb.KeyChar:
					if down != nil {
						down.Text, down.UnmodifiedText = k.Text, k.UnmodifiedText
					}
				}
			}
			for _, k := range []*input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, *k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// longestRun is the longest run of lines each one more than the previous.
func longestRun(text string) int {
	best, run, prev := 0, 0, -2
	for line := range strings.SplitSeq(text, "\n") {
		n, err := strconv.Atoi(strings.TrimSpace(line))
		switch {
		case err != nil:
			run, prev = 0, -2
			continue
		case n == prev+1:
			run++
		default:
			run = 1
		}
		prev = n
		best = max(best, run)
	}
	return best
}

func TestConsolePageInChromium(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	e := newIPMIE2E(t)
	counter := startE2EFakeBMC(t, 1)
	echo := startE2EFakeBMC(t, 1, func(c *fakebmc.BMCConfig) { c.Console = fakebmc.ConsoleEcho })
	reg := func(id string, f *fakebmc.Fleet) e2eNode {
		return e2eNode{e: e, id: id, tok: e.register(id, map[string]any{
			"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
		})}
	}
	cn, en := reg("counter-node", counter), reg("echo-node", echo)
	dir := artifactDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := newBrowser(t, ctx)

	// The counter: consecutive lines in the terminal's buffer.
	const wantRun = 40
	err := chromedp.Do(b,
		chromedp.Navigate(cn.consoleURL("")),
		waitFor(`window.obmdConsole && window.obmdConsole.state() === "connected"`),
		waitFor(`(`+termText+`).split("\n").filter(l => /^\d+$/.test(l.trim())).length > `+strconv.Itoa(wantRun+5)),
		screenshot(t, dir, "console-counter.png"),
	)
	if err != nil {
		t.Fatalf("counter page: %v", err)
	}
	text, err := chromedp.Run(b, chromedp.Evaluate[string](termText))
	if err != nil {
		t.Fatal(err)
	}
	if run := longestRun(text); run < wantRun {
		t.Fatalf("the terminal shows at most %d consecutive counter lines, want %d:\n%s", run, wantRun, tail(text))
	}

	// The echo console: type into the terminal, see it come back.
	const typed = "hello from chromium"
	err = chromedp.Do(b,
		chromedp.Navigate(en.consoleURL("")),
		waitFor(`window.obmdConsole && window.obmdConsole.state() === "connected"`),
		chromedp.Click(chromedp.CSS(".xterm-screen")),
		chromedp.Focus(chromedp.CSS(".xterm-helper-textarea")),
		typeKeys(typed),
		waitFor(`(`+termText+`).includes("`+typed+`")`),
		screenshot(t, dir, "console-echo.png"),
	)
	if err != nil {
		text, _ := chromedp.Run(b, chromedp.Evaluate[string](`window.obmdConsole ? window.obmdConsole.state() + "\n" + `+termText+` : "no console"`))
		t.Fatalf("echo page: %v (page state and terminal: %q; the machine got %q)", err, tail(text), echo.BMC(0).HostInput())
	}
	if got := string(echo.BMC(0).HostInput()); got != typed {
		t.Fatalf("the machine got %q, want %q", got, typed)
	}
	state, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("#state")))
	if err != nil {
		t.Fatal(err)
	}
	if state != "connected" {
		t.Fatalf("the page shows %q, want connected", state)
	}

	// A new token ends the page's console for good, and it says why.
	e.must("POST", "/node/echo-node/token", "", true, 200)
	if err := chromedp.Do(b, waitFor(`window.obmdConsole.state() === "closed"`)); err != nil {
		t.Fatalf("the page did not show the console closed after its token was replaced: %v", err)
	}
	if state, err = chromedp.Run(b, chromedp.Text(chromedp.CSS("#state"))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, "the node's token was replaced or revoked") {
		t.Fatalf("the page shows %q, want the reason", state)
	}

	// A lost connection is retried; a retry refused before the upgrade
	// (a bad token: the browser sees only a failed handshake) makes the
	// page ask for itself, and it shows obmd's reason and stops.
	err = chromedp.Do(b,
		chromedp.Navigate(cn.consoleURL("")),
		waitFor(`window.obmdConsole && window.obmdConsole.state() === "connected"`),
	)
	if err != nil {
		t.Fatalf("counter page again: %v", err)
	}
	e.dropConnections()
	// The page retries after a second: replace the token meanwhile.
	if err := chromedp.Do(b, waitFor(`window.obmdConsole.state() === "reconnecting"`)); err != nil {
		t.Fatalf("the page did not notice its connection was cut: %v", err)
	}
	e.must("POST", "/node/counter-node/token", "", true, 200)
	if err := chromedp.Do(b, waitFor(`window.obmdConsole.state() === "closed"`), screenshot(t, dir, "console-refused.png")); err != nil {
		t.Fatalf("the page did not stop after its retry was refused: %v", err)
	}
	if state, err = chromedp.Run(b, chromedp.Text(chromedp.CSS("#state"))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, "missing or invalid token") {
		t.Fatalf("the page shows %q, want obmd's refusal", state)
	}
	if text, _ := chromedp.Run(b, chromedp.Evaluate[string](termText)); !strings.Contains(text, "disconnected: connection lost; reconnecting") {
		t.Fatalf("the terminal does not mark the lost connection:\n%s", tail(text))
	}
}
