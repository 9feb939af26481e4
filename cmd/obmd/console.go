package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/term"
)

// obmd console URL: the terminal client of obmd's interactive console, what
// a tenant runs instead of `ipmitool sol activate`. URL is the console URL
// HIL hands out (http(s)://host/node/ID/console?token=T, or ws(s)://); the
// client speaks the console's WebSocket (see api/console_ws.go).
//
// The terminal is put in raw mode, so every key (Ctrl-C included) goes to
// the machine, and is restored on every way out: ~., the console ending,
// an error, SIGTERM, SIGHUP or SIGINT. As in ssh and ipmitool, the escape
// character (-e, default ~) is recognised only right after a newline or
// at the very start: ~. leaves, ~B sends a serial break, ~? lists the
// escapes, ~~ types one ~.
//
// Exit status, saying why the console ended:
//
//	0  left with ~. or end of input, or obmd closed the console normally
//	1  could not connect, or the connection broke
//	2  usage: bad flags, URL, token file, CA file, or a request obmd refused (400)
//	3  token missing or invalid (401), or replaced or revoked while connected (4401)
//	4  the node was deleted (4404)
//	5  obmd is shutting down (1001)
//	6  the BMC: an error opening the console (4502) or no answer (4504)
//	128+N  ended by signal N (the terminal restored first)
const (
	exitOK        = 0
	exitConnect   = 1
	exitUsage     = 2
	exitToken     = 3
	exitDeleted   = 4
	exitShutdown  = 5
	exitBMC       = 6
	exitSignalled = 128
)

func init() { registerSubcommand("console", runConsole) }

const consoleUsage = `usage: obmd console [-token-file FILE] [-cacert FILE] [-e CHAR] URL

Connects the terminal to a node's serial console through obmd. URL is the
console URL HIL gives (https://HOST/node/ID/console?token=T, or without the
token and -token-file). Escapes, right after a newline: ~. leave, ~B break,
~? help, ~~ a literal ~.
`

// consoleOptions are the client's flags and argument.
type consoleOptions struct {
	url     *url.URL // ws or wss, with the token in its query
	token   string   // to redact from messages
	caFile  string
	escape  byte // 0: none
	display string
}

