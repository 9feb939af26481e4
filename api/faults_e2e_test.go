package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"obmd/fakebmc"
)

// Misbehaving BMCs through the REST API: fakebmc reboots, leaves a stale
// SOL payload, black-holes or fills its session table while obmd serves
// the node (cipher suite 17). What obmd must do, from the issue:
//
//   - after a BMC reboot the node's console is back within 5 s of the BMC
//     answering again, and its viewers stay connected, the gap marked in
//     the stream;
//   - a stale SOL payload is taken over;
//   - a black-holed node fails its own requests with 504 and affects no
//     other node;
//   - a full session table is a 502 that says so, for a node that needs a
//     new session only.
//
// Every wait is on an event (fakebmc's reboot, a console line, an HTTP
// answer); nothing sleeps.

// faultConsoleBound is the bound: the console is back this soon
// after the rebooted BMC answers again.
const faultConsoleBound = 5 * time.Second

// faultNode registers a node for BMC i of f and returns its token holder.
func faultNode(e *ipmiE2E, f *fakebmc.Fleet, i int, id string) e2eNode {
	e.t.Helper()
	return e2eNode{e: e, id: id, tok: e.register(id, map[string]any{
		"addr": f.Addr(i), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
	})}
}

// TestFaultBMCRebootConsoleReconnects: a viewer watches the counter while
// the BMC reboots, silent for a short and for a long while. The viewer's
// HTTP stream stays open; after the BMC answers again the counter resumes
// within faultConsoleBound, after a reconnect marker, and counts up by one
// again (the host kept counting meanwhile, so the value jumps across the
// marker).
func TestFaultBMCRebootConsoleReconnects(t *testing.T) {
	t.Parallel()
	for _, silence := range []time.Duration{2 * time.Second, 8 * time.Second} {
		t.Run(fmt.Sprintf("silent %v", silence), func(t *testing.T) {
			t.Parallel()
			f := startE2EFakeBMC(t, 1)
			e := newIPMIE2E(t) // closes before the fleet: consoles end while the BMC answers
			b := f.BMC(0)
			n := faultNode(e, f, 0, "reboot")
			ctx := within(t, silence+20*time.Second)

			r, _ := n.console(ctx)
			w := watchCounter(r)
			before, err := w.await(ctx, 0, 20)
			if err != nil {
				t.Fatalf("before the reboot: %v", err)
			}

			b.Reboot(silence)
			if err := b.WaitRebooted(ctx, 1); err != nil {
				t.Fatal(err)
			}
			back := time.Now()

			after, err := w.await(ctx, 1, 20)
			if err != nil {
				t.Fatalf("after the reboot: %v", err)
			}
			delay := after.firstAt.Sub(back)
			if delay > faultConsoleBound {
				t.Errorf("console resumed %v after the BMC answered again; want within %v", delay, faultConsoleBound)
			}
			if after.first <= before.last {
				t.Errorf("after the reconnect the counter went from %d back to %d", before.last, after.first)
			}
			if after.markerAt.Before(back) {
				t.Errorf("reconnect marker %q arrived before the BMC was back", after.marker)
			}
			t.Logf("silent %v: counter resumed %v after the BMC answered again (%d -> %d), marker %q",
				silence, delay.Round(time.Millisecond), before.last, after.first, after.marker)
		})
	}
}

// TestFaultStaleSOLTakenOver: a client that vanished left SOL active;
// the first viewer's GET console takes the payload over and streams the
// counter.
func TestFaultStaleSOLTakenOver(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 1)
	e := newIPMIE2E(t) // closes before the fleet: consoles end while the BMC answers
	b := f.BMC(0)
	if err := b.LeaveStaleSOL(); err != nil {
		t.Fatal(err)
	}
	if !b.SOLActive() {
		t.Fatal("SOL not active after LeaveStaleSOL")
	}
	n := faultNode(e, f, 0, "stale")
	ctx := within(t, 20*time.Second)

	r, _ := n.console(ctx)
	w := watchCounter(r)
	if _, err := w.await(ctx, 0, 30); err != nil {
		t.Fatalf("console over a stale SOL payload: %v", err)
	}
	if !b.SOLActive() {
		t.Error("SOL not active on the BMC while the viewer streams")
	}
	// The viewer is told, in-band, that someone else's SOL was ended.
	w.mu.Lock()
	notes := slices.Clone(w.notes)
	w.mu.Unlock()
	if len(notes) != 1 {
		t.Errorf("notes %q; want the takeover said once", notes)
	}
}

