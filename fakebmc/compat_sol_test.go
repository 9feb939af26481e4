package fakebmc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/internal/peertest"
	"obmd/internal/syncbuf"
	"obmd/manager"
	"obmd/sol"
	"obmd/store"
)

// The Serial-over-LAN rows of the compatibility matrix (issue 10): for each
// quirk of BMC-QUIRKS.md's "Serial over LAN" table, what ipmitool (`sol
// activate`) and FreeIPMI's ipmiconsole do on a fakebmc reproducing it,
// with no workaround flags, asserted, so that the peers' behaviour is
// documented by the test; and what obmd does, registered with no quirks:
// a gap-free counter console, the only discontinuities explicit
// "[obmd: ...]" markers where the BMC really lost output, and the quirk
// reported as detected by GET /node/{id} (manager.Status). The rule held:
// wherever ipmitool or ipmiconsole succeed, obmd succeeds too.
//
// The rows are data (solCompatRows) so they can join the session rows in
// one matrix; COMPAT.md is rendered from them and kept in step by
// TestCompatMatrixInStep (compat_doc_test.go).

// solPeerOutcome is what a peer client does on a row's BMC.
type solPeerOutcome struct {
	works bool   // it streams the console (or echoes what is typed) as it should
	says  string // text it prints, asserted ("" for none)
	what  string // the outcome in words, for the table
	// mayLosePackets: it works, but may drop whole SOL packets (a gap of
	// at most one packet's lines each time), as the row explains.
	mayLosePackets bool
}

// solCompatRow is one quirk's row.
type solCompatRow struct {
	quirk Quirk
	// echo rows type into an echo console instead of reading a counter.
	echo bool
	// config adds test hooks to the BMC's configuration.
	config func(*BMCConfig)
	// before runs once the BMC serves, before any client (state the row
	// needs, such as SOL held by a vanished client).
	before func(t *testing.T, b *BMC)
	// during runs while a client streams: what happens to a live console
	// (a steal, host resets).
	during func(t *testing.T, b *BMC)
	// silenced: during ends the console for the client unless it notices
	// (peers that "work" keep streaming; those that do not fall silent).
	silenced bool

	ipmitool, ipmiconsole solPeerOutcome
	obmd                  string // obmd's outcome in words, for the table
	// detected is the quirk obmd must report as detected ("" for none
	// required).
	detected string
}

// dropFirstDataACK loses the BMC's acknowledgement of the first console
// packet that carried characters, once: the lost ACK a strict BMC never
// repeats.
func dropFirstDataACK(c *BMCConfig) {
	var once sync.Once
	c.dropSOLToConsole = func(p sol.Packet) bool {
		drop := false
		if p.AckSeq != 0 && p.Accepted > 0 {
			once.Do(func() { drop = true })
		}
		return drop
	}
}