func parseConsoleFlags(args []string, stderr io.Writer) (consoleOptions, error) {
	fs := flag.NewFlagSet("obmd console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, consoleUsage); fs.PrintDefaults() }
	tokenFile := fs.String("token-file", "", "read the node token from `FILE` instead of the URL's ?token=")
	caFile := fs.String("cacert", "", "trust only the CA certificates in PEM `FILE` for an https URL (a private CA)")
	esc := fs.String("e", "~", "escape `CHAR`acter, or \"none\"")
	if err := fs.Parse(args); err != nil {
		return consoleOptions{}, err
	}
	if fs.NArg() != 1 {
		return consoleOptions{}, errors.New("give exactly one console URL (see obmd console -h)")
	}
	o := consoleOptions{caFile: *caFile}
	switch {
	case *esc == "none":
	case len(*esc) == 1 && (*esc)[0] >= 0x20 && (*esc)[0] < 0x7f:
		o.escape = (*esc)[0]
	case len(*esc) == 2 && (*esc)[0] == '^' && (*esc)[1] >= '@' && (*esc)[1] <= '_':
		o.escape = (*esc)[1] - '@' // ^] and the like, as ssh allows
	default:
		return o, fmt.Errorf("-e %q: give one printable character, ^X for a control character, or none", *esc)
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil {
		return o, errors.New("the console URL does not parse; give http(s)://HOST/node/ID/console?token=T")
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return o, fmt.Errorf("the console URL's scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" || !strings.HasPrefix(u.Path, "/node/") || !strings.HasSuffix(u.Path, "/console") {
		return o, errors.New("the console URL must look like https://HOST/node/ID/console?token=T")
	}
	q := u.Query()
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return o, fmt.Errorf("-token-file: %v", err)
		}
		q.Set("token", strings.TrimSpace(string(b)))
	}
	o.token = q.Get("token")
	if o.token == "" {
		return o, errors.New("no token: give the URL with ?token=... or -token-file FILE")
	}
	u.RawQuery = q.Encode()
	o.url = u
	o.display = u.Host + u.Path
	return o, nil
}

// redact removes the token from a message (net/http puts whole URLs in
// its errors).
func (o consoleOptions) redact(s string) string {
	if o.token == "" {
		return s
	}
	return strings.ReplaceAll(s, o.token, "REDACTED")
}

func (o consoleOptions) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("-cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-cacert %s: no PEM certificate in it", o.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// consoleDialTimeout bounds connecting and the WebSocket handshake (obmd
// accepts the upgrade before it opens the console, so this does not
// include a slow BMC).
const consoleDialTimeout = 30 * time.Second

func runConsole(args []string, env commandEnv) int {
	o, err := parseConsoleFlags(args, env.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "obmd console: %v\n", o.redact(err.Error()))
		return exitUsage
	}
	client, err := o.httpClient()
	if err != nil {
		fmt.Fprintf(env.Stderr, "obmd console: %v\n", err)
		return exitUsage
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, consoleDialTimeout)
	conn, resp, err := websocket.Dial(dctx, o.url.String(), &websocket.DialOptions{HTTPClient: client})
	dcancel()
	if err != nil {
		status, msg := refusal(resp, o.redact(err.Error()))
		fmt.Fprintf(env.Stderr, "obmd console: connecting to %s: %s\n", o.display, msg)
		return status
	}
	conn.SetReadLimit(-1) // obmd sends what the console printed; no bound needed here

	s := &consoleSession{o: o, conn: conn, stdout: env.Stdout, stderr: env.Stderr}
	return s.run(ctx, env.Stdin)
}

// refusal turns a failed WebSocket handshake into an exit status and a
// message: obmd refuses a bad token (401) or request (400) before the
// upgrade with a JSON {"error": ...} body; anything else is a connection
// failure.
func refusal(resp *http.Response, dialErr string) (int, string) {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return exitConnect, dialErr
	}
	var body struct {
		Error string `json:"error"`
	}
	msg := resp.Status
	if resp.Body != nil {
		if b, err := io.ReadAll(io.LimitReader(resp.Body, 1024)); err == nil && json.Unmarshal(b, &body) == nil && body.Error != "" {
			msg = resp.Status + ": " + body.Error
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return exitToken, msg
	case http.StatusBadRequest:
		return exitUsage, msg
	case http.StatusNotFound:
		return exitDeleted, msg
	}
	return exitConnect, msg
}

// consoleSession is one connected client.
type consoleSession struct {
	o      consoleOptions
	conn   *websocket.Conn
	stdout io.Writer
	stderr io.Writer

	outMu sync.Mutex // orders writes to stdout (console output, help text)
}

// maxTypedMessage bounds one message to obmd (it takes up to 64 KiB).
const maxTypedMessage = 4 << 10

// consoleEnd is why the session ended.
type consoleEnd struct {
	status int
	msg    string // for stderr; "" for none
}

func (s *consoleSession) run(ctx context.Context, stdin io.Reader) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan consoleEnd, 3)

	// Raw mode when stdin is a terminal; restored on every path out,
	// signals included (they arrive here instead of killing us).
	restore := func() {}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		st, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			fmt.Fprintf(s.stderr, "obmd console: cannot put the terminal in raw mode: %v\n", err)
			return exitConnect
		}
		var once sync.Once
		restore = func() { once.Do(func() { term.Restore(int(f.Fd()), st) }) }
	}
	defer restore()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			n := int(sig.(syscall.Signal))
			ended <- consoleEnd{status: exitSignalled + n, msg: "ended by " + sig.String()}
		case <-ctx.Done():
		}
	}()

	fmt.Fprintf(s.stderr, "[obmd console: connected to %s; escape character is %s; %s? for help]\r\n",
		s.o.display, escapeName(s.o.escape), escapeName(s.o.escape))
	go func() { ended <- s.pumpOutput(ctx) }()
	go func() { ended <- s.pumpInput(ctx, stdin) }()

	end := <-ended
	cancel()
	restore()
	if end.status == exitOK || end.status >= exitSignalled {
		s.conn.Close(websocket.StatusNormalClosure, "")
	} else {
		s.conn.CloseNow()
	}
	if end.msg != "" {
		fmt.Fprintf(s.stderr, "\r\nobmd console: %s\n", s.o.redact(end.msg))
	}
	return end.status
}