// TestFaultBlackHoleIsolated: one of two BMCs stops answering while both
// nodes have warm sessions and a console viewer each. The black-holed
// node's power_status is a 504 within the operation timeout; meanwhile
// the healthy node's power_status keeps its latency and its viewer keeps
// streaming. When the black hole ends, the node's next request succeeds
// on a new session and its console comes back to the same viewer.
// (TestIPMIBlackHoledNodeIsolated covers an address that never answered
// at all.)
func TestFaultBlackHoleIsolated(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 2)
	e := newIPMIE2E(t) // closes before the fleet: consoles end while the BMC answers
	healthy := faultNode(e, f, 0, "healthy")
	dark := faultNode(e, f, 1, "dark")
	ctx := within(t, 30*time.Second)

	for _, n := range []e2eNode{healthy, dark} {
		if got := n.powerStatus(); got != "off" { // opens the warm session
			t.Fatalf("%s power_status %q", n.id, got)
		}
	}
	baseline := healthy.latencyBaseline(5)
	hr, _ := healthy.console(ctx)
	healthyView := watchCounter(hr)
	dr, _ := dark.console(ctx)
	darkView := watchCounter(dr)
	for _, w := range []*counterWatch{healthyView, darkView} {
		if _, err := w.await(ctx, 0, 20); err != nil {
			t.Fatalf("before the black hole: %v", err)
		}
	}

	f.BMC(1).SetBlackHole(true)
	holeStart := healthyView.mark()
	darkAnswer := dark.async("GET", "power_status")
	// Until the black-holed node answers: the healthy node's power_status
	// keeps its latency, and its viewer keeps streaming (every call waits
	// for the next stretch of it, which also paces the calls).
	limit := max(20*baseline, 250*time.Millisecond)
	var a asyncAnswer
	calls := 0
measure:
	for {
		select {
		case a = <-darkAnswer:
			break measure
		default:
		}
		if d := healthy.timedPowerStatus("off"); d > limit {
			t.Errorf("healthy power_status took %v while the other BMC is a black hole (baseline %v)", d, baseline)
		}
		calls++
		if err := healthyView.awaitSince(ctx, healthyView.mark(), 100); err != nil {
			t.Fatalf("healthy viewer during the black hole: %v", err)
		}
	}
	checkBlackHoleAnswer(t, a)
	pause, lines, err := healthyView.since(holeStart)
	if err != nil {
		t.Fatalf("healthy viewer during the black hole: %v", err)
	}
	if pause > time.Second {
		t.Errorf("healthy viewer went %v without a line while the other BMC was a black hole", pause)
	}
	pauseText := "under " + stallMin.String()
	if pause >= stallMin {
		pauseText = pause.Round(time.Millisecond).String()
	}
	t.Logf("black hole: %d after %v (%s); meanwhile %d healthy power_status calls (baseline %v, limit %v) and %d healthy console lines, longest pause %s",
		a.status, a.elapsed.Round(time.Millisecond), strings.TrimSpace(a.body), calls, baseline, limit, lines, pauseText)

	// The black hole ends: the node's next request succeeds (on a new
	// session, the warm one having failed), and its viewer, still
	// connected, gets the counter again: after a reconnect marker if its
	// console noticed the silence (the SOL keepalive gives up within 3 s),
	// or on the same SOL session if that outlived it.
	darkMark := darkView.mark()
	f.BMC(1).SetBlackHole(false)
	start := time.Now()
	if got := dark.powerStatus(); got != "off" {
		t.Fatalf("power_status %q after the black hole ended", got)
	}
	answered := time.Since(start)
	if err := darkView.awaitSince(ctx, darkMark, 20); err != nil {
		t.Fatalf("black-holed node's viewer after the black hole: %v", err)
	}
	t.Logf("after the black hole: power_status answered in %v; the viewer got lines again %v after it ended (%s)",
		answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), darkView.describe())
	if _, _, err := healthyView.since(holeStart); err != nil {
		t.Errorf("healthy viewer: %v", err)
	}
}

