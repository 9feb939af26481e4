package api

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"obmd/fakebmc"
	"obmd/manager"
	"obmd/sol"
)

// The interactive console end to end: a WebSocket client, obmd's API and
// manager with the ipmi driver, and fakebmc over UDP. What reaches the
// machine is read from fakebmc's host (its input record and break count),
// never through obmd.

// lossTolerantDrivers has the ipmi driver tuned for a lossy link: RMCP+
// and SOL retransmit after 100 ms and 4 ms (not 1 s and 500 ms), with
// retries enough that 10% loss never exhausts them, so a megabyte
// crosses the link in seconds. (A retransmission that races a late ACK
// on a loaded machine is a duplicate SOL drops, not a loss.)
func lossTolerantDrivers(t *testing.T) *manager.Registry {
	t.Helper()
	reg := manager.NewRegistry()
	for name, dt := range map[string]manager.DriverType{
		"mock": manager.MockDriverType(),
		"ipmi": manager.IPMIDriverType(manager.IPMIDriverConfig{
			AttemptTimeout: 100 * time.Millisecond,
			Retries:        10,
			// Retransmit after 4 ms, and give the BMC up after 5 s
			// without an answer: a machine starved by other test
			// binaries must not pass for a dead BMC (which loses the
			// input in flight, as it should).
			SOL: sol.ConsoleOptions{RetryInterval: 4 * time.Millisecond, Retries: 1250},
		}),
	} {
		if err := reg.Register(name, dt); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// echoBMC starts one fakebmc with an echo console whose host records 2 MiB
// of input and whose SOL retransmits after 4 ms (50 retry units of 80 µs)
// instead of 500 ms.
func echoBMC(t *testing.T, mutate ...func(*fakebmc.BMCConfig)) *fakebmc.Fleet {
	t.Helper()
	return startE2EFakeBMC(t, 1, append([]func(*fakebmc.BMCConfig){func(c *fakebmc.BMCConfig) {
		c.Console, c.HostInputMax, c.SOLRetryUnit = fakebmc.ConsoleEcho, 2<<20, 80*time.Microsecond
	}}, mutate...)...)
}

func (n e2eNode) consoleURL(query string) string {
	return n.e.srv.URL + n.path("console") + query
}

// drain reads a WebSocket's output until it ends, so that the server never
// waits for this client; the returned function gives what was read.
func drain(ctx context.Context, conn *websocket.Conn) func() []byte {
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		for {
			_, msg, err := conn.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			out.Write(msg)
			mu.Unlock()
		}
	}()
	return func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(out.Bytes())
	}
}

// markers are the "[obmd: ...]" lines in a viewer's output.
func markers(out []byte) []string {
	var found []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if i := strings.Index(line, "[obmd"); i >= 0 {
			found = append(found, strings.TrimSpace(line[i:]))
		}
	}
	return found
}