// pumpOutput copies the console to stdout until the connection ends, and
// says why it ended.
func (s *consoleSession) pumpOutput(ctx context.Context) consoleEnd {
	for {
		typ, msg, err := s.conn.Read(ctx)
		if err != nil {
			return endFor(err)
		}
		if typ != websocket.MessageBinary {
			continue
		}
		s.outMu.Lock()
		_, werr := s.stdout.Write(msg)
		s.outMu.Unlock()
		if werr != nil {
			return consoleEnd{status: exitConnect, msg: "writing the console to stdout: " + werr.Error()}
		}
	}
}

// endFor maps how the connection ended to an exit status and message.
func endFor(err error) consoleEnd {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return consoleEnd{status: exitConnect, msg: "connection to obmd lost: " + err.Error()}
	}
	msg := "console closed: " + ce.Reason
	if ce.Reason == "" {
		msg = fmt.Sprintf("console closed (WebSocket status %d)", ce.Code)
	}
	switch ce.Code {
	case websocket.StatusNormalClosure:
		return consoleEnd{status: exitOK, msg: msg}
	case websocket.StatusGoingAway:
		return consoleEnd{status: exitShutdown, msg: msg}
	case 4400:
		return consoleEnd{status: exitUsage, msg: msg}
	case 4401:
		return consoleEnd{status: exitToken, msg: msg}
	case 4404:
		return consoleEnd{status: exitDeleted, msg: msg}
	case 4502, 4504:
		return consoleEnd{status: exitBMC, msg: msg}
	}
	return consoleEnd{status: exitConnect, msg: msg}
}

// pumpInput sends what is typed, acting on escapes, until ~. or the end of
// the input.
func (s *consoleSession) pumpInput(ctx context.Context, stdin io.Reader) consoleEnd {
	esc := newEscaper(s.o.escape)
	buf := make([]byte, maxTypedMessage)
	for {
		n, err := stdin.Read(buf)
		for _, ev := range esc.feed(buf[:n]) {
			var werr error
			switch ev.action {
			case escNone:
				werr = s.conn.Write(ctx, websocket.MessageBinary, ev.data)
			case escBreak:
				werr = s.conn.Write(ctx, websocket.MessageText, []byte(`{"type":"break"}`))
			case escHelp:
				s.outMu.Lock()
				fmt.Fprint(s.stdout, escapeHelp(s.o.escape))
				s.outMu.Unlock()
			case escQuit:
				return consoleEnd{status: exitOK}
			}
			if werr != nil {
				return consoleEnd{status: exitConnect, msg: "sending to obmd: " + werr.Error()}
			}
		}
		if err == io.EOF {
			return consoleEnd{status: exitOK} // as ipmitool: end of input leaves
		}
		if err != nil {
			return consoleEnd{status: exitConnect, msg: "reading the terminal: " + err.Error()}
		}
	}
}

func escapeName(c byte) string {
	switch {
	case c == 0:
		return "none"
	case c < 0x20:
		return "^" + string(rune(c+'@'))
	}
	return string(rune(c))
}

func escapeHelp(c byte) string {
	if c == 0 {
		return "\r\n[no escape character (-e none): close the terminal or send SIGTERM to leave]\r\n"
	}
	e := escapeName(c)
	return "\r\n[obmd console escapes, right after a newline:\r\n" +
		"  " + e + ".  leave the console\r\n" +
		"  " + e + "B  send a serial break (SysRq on Linux)\r\n" +
		"  " + e + "?  this help\r\n" +
		"  " + e + e + "  type one " + e + "]\r\n"
}