// TestFaultSessionTableFull: a BMC whose session slots are all taken
// refuses a node that needs a new session with a 502 naming the cause,
// while a node of the same BMC holding a warm session keeps working.
func TestFaultSessionTableFull(t *testing.T) {
	t.Parallel()
	f := startE2EFakeBMC(t, 1)
	e := newIPMIE2E(t) // closes before the fleet: consoles end while the BMC answers
	warm := faultNode(e, f, 0, "warm")
	if got := warm.powerStatus(); got != "off" { // opens the warm session
		t.Fatalf("power_status %q", got)
	}
	cold := faultNode(e, f, 0, "cold")

	f.BMC(0).SetSessionTableFull(true)
	st, body := e.call("GET", cold.path("power_status"), "", false)
	if st != http.StatusBadGateway || !strings.Contains(body, "insufficient resources") {
		t.Errorf("node without a session: %d %s; want 502 saying the BMC has insufficient resources", st, body)
	}
	if strings.Contains(body, e2ePass) {
		t.Errorf("502 body shows the password: %s", body)
	}
	t.Logf("session table full: %d %s", st, strings.TrimSpace(body))
	for range 3 {
		if got := warm.powerStatus(); got != "off" {
			t.Fatalf("node with a warm session: power_status %q", got)
		}
	}
	warm.post("power_on", "")
	if !f.BMC(0).PowerOn() {
		t.Error("machine off after power_on on the warm session")
	}

	f.BMC(0).SetSessionTableFull(false)
	if got := cold.powerStatus(); got != "on" {
		t.Errorf("power_status %q once the table has room", got)
	}
}

// latencyBaseline is the slowest of several power_status calls on a
// warm session.
func (n e2eNode) latencyBaseline(calls int) time.Duration {
	n.e.t.Helper()
	var worst time.Duration
	for range calls {
		worst = max(worst, n.timedPowerStatus(""))
	}
	return worst
}

// timedPowerStatus times one power_status call; want, if set, is the
// answer expected.
func (n e2eNode) timedPowerStatus(want string) time.Duration {
	n.e.t.Helper()
	start := time.Now()
	got := n.powerStatus()
	d := time.Since(start)
	if want != "" && got != want {
		n.e.t.Fatalf("%s power_status %q, want %q", n.id, got, want)
	}
	return d
}

// checkBlackHoleAnswer: a node whose BMC never answers gets a 504 that says
// so, within the operation timeout, and never shows the BMC password.
func checkBlackHoleAnswer(t *testing.T, a asyncAnswer) {
	t.Helper()
	if a.status != http.StatusGatewayTimeout || !strings.Contains(a.body, "answer") {
		t.Errorf("black-holed node: %d %s; want 504 saying the BMC did not answer", a.status, a.body)
	}
	if a.elapsed > e2eOpTimeout+500*time.Millisecond {
		t.Errorf("black-holed node answered after %v; want within the %v operation timeout", a.elapsed, e2eOpTimeout)
	}
	if strings.Contains(a.body, e2ePass) {
		t.Errorf("504 body shows the password: %s", a.body)
	}
}

type asyncAnswer struct {
	status  int
	body    string
	elapsed time.Duration
}