// TestConsoleWSTypedMegabyte: 1 MiB typed in messages of 1 byte to 4 KiB
// reaches the host complete and in order, on a clean link, through 10%
// datagram loss each way, and to a BMC that accepts only part of every
// packet.
func TestConsoleWSTypedMegabyte(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(*fakebmc.BMCConfig)
	}{
		{"clean link", func(*fakebmc.BMCConfig) {}},
		{"10% loss", func(c *fakebmc.BMCConfig) { c.Faults = fakebmc.FaultPlan{Loss: 0.1, Seed: 11} }},
		{"partial accepts", func(c *fakebmc.BMCConfig) { c.SOLAcceptMax = 100 }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newIPMIE2EWith(t, lossTolerantDrivers(t))
			f := echoBMC(t, tc.mutate)
			n := e2eNode{e: e, id: "mb", tok: e.register("mb", map[string]any{
				"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
			})}
			ctx := within(t, 90*time.Second)
			conn := dialConsole(t, ctx, n.consoleURL(""))
			output := drain(ctx, conn)

			rng := rand.New(rand.NewPCG(uint64(i), 99))
			typed := make([]byte, 1<<20)
			for j := range typed {
				typed[j] = byte(' ' + rng.IntN(95)) // printable, as a person types
			}
			start := time.Now()
			messages, ones := 0, 0
			for rest := typed; len(rest) > 0; messages++ {
				size := 1 + rng.IntN(4096)
				if rng.IntN(4) == 0 {
					size = 1 // keystrokes
					ones++
				}
				size = min(size, len(rest))
				if err := conn.Write(ctx, websocket.MessageBinary, rest[:size]); err != nil {
					t.Fatalf("after %d bytes: %v", len(typed)-len(rest), err)
				}
				rest = rest[size:]
			}
			bmc := f.BMC(0)
			if err := bmc.WaitHostInput(ctx, int64(len(typed))); err != nil {
				t.Fatalf("the host got %d of %d bytes: %v; obmd's markers to the viewer: %q",
					bmc.HostInputTotal(), len(typed), err, markers(output()))
			}
			got := bmc.HostInput()
			if !bytes.Equal(got, typed) {
				t.Fatalf("the host's input differs from what was typed at byte %d (of %d received)", firstDiff(got, typed), len(got))
			}
			t.Logf("1 MiB in %d messages (%d of 1 byte) reached the host in order in %v", messages, ones, time.Since(start).Round(time.Millisecond))
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestConsoleWSWritersNeverInterleave: two viewers typing at once: every
// message reaches the host whole, each viewer's in its order.
func TestConsoleWSWritersNeverInterleave(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	f := echoBMC(t)
	n := e2eNode{e: e, id: "two", tok: e.register("two", map[string]any{
		"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
	})}
	ctx := within(t, 60*time.Second)
	const messages = 150
	// Writer A's message k is "A<k>:" then aaa... then "\n"; B's likewise.
	msg := func(w byte, k, size int) []byte {
		b := fmt.Appendf(nil, "%c%d:", w, k)
		b = append(b, bytes.Repeat([]byte{w + 'a' - 'A'}, size)...)
		return append(b, '\n')
	}
	var wg sync.WaitGroup
	total := 0
	sizes := map[byte][]int{}
	for w, seed := range map[byte]uint64{'A': 1, 'B': 2} {
		rng := rand.New(rand.NewPCG(seed, 5))
		for range messages {
			s := 1 + rng.IntN(2000)
			sizes[w] = append(sizes[w], s)
			total += len(msg(w, len(sizes[w])-1, s))
		}
		conn := dialConsole(t, ctx, n.consoleURL(""))
		drain(ctx, conn)
		mine := sizes[w] // the map takes the other writer's sizes meanwhile
		wg.Go(func() {
			for k, s := range mine {
				if err := conn.Write(ctx, websocket.MessageBinary, msg(w, k, s)); err != nil {
					t.Errorf("writer %c: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	bmc := f.BMC(0)
	if err := bmc.WaitHostInput(ctx, int64(total)); err != nil {
		t.Fatalf("the host got %d of %d bytes: %v", bmc.HostInputTotal(), total, err)
	}
	got := bmc.HostInput()
	next := map[byte]int{}
	switches := 0
	var last byte
	for off := 0; off < len(got); {
		w := got[off]
		k := next[w]
		if (w != 'A' && w != 'B') || k >= messages {
			t.Fatalf("at byte %d: %q is not the start of a message", off, got[off:min(off+20, len(got))])
		}
		want := msg(w, k, sizes[w][k])
		if !bytes.HasPrefix(got[off:], want) {
			t.Fatalf("at byte %d: writer %c's message %d is not whole (split or interleaved): %q", off, w, k, tail(string(got[off:min(off+len(want), len(got))])))
		}
		if w != last {
			switches++
			last = w
		}
		next[w]++
		off += len(want)
	}
	if next['A'] != messages || next['B'] != messages {
		t.Fatalf("messages arrived: A %d, B %d; want %d each", next['A'], next['B'], messages)
	}
	t.Logf("%d messages from two writers, whole; the host saw the writer change %d times", 2*messages, switches)
}

// TestConsoleWSEchoReadOnlyAndBreak: typed bytes come back; a read-only
// viewer's input and break are refused; a break reaches the BMC.
func TestConsoleWSEchoReadOnlyAndBreak(t *testing.T) {
	t.Parallel()
	e := newIPMIE2E(t)
	f := echoBMC(t)
	n := e2eNode{e: e, id: "echo", tok: e.register("echo", map[string]any{
		"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
	})}
	ctx := within(t, 30*time.Second)
	bmc := f.BMC(0)
	rw := dialConsole(t, ctx, n.consoleURL(""))
	rwOut := readWS(ctx, rw)
	ro := dialConsole(t, ctx, n.consoleURL("&mode=ro"))
	roOut := readWS(ctx, ro)
	send := func(c *websocket.Conn, typ websocket.MessageType, p string) {
		t.Helper()
		if err := c.Write(ctx, typ, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}

	send(rw, websocket.MessageBinary, "hello obmd\r")
	rwOut.until(t, ctx, "hello obmd\r")
	roOut.until(t, ctx, "hello obmd\r") // every viewer sees the echo

	send(ro, websocket.MessageBinary, "refused")
	send(ro, websocket.MessageText, `{"type":"break"}`)
	roOut.until(t, ctx, string(markerReadOnly))
	// The read-only viewer's messages were handled before this one was
	// sent: once it is at the host, theirs would be too.
	send(rw, websocket.MessageBinary, "y")
	if err := bmc.WaitHostInput(ctx, int64(len("hello obmd\ry"))); err != nil {
		t.Fatal(err)
	}
	if got := string(bmc.HostInput()); got != "hello obmd\ry" {
		t.Fatalf("host input %q: the read-only viewer's input was not refused", got)
	}
	if b := bmc.Breaks(); b != 0 {
		t.Fatalf("%d breaks reached the BMC from a read-only viewer", b)
	}

	send(rw, websocket.MessageText, `{"type":"break"}`)
	if err := bmc.WaitBreaks(ctx, 1); err != nil {
		t.Fatalf("the break did not reach the BMC: %v", err)
	}
}

// TestConsoleWSRevocationClosesAll: a new token closes every WebSocket
// viewer of the node with 4401 and the reason, within 100 ms of the
// request (as for the byte stream; measured from before the request is
// sent, so the bound includes the HTTP round trip).
//
// Not parallel: it runs before this package's parallel tests, so the
// megabyte transfers above do not share its two cores.
func TestConsoleWSRevocationClosesAll(t *testing.T) {
	const (
		viewers = 50
		bound   = 100 * time.Millisecond
	)
	e := newIPMIE2E(t)
	f := startE2EFakeBMC(t, 1)
	n := e2eNode{e: e, id: "rev", tok: e.register("rev", map[string]any{
		"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
	})}
	ctx := within(t, 60*time.Second)
	type ending struct {
		at     time.Time
		code   websocket.StatusCode
		reason string
		err    error
	}
	ends := make(chan ending, viewers)
	for range viewers {
		conn := dialConsole(t, ctx, n.consoleURL(""))
		r := readWS(ctx, conn)
		r.until(t, ctx, "\n") // the console is flowing to this viewer
		go func() {
			for range r.out {
			}
			err := <-r.closed
			var ce websocket.CloseError
			ok := errorsAs(err, &ce)
			if !ok {
				ends <- ending{at: time.Now(), err: err}
				return
			}
			ends <- ending{at: time.Now(), code: ce.Code, reason: ce.Reason}
		}()
	}
	start := time.Now()
	e.must("POST", "/node/rev/token", "", true, 200)
	var slowest time.Duration
	for range viewers {
		select {
		case end := <-ends:
			if end.err != nil || end.code != closeUnauthorized || end.reason != "the node's token was replaced or revoked" {
				t.Fatalf("viewer ended with %d %q (%v), want %d and the reason", end.code, end.reason, end.err, closeUnauthorized)
			}
			slowest = max(slowest, end.at.Sub(start))
		case <-ctx.Done():
			t.Fatal("a WebSocket viewer stayed open after its token was replaced")
		}
	}
	t.Logf("%d WebSocket viewers closed with 4401 within %v of the token request", viewers, slowest)
	if slowest > bound {
		t.Errorf("the last of %d viewers closed %v after the token was replaced, want within %v", viewers, slowest, bound)
	}
	if strings.Contains(fmt.Sprint(slowest), "-") {
		t.Fatal("negative duration")
	}
}