var solCompatRows = []solCompatRow{
	{
		quirk:       QuirkSOLPortSwapped,
		ipmitool:    solPeerOutcome{works: true, what: "works (maps the swapped port back)"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Implementation", what: "fails: BMC Implementation (maps a swapped 623 only; needs -W solport)"},
		obmd:        "works: the byte-swapped session port is the session's",
		detected:    sol.QuirkSOLPort,
	},
	{
		quirk:       QuirkSOLPort623,
		ipmitool:    solPeerOutcome{says: "Error: BMC requests SOL session on different port", what: "fails: BMC requests SOL session on different port"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Implementation", what: "fails: BMC Implementation"},
		obmd:        "works: tries both ports, keeps the session's, which answers",
		detected:    sol.QuirkSOLPort,
	},
	{
		quirk:       QuirkSOLPortBogus,
		ipmitool:    solPeerOutcome{says: "Error: BMC requests SOL session on different port", what: "fails: BMC requests SOL session on different port"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Implementation", what: "fails: BMC Implementation"},
		obmd:        "works: tries both ports, keeps the session's, which answers",
		detected:    sol.QuirkSOLPort,
	},
	{
		quirk:       QuirkSOLSize1,
		ipmitool:    solPeerOutcome{works: true, what: "works (sends 1 character per packet)"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Implementation", what: "fails: BMC Implementation (needs -W solpayloadsize)"},
		obmd:        "works: 28 characters per packet instead of the nonsense size",
		detected:    sol.QuirkSOLPayloadSize,
	},
	{
		quirk:       QuirkActivationStatusLies,
		during:      func(t *testing.T, b *BMC) { time.Sleep(3 * time.Second) }, // several keepalives
		ipmitool:    solPeerOutcome{works: true, what: "works (never asks)"},
		ipmiconsole: solPeerOutcome{works: true, what: "works (asks only before activating)"},
		// The keepalive asks Get Payload Instance Info, which this BMC
		// answers truthfully; a BMC that lies there too, or lacks it, is
		// TestConsoleIgnoresStatusThatSOLDisproves in package sol.
		obmd: "works: no teardown (Get Payload Instance Info tells the truth; a lying status is disproved by the SOL probe)",
	},
	{
		quirk:       QuirkCTSAux,
		ipmitool:    solPeerOutcome{says: "Error activating SOL payload: Invalid data field in request", what: "fails: Invalid data field in request (needs -o intelplus)"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Error", what: "fails: BMC Error (needs -W intel20)"},
		obmd:        "works: retries with the handshake bit clear",
		detected:    sol.QuirkCTSAux,
	},
	{
		quirk:       QuirkSOLStrictSeq,
		echo:        true,
		config:      dropFirstDataACK,
		ipmitool:    solPeerOutcome{works: true, what: "works (does not insist on an answer to its resend)"},
		ipmiconsole: solPeerOutcome{what: "stalls: its resend is never answered, what is typed next never arrives, no error within 4 s"},
		obmd:        "works: the unanswered resend counts as delivered; typing goes on, nothing doubled",
		detected:    sol.QuirkStrictSeq,
	},
	{
		quirk: QuirkSOLSteal,
		config: func(c *BMCConfig) {
			c.SOLStealEvery = time.Hour // stolen by the test, when it says
		},
		during: func(t *testing.T, b *BMC) {
			if err := b.StealSOL(); err != nil {
				t.Errorf("StealSOL: %v", err)
			}
		},
		silenced:    true,
		ipmitool:    solPeerOutcome{what: "output stops without a word; ipmitool carries on silent"},
		ipmiconsole: solPeerOutcome{what: "output stops without a word; ipmiconsole carries on silent"},
		obmd:        "notices within keepalive + timeout (3 s), takes SOL back, marks the gap and the takeover",
		detected:    sol.QuirkSOLStolen,
	},
	{
		quirk:       QuirkDeactivateIgnored,
		before:      func(t *testing.T, b *BMC) { leaveStale(t, b) },
		ipmitool:    solPeerOutcome{says: "Info: SOL payload already active on another session", what: "fails: SOL payload already active on another session"},
		ipmiconsole: solPeerOutcome{says: "[error received]: BMC Implementation", what: "fails: BMC Implementation (its deactivate-and-retry loop gives up)"},
		obmd:        "works: toggles SOL Enable once, then activates; says it took SOL over",
		detected:    sol.QuirkDeactivateIgnored,
	},
	{
		quirk: QuirkSOLSeqRestart,
		during: func(t *testing.T, b *BMC) {
			for range 3 { // three restarts, to land at least one "behind" by chance
				if err := b.Sim().HardReset(); err != nil {
					t.Errorf("HardReset: %v", err)
				}
				time.Sleep(300 * time.Millisecond)
			}
		},
		// ipmitool takes any number but the last as new: a restart that
		// lands on the number it last saw (1 in 15) loses that packet.
		ipmitool: solPeerOutcome{works: true, mayLosePackets: true,
			what: "works, but a restart numbered like the last packet it saw loses that packet (any number but the last is new)"},
		// ipmiconsole takes a packet numbered like the last as the BMC's
		// retransmission and shows only what goes past the last one's
		// length: the same chance of losing (most of) a packet.
		ipmiconsole: solPeerOutcome{works: true, mayLosePackets: true,
			what: "works, but a restart numbered like the last packet it saw is taken for a retransmission: all but its bytes past the last one's length are lost"},
		obmd: "works: an old number carrying new bytes is new data",
	},
}

func leaveStale(t *testing.T, b *BMC) {
	t.Helper()
	if err := b.LeaveStaleSOL(); err != nil {
		t.Fatalf("LeaveStaleSOL: %v", err)
	}
}

// startCompatBMC starts one BMC with the row's quirk and hooks, machine on,
// on a port below 32768: ipmiconsole keeps the port in a 16-bit signed
// integer and calls any higher one an invalid hostname (FreeIPMI 1.6.10).
func startCompatBMC(t *testing.T, row solCompatRow) *Fleet {
	t.Helper()
	cfg := FleetConfig{
		Count: 1,
		BMC: BMCConfig{
			Users:   []User{{Name: testUser, Password: []byte(testPass)}},
			Quirks:  Quirks{row.quirk: true},
			StartOn: true,
		},
	}
	if row.echo {
		cfg.BMC.Console = ConsoleEcho
	}
	if row.config != nil {
		row.config(&cfg.BMC)
	}
	var f *Fleet
	var err error
	for range 20 {
		cfg.Addr = fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if f, err = StartFleet(t.Context(), cfg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no free port below 32768: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	if row.before != nil {
		row.before(t, f.BMC(0))
	}
	return f
}

func compatTarget(f *Fleet) peertest.Target {
	a := f.BMC(0).Addr()
	return peertest.Target{Host: a.IP.String(), Port: a.Port, Username: testUser, Password: testPass}
}

var numberLine = regexp.MustCompile(`^[0-9]+$`)

// counterRun checks console text: counter lines must follow one another,
// except across an "[obmd: ...]" marker line; a line cut short by a
// marker (or by the end) is not judged. It returns the number of counter
// lines, the markers, and the first discontinuity not excused by a marker
// ("" if none).
func counterRun(out string) (lines int, markers []string, bad string) {
	ls := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	last := -1
	excused := true // the first line may start anywhere
	for i, l := range ls {
		switch {
		case strings.HasPrefix(l, "[obmd: "):
			markers = append(markers, l)
			excused = true
			continue
		case !numberLine.MatchString(l):
			continue // a peer's own messages
		case i == len(ls)-1 || strings.HasPrefix(ls[i+1], "[obmd: "):
			continue // cut short
		}
		v, _ := strconv.Atoi(l)
		if last >= 0 && v != last+1 && !excused && bad == "" {
			bad = fmt.Sprintf("%d after %d", v, last)
		}
		last, excused = v, false
		lines++
	}
	return lines, markers, bad
}

// maxLinesPerPacket bounds the counter lines one SOL packet can carry: at
// most 255 characters, and a counter line is at least 2 ("7\n").
const maxLinesPerPacket = 255 / 2

// widestGap is the most counter lines missing at once from out; a value
// going backwards (a duplicate) counts as a gap too, of the lines repeated.
// As in counterRun, the first line may start anywhere and the last may be
// cut short.
func widestGap(out string) int {
	widest, last, first := 0, -1, true
	ls := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	for i, l := range ls {
		v, err := strconv.Atoi(l)
		if err != nil || !numberLine.MatchString(l) || i == len(ls)-1 {
			continue
		}
		if first {
			first = false
			continue
		}
		if last >= 0 && v != last+1 {
			gap := v - last - 1
			if gap < 0 {
				gap = last - v + 1
			}
			widest = max(widest, gap)
		}
		last = v
	}
	return widest
}

// echoText is what each client types on an echo row, in two parts.
const echoFirst, echoSecond = "hello-strict\r", "world-strict\r"

// runPeer runs one peer client on a fresh BMC of the row and checks its
// outcome.
func runPeer(t *testing.T, row solCompatRow, name string, want solPeerOutcome) {
	f := startCompatBMC(t, row)
	b := f.BMC(0)
	var c *peertest.SOLClient
	if name == "ipmitool" {
		c = peertest.StartIpmitoolSOL(t, compatTarget(f), "-C", "17")
	} else {
		c = peertest.StartIpmiconsole(t, compatTarget(f), "-I", "17")
	}
	// Up and streaming, or failed: either shows within a few seconds. On
	// an echo row the client's terminal must be raw before typing, or the
	// terminal itself echoes what is typed (ipmiconsole on its pty).
	up := func() bool {
		return b.SOLActive() && (row.echo && c.Ready() || strings.Count(c.Output(), "\n") > 50)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !up() && time.Now().Before(deadline) {
		if exited, _ := c.Exited(); exited {
			break
		}
		time.Sleep(20 * time.Millisecond) // a peer process: nothing to await but its output
	}
	var afterDuring int
	switch {
	case row.echo && up():
		c.Type(echoFirst)
		c.WaitFor("hello-strict", 3*time.Second)
		c.Type(echoSecond)
		switch {
		case want.works:
			c.WaitFor("world-strict", 4*time.Second)
		case want.says != "":
			c.WaitFor(want.says, 4*time.Second)
		default:
			time.Sleep(4 * time.Second) // the time it has to show it is stuck
		}
	case row.during != nil && up():
		row.during(t, b)
		// What the BMC sent before the steal may still be on its way
		// through the peer's pipe: count from when its output first stays
		// still for 300 ms (within 3 s), then watch 2 s for more.
		afterDuring = len(c.Output())
		for quiet, end := time.Now(), time.Now().Add(3*time.Second); time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond) // a peer process: nothing to await but its output
			if n := len(c.Output()); n != afterDuring {
				afterDuring, quiet = n, time.Now()
			} else if time.Since(quiet) >= 300*time.Millisecond {
				break
			}
		}
		time.Sleep(2 * time.Second)
	case up():
		time.Sleep(time.Second)
	default:
		c.WaitFor(want.says, 5*time.Second)
	}
	r := c.Stop(5 * time.Second)
	out := r.Stdout
	lines, _, bad := counterRun(out)
	t.Logf("%s: %d counter lines, exit %d after %v; output ends:\n%s", name, lines, r.ExitCode, r.Duration.Round(time.Millisecond), tail(out, 6))
	if want.says != "" && !strings.Contains(out, want.says) {
		t.Errorf("%s does not say %q", name, want.says)
	}
	switch {
	case row.echo && want.works:
		if strings.Count(out, "hello-strict") != 1 || strings.Count(out, "world-strict") != 1 {
			t.Errorf("%s: typed lines not echoed exactly once", name)
		}
	case row.echo:
		if strings.Count(out, "hello-strict") != 1 || strings.Contains(out, "world-strict") {
			t.Errorf("%s: the first line should come back once and the second never: the row says it stalls", name)
		}
	case row.silenced:
		later, _, _ := counterRun(out[afterDuring:])
		if later > 2 { // at most what was on the way
			t.Errorf("%s got %d counter lines after the steal: the row says its output stops", name, later)
		}
		if lines < 50 {
			t.Errorf("%s streamed %d lines before the steal", name, lines)
		}
		if strings.Contains(strings.ToLower(out), "error") {
			t.Errorf("%s reported an error: the row says it notices nothing", name)
		}
	case want.works && want.mayLosePackets:
		if gap := widestGap(out); lines < 100 || gap > maxLinesPerPacket {
			t.Errorf("%s: %d lines, widest gap %d lines: the row says it works, losing at most a packet (%d lines) at a time", name, lines, gap, maxLinesPerPacket)
		} else if gap > 0 {
			t.Logf("%s lost a packet at a restart (%d lines), as the row allows", name, gap)
		}
	case want.works:
		if lines < 100 || bad != "" {
			t.Errorf("%s: %d lines, discontinuity %q: the row says it works", name, lines, bad)
		}
	default:
		if lines > 0 {
			t.Errorf("%s printed %d counter lines: the row says it fails", name, lines)
		}
	}
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// compatManager is obmd's node registry with the ipmi driver as the daemon
// has it, an in-memory store, and one node registered with no quirks.
func compatManager(t *testing.T, f *Fleet) (*manager.Manager, *manager.Access) {
	t.Helper()
	st, err := store.Open(store.InMemory, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(manager.Config{Store: st, Drivers: manager.BuiltinDrivers(), OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.EndConsoles()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
		st.Close()
	})
	info, _ := json.Marshal(map[string]any{"addr": f.Addr(0), "user": testUser, "pass": testPass})
	if err := m.Register("n", "ipmi", info); err != nil {
		t.Fatal(err)
	}
	tok, err := m.NewToken("n")
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Authorize("n", tok)
	if err != nil {
		t.Fatal(err)
	}
	return m, a
}

// readFor reads the viewer for d (its Read is ended by closing it).
func readFor(v *manager.Viewer, d time.Duration, buf *strings.Builder) {
	stop := time.AfterFunc(d, func() { v.Close() })
	defer stop.Stop()
	b := make([]byte, 4096)
	for {
		n, err := v.Read(b)
		buf.Write(b[:n])
		if err != nil {
			return
		}
	}
}

// runObmd runs obmd's console on the row's BMC: through the manager (the
// hub, its markers, the ipmi driver) for counter rows, through sol.Open on
// a session for echo rows (the manager's console is read-only).
func runObmd(t *testing.T, row solCompatRow) {
	f := startCompatBMC(t, row)
	b := f.BMC(0)
	if row.echo {
		runObmdEcho(t, row, f)
		return
	}
	m, a := compatManager(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := a.OpenConsole(ctx, 0)
	if err != nil {
		t.Fatalf("obmd could not open the console: %v", err)
	}
	var out strings.Builder
	readFor(v, time.Second, &out)
	before := out.Len()
	var took time.Duration
	if row.during != nil {
		v2, err := a.OpenConsole(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		row.during(t, b)
		if row.silenced {
			// Until obmd notices, reopens and output flows again.
			var again strings.Builder
			for time.Since(start) < 8*time.Second && !strings.Contains(again.String(), "took it over]") {
				readFor(v2, 200*time.Millisecond, &again)
				v2, err = a.OpenConsole(ctx, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
			}
			took = time.Since(start)
		}
		v2.Close()
		v3, err := a.OpenConsole(ctx, 1<<20) // everything since the start
		if err != nil {
			t.Fatal(err)
		}
		out.Reset()
		readFor(v3, 1500*time.Millisecond, &out)
	}
	lines, markers, bad := counterRun(out.String())
	t.Logf("obmd: %d counter lines (%d before), markers %q", lines, before, markers)
	if bad != "" {
		t.Errorf("obmd's console has a discontinuity no marker explains: %s", bad)
	}
	if lines < 100 {
		t.Errorf("obmd streamed %d counter lines", lines)
	}
	if row.silenced {
		t.Logf("obmd noticed, reopened and resumed %v after the steal", took.Round(time.Millisecond))
		// Keepalive interval + timeout (3 s) to notice; the reopen and
		// the first output after it take a fraction of that, given a
		// loaded machine's margin.
		if took > 6*time.Second {
			t.Errorf("obmd resumed %v after the steal; want within the keepalive interval + timeout (3 s) and a reopen", took)
		}
		if !hasMarker(markers, "console reconnected after") || !hasMarker(markers, "SOL was active for another session; took it over") {
			t.Errorf("markers %q: want the gap and the takeover marked", markers)
		}
	} else if hasMarker(markers, "reconnected") || hasMarker(markers, "reopened") {
		t.Errorf("markers %q on a console that lost nothing", markers)
	}
	if row.quirk == QuirkDeactivateIgnored {
		// The console opened over another session's activation: said in-band.
		var first strings.Builder
		v4, err := a.OpenConsole(ctx, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		readFor(v4, 300*time.Millisecond, &first)
		if !strings.Contains(first.String(), "[obmd: SOL was active for another session; took it over (Deactivate Payload was ignored") {
			t.Errorf("no takeover marker in the replay: %q", tail(first.String(), 3))
		}
	}
	checkDetected(t, m, row.detected)
}

func hasMarker(markers []string, s string) bool {
	for _, m := range markers {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// checkDetected checks that obmd reports the quirk as detected, with
// evidence, as GET /node/{id} shows it.
func checkDetected(t *testing.T, m *manager.Manager, quirk string) {
	t.Helper()
	st, err := m.Status("n")
	if err != nil {
		t.Fatal(err)
	}
	if st.Driver == nil {
		t.Fatal("no driver status")
	}
	for _, q := range st.Driver.Quirks {
		if q.Source == manager.QuirkConfigured {
			t.Errorf("quirk %s configured: the node was registered with none", q.Name)
		}
	}
	if quirk == "" {
		return
	}
	for _, q := range st.Driver.Quirks {
		if q.Name == quirk && q.Source == manager.QuirkDetected && q.Evidence != "" {
			t.Logf("detected %s: %s", q.Name, q.Evidence)
			return
		}
	}
	t.Errorf("quirk %s not reported as detected; status quirks: %+v", quirk, st.Driver.Quirks)
}

// runObmdEcho types into the echo console through sol.Open on an obmd
// session (no options: as the driver opens it, quirks none) and checks each
// line comes back once.
func runObmdEcho(t *testing.T, row solCompatRow, f *Fleet) {
	s := dial(t, f, 0)
	var mu sync.Mutex
	var learned []sol.Adaptation
	con, err := sol.Open(t.Context(), s, sol.ConsoleOptions{OnAdapt: func(a sol.Adaptation) {
		mu.Lock()
		learned = append(learned, a)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatalf("sol.Open: %v", err)
	}
	defer con.Close()
	var out syncbuf.Buffer
	go io.Copy(&out, con)
	got := out.String
	wait := func(s string) bool {
		deadline := time.Now().Add(6 * time.Second)
		for !strings.Contains(got(), s) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // the reader goroutine has no event for "this text arrived"
		}
		return strings.Contains(got(), s)
	}
	if _, err := io.WriteString(con, echoFirst); err != nil {
		t.Fatal(err)
	}
	if !wait("hello-strict") {
		t.Fatalf("obmd: first line not echoed: %q", got())
	}
	if _, err := io.WriteString(con, echoSecond); err != nil {
		t.Fatalf("obmd: typing after the lost ACK: %v", err)
	}
	if !wait("world-strict") {
		t.Fatalf("obmd: second line not echoed: %q", got())
	}
	time.Sleep(500 * time.Millisecond) // time for a duplicate to show
	if o := got(); strings.Count(o, "hello-strict") != 1 || strings.Count(o, "world-strict") != 1 {
		t.Fatalf("obmd: echo %q, want each line once", o)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range learned {
		if a.Quirk == row.detected {
			t.Logf("detected %s: %s", a.Quirk, a.Evidence)
			return
		}
	}
	t.Errorf("obmd did not detect %s: %+v", row.detected, learned)
}

// TestSOLCompatibility runs the matrix. Its cells mostly wait on peer
// processes and timers, so they run side by side (t.Run from goroutines,
// not t.Parallel, whose limit is the 2 cores'), at most compatCells at a
// time.
func TestSOLCompatibility(t *testing.T) {
	t.Parallel()
	const compatCells = 10
	sem := make(chan struct{}, compatCells)
	var wg sync.WaitGroup
	cell := func(name string, f func(t *testing.T)) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(name, f)
		})
	}
	for _, row := range solCompatRows {
		q := string(row.quirk)
		cell(q+"/ipmitool", func(t *testing.T) {
			needIpmitool(t)
			runPeer(t, row, "ipmitool", row.ipmitool)
		})
		cell(q+"/ipmiconsole", func(t *testing.T) { runPeer(t, row, "ipmiconsole", row.ipmiconsole) })
		cell(q+"/obmd", func(t *testing.T) { runObmd(t, row) })
	}
	wg.Wait()
}

// TestSOLCompatRule: wherever a peer works, obmd's row works (it always
// does: every obmd cell is a pass), and every SOL quirk fakebmc knows has
// a row.
func TestSOLCompatRowsCoverEveryQuirk(t *testing.T) {
	have := map[Quirk]bool{}
	for _, r := range solCompatRows {
		have[r.quirk] = true
	}
	for _, q := range []Quirk{QuirkSOLPortSwapped, QuirkSOLPort623, QuirkSOLPortBogus, QuirkSOLSize1,
		QuirkActivationStatusLies, QuirkCTSAux, QuirkSOLStrictSeq, QuirkSOLSteal, QuirkDeactivateIgnored, QuirkSOLSeqRestart} {
		if !have[q] {
			t.Errorf("no compatibility row for %s", q)
		}
	}
}

// renderSOLCompatTable is the SOL half of the matrix as markdown.
func renderSOLCompatTable() string {
	var b strings.Builder
	b.WriteString("## Serial over LAN\n\n")
	b.WriteString("What `ipmitool -I lanplus -C 17 sol activate` and FreeIPMI's `ipmiconsole -I 17` (no workaround flags) and obmd (node registered with no quirks: a gap-free counter console, discontinuities only at `[obmd: ...]` markers) do on a fakebmc started with `-quirks NAME`. Every cell is asserted by `TestSOLCompatibility`.\n\n")
	b.WriteString("| quirk | ipmitool | ipmiconsole | obmd | obmd reports |\n|---|---|---|---|---|\n")
	for _, r := range solCompatRows {
		det := r.detected
		if det == "" {
			det = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", r.quirk, r.ipmitool.what, r.ipmiconsole.what, r.obmd, det)
	}
	return b.String()
}