// async sends a token call in the background; the channel yields its
// answer (status -1 if the request itself failed).
func (n e2eNode) async(method, route string) <-chan asyncAnswer {
	out := make(chan asyncAnswer, 1)
	url := n.e.srv.URL + n.path(route)
	go func() {
		start := time.Now()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			out <- asyncAnswer{status: -1, body: err.Error()}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- asyncAnswer{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- asyncAnswer{resp.StatusCode, string(b), time.Since(start)}
	}()
	return out
}

// counterWatch reads a console stream of counter lines in its own
// goroutine and splits it into segments at reconnect markers. Within a
// segment the values must count up by one; the line cut short by the
// loss (its tail ends with the marker's "\r\n") is allowed just before a
// marker. Any other line, a gap within a segment, or the end of the
// stream is the watch's error.
type counterWatch struct {
	mu      sync.Mutex
	segs    []counterSegment
	notes   []string // obmd's notes on how the console opened (a takeover)
	err     error
	waiting bool
	changed chan struct{} // closed at the next change while waiting
}

// counterSegment is the stream from its start, or from one reconnect
// marker, to the next marker.
type counterSegment struct {
	marker   string    // the marker line that opened it ("" for the first)
	markerAt time.Time // when the marker arrived
	firstAt  time.Time // when its first counter line arrived
	first    int       // its first and latest counter values
	last     int
	lines    int
	lastAt   time.Time // when its latest line arrived
	stalls   []stall   // pauses between lines longer than stallMin
}

type stall struct {
	at time.Time // when the line ending the pause arrived
	d  time.Duration
}

// stallMin: pauses shorter than this are not recorded (a loaded test
// machine makes pauses of tens of milliseconds).
const stallMin = 100 * time.Millisecond

var (
	markerLine  = regexp.MustCompile(`^\[obmd: console reconnected after [0-9.]+[a-zµ]+\]\r$`)
	noteLine    = regexp.MustCompile(`^\[obmd: SOL was active for another session; took it over[^\]]*\]\r$`)
	partialLine = regexp.MustCompile(`^[0-9]*\r$`)
)

func watchCounter(r *bufio.Reader) *counterWatch {
	w := &counterWatch{changed: make(chan struct{})}
	go w.run(r)
	return w
}

func (w *counterWatch) run(r *bufio.Reader) {
	cut := false // the last line was cut short by a loss: a marker must follow
	for {
		line, err := r.ReadString('\n')
		now := time.Now()
		if err != nil {
			w.fail(fmt.Errorf("console stream ended: %w", err))
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case markerLine.MatchString(line):
			cut = false
			w.update(func() error {
				w.segs = append(w.segs, counterSegment{marker: strings.TrimSuffix(line, "\r"), markerAt: now})
				return nil
			})
		case noteLine.MatchString(line):
			// How the console (re)opened: no gap of its own, the counter
			// goes on in the current segment.
			cut = false
			w.update(func() error {
				w.notes = append(w.notes, strings.TrimSuffix(line, "\r"))
				return nil
			})
		case cut:
			w.fail(fmt.Errorf("line %q follows a line cut short, not a reconnect marker", line))
			return
		case partialLine.MatchString(line):
			cut = true
		default:
			v, perr := strconv.Atoi(line)
			if perr != nil {
				w.fail(fmt.Errorf("console line %q is neither a counter value nor a reconnect marker", line))
				return
			}
			if err := w.update(func() error { return w.count(v, now) }); err != nil {
				return
			}
		}
	}
}

// count adds counter value v, read at now, to the current segment.
func (w *counterWatch) count(v int, now time.Time) error {
	if len(w.segs) == 0 {
		w.segs = append(w.segs, counterSegment{})
	}
	s := &w.segs[len(w.segs)-1]
	if s.lines > 0 && v != s.last+1 {
		return fmt.Errorf("console line %d follows %d within segment %d", v, s.last, len(w.segs)-1)
	}
	if s.lines == 0 {
		s.first, s.firstAt = v, now
	} else if d := now.Sub(s.lastAt); d >= stallMin {
		s.stalls = append(s.stalls, stall{at: now, d: d})
	}
	s.last, s.lastAt = v, now
	s.lines++
	return nil
}

// update applies f under the lock; an error from f ends the watch.
func (w *counterWatch) update(f func() error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := f()
	if err != nil && w.err == nil {
		w.err = err
	}
	if w.waiting {
		w.waiting = false
		close(w.changed)
		w.changed = make(chan struct{})
	}
	return err
}

func (w *counterWatch) fail(err error) { w.update(func() error { return err }) }

// await waits until segment seg holds at least lines counter lines and
// returns it. Reaching a later segment first (a reconnect too early) or
// the watch's error fails it.
func (w *counterWatch) await(ctx context.Context, seg, lines int) (counterSegment, error) {
	for {
		w.mu.Lock()
		switch {
		case len(w.segs) > seg+1 && w.segs[seg].lines < lines:
			w.mu.Unlock()
			return counterSegment{}, fmt.Errorf("segment %d ended after %d lines by reconnect marker %q", seg, w.segs[seg].lines, w.segs[seg+1].marker)
		case len(w.segs) > seg && w.segs[seg].lines >= lines:
			s := w.segs[seg]
			w.mu.Unlock()
			return s, nil
		case w.err != nil:
			err := w.err
			w.mu.Unlock()
			return counterSegment{}, err
		}
		w.waiting = true
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			w.mu.Lock()
			defer w.mu.Unlock()
			got := "no segment"
			if len(w.segs) > seg {
				got = strconv.Itoa(w.segs[seg].lines) + " lines"
			}
			return counterSegment{}, fmt.Errorf("waiting for %d lines in segment %d: %w (got %s)", lines, seg, ctx.Err(), got)
		}
	}
}

// awaitSince waits until n counter lines arrived after m, in m's segment
// or later ones, or the watch fails.
func (w *counterWatch) awaitSince(ctx context.Context, m watchMark, n int) error {
	for {
		w.mu.Lock()
		got := 0
		for i := max(m.seg, 0); i < len(w.segs); i++ {
			got += w.segs[i].lines
		}
		got -= m.lines
		if got >= n {
			w.mu.Unlock()
			return nil
		}
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
		w.waiting = true
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d console lines: %w (got %d)", n, ctx.Err(), got)
		}
	}
}

// describe says how many segments the stream had, with their markers.
func (w *counterWatch) describe() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.segs) <= 1 {
		return "no reconnect"
	}
	var markers []string
	for _, s := range w.segs[1:] {
		markers = append(markers, strconv.Quote(s.marker))
	}
	return "reconnected: " + strings.Join(markers, ", ")
}

// watchMark is a point in the watched stream.
type watchMark struct {
	seg, lines int
	at         time.Time
}

// mark returns the current point of the stream.
func (w *counterWatch) mark() watchMark {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := watchMark{seg: len(w.segs) - 1, at: time.Now()}
	if m.seg >= 0 {
		m.lines = w.segs[m.seg].lines
	}
	return m
}

// since reports on the stream from m on, which must still be m's segment:
// the longest pause between lines (the current one included) and the
// lines read.
func (w *counterWatch) since(m watchMark) (longest time.Duration, lines int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, 0, w.err
	}
	if len(w.segs)-1 != m.seg || m.seg < 0 {
		return 0, 0, fmt.Errorf("the console reconnected (%d segments, marker %q)", len(w.segs), w.segs[len(w.segs)-1].marker)
	}
	s := w.segs[m.seg]
	for _, st := range s.stalls {
		if st.at.After(m.at) {
			longest = max(longest, st.d)
		}
	}
	last := s.lastAt
	if m.at.After(last) {
		last = m.at
	}
	longest = max(longest, time.Since(last))
	return longest, s.lines - m.lines, nil
}
