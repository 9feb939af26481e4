package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"obmd/bmc"
	"obmd/fakebmc"
	"obmd/sol"
)

// Console fan-out through obmd: simulated BMCs print counter lines at a
// fixed baud rate, obmd holds one SOL session per node and fans it out to
// HTTP viewers. Every viewer checks its stream line by line (no gaps
// allowed), and the viewers of timed nodes time each line from the moment
// it left the BMC, as a SOL tap in front of the BMC saw it (see soltap.go),
// to the moment the viewer read it.
//
// A reference viewer runs alongside: one more BMC of the same fleet, read
// through its own tap directly by obmd's SOL client in this process, no
// daemon in between. It is the latency of SOL alone on this machine at
// this load; obmd's share is the difference.

// ObmdScrollback is the console scrollback per node obmd keeps by default
// (manager.HubConfig.Scrollback), which the memory goal allows for on top
// of the per-node budget.
const ObmdScrollback = 64 << 10

// FanoutConfig sizes a console fan-out benchmark.
type FanoutConfig struct {
	Obmd           string // the obmd binary
	Nodes          int    // ipmi nodes (default 1)
	ViewersPerNode int    // HTTP viewers of each node's console (default 1)
	// TimedNodes is how many nodes (the first ones) are reached through a
	// SOL tap, whose viewers time every line (default min(Nodes, 50)). The
	// others are checked for gaps only; the taps' forwarding costs this
	// process CPU that obmd shares the machine with.
	TimedNodes int
	Baud       int           // counter console speed (default 115200)
	Warmup     time.Duration // after every viewer streams (default 2 s)
	// WebSocket: the viewers read the console through WebSockets (binary
	// messages) instead of the HTTP byte stream.
	WebSocket bool
	Duration  time.Duration // measured window (default 10 s)

	// startDaemon, if set, replaces starting the Obmd binary (the
	// package's profiling test runs obmd inside the test process).
	startDaemon func(context.Context) (*Daemon, error)
}

// FanoutResult is what the viewers received and what it cost obmd.
type FanoutResult struct {
	Nodes, Viewers, TimedViewers int
	Window                       time.Duration
	// Bytes is what all viewers received in the window; ExpectedBytes what
	// the consoles' baud rate allows in it, times the viewers.
	Bytes, ExpectedBytes int64
	Lines                uint64 // counter lines checked, whole run
	Gaps                 uint64 // missing, duplicated, reordered or marker lines: must be 0
	// Samples is the number of lines timed: those that left their BMC
	// inside the window, at timed nodes.
	Samples       uint64
	P50, P99, Max time.Duration
	// RefP50 and RefP99 are the reference's latency: a console of the same
	// fleet read directly by obmd's SOL client, no daemon between.
	RefP50, RefP99 time.Duration
	// Untimed counts lines a timed viewer got that no tap had recorded;
	// TapAnomalies the SOL packets a tap could not follow; Late the timed
	// viewers that had not received the window's last line 5 s after it
	// closed. All must be 0, or the latency figures are incomplete.
	Untimed, TapAnomalies uint64
	Late                  int
	// ACKP50 and ACKP99 time obmd's SOL turnaround at the tapped nodes:
	// a BMC data packet passing the tap to obmd's ACK of it passing the
	// tap. Retransmits counts the data packets tapped BMCs sent again.
	ACKP50, ACKP99 time.Duration
	Retransmits    uint64
	// EmittedRate is what the tapped BMCs sent, per console, over the
	// baud rate's characters per second: below 1 means the consoles were
	// held back (SOL flow control, or a starved simulator).
	EmittedRate float64
	ObmdCores   float64 // obmd CPU seconds per second of the window
	// BenchCores is the same for this process: the simulated BMCs, the
	// viewers and the taps, which share the machine with obmd.
	BenchCores           float64
	ObmdRSS, ObmdRSSBase int64 // obmd resident memory at the end and before any node
	RSSPerNode           int64 // (ObmdRSS - ObmdRSSBase) / Nodes
	RSSPerViewer         int64 // (ObmdRSS - ObmdRSSBase) / Viewers
}

// fanoutNode is one node's console as the viewers see it.
type fanoutNode struct {
	id, token string
	log       *emissionLog // nil: not timed
}

// viewer is one console stream (HTTP from obmd, or the reference SOL
// client) and its checks.
type viewer struct {
	node     *fanoutNode
	body     io.ReadCloser
	check    CounterCheck
	hist     Histogram
	bytes    atomic.Int64
	untimed  uint64
	sawFirst bool
	// first is closed at the first counter line, pastEnd at the first line
	// that left the BMC after the window (at once for an untimed node),
	// done when the reader stops.
	first, pastEnd, done chan struct{}
	closing              atomic.Bool // the benchmark is closing the stream
	err                  error       // why the reader stopped; read after done
}

func newViewer(n *fanoutNode, body io.ReadCloser) *viewer {
	v := &viewer{node: n, body: body, first: make(chan struct{}), pastEnd: make(chan struct{}), done: make(chan struct{})}
	if n.log == nil {
		close(v.pastEnd)
	}
	return v
}

// stop closes the stream from the benchmark's side.
func (v *viewer) stop() {
	v.closing.Store(true)
	v.body.Close()
}

// fanoutWindow is the measured window, as Unix nanoseconds; lines that
// left their BMC inside it are timed.
type fanoutWindow struct{ start, end atomic.Int64 }

func (w *fanoutWindow) contains(t time.Time) bool {
	s, e := w.start.Load(), w.end.Load()
	n := t.UnixNano()
	return s != 0 && n >= s && (e == 0 || n < e)
}

// ConsoleFanout runs one fan-out benchmark.
func ConsoleFanout(ctx context.Context, cfg FanoutConfig) (FanoutResult, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 1
	}
	if cfg.ViewersPerNode <= 0 {
		cfg.ViewersPerNode = 1
	}
	if cfg.TimedNodes <= 0 {
		cfg.TimedNodes = 50
	}
	cfg.TimedNodes = min(cfg.TimedNodes, cfg.Nodes)
	if cfg.Baud <= 0 {
		cfg.Baud = fakebmc.DefaultBaud
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 2 * time.Second
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if _, err := RaiseFileLimit(uint64(cfg.Nodes*(cfg.ViewersPerNode+2)) + 4096); err != nil {
		return FanoutResult{}, err
	}
	bytesPerSec := float64(cfg.Baud) / 10 // 8N1: ten bits per character
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// BMCs 0..Nodes-1 are obmd's nodes; BMC Nodes is the reference.
	fleet, err := startFleet(ctx, cfg.Nodes+1, cfg.Baud)
	if err != nil {
		return FanoutResult{}, err
	}
	defer fleet.Close()
	// A tap records a few SOL packets per feeding tick; this is room for
	// a whole run at up to 500 packets a second.
	tapCapacity := int((cfg.Warmup + cfg.Duration + time.Minute).Seconds() * 500)
	var taps []*solTap
	defer func() {
		for _, t := range taps {
			t.Close()
		}
	}()
	addrs := make([]string, cfg.Nodes+1)
	for i := range addrs {
		addrs[i] = fleet.Addr(i)
		if i < cfg.TimedNodes || i == cfg.Nodes {
			t, err := startSOLTap(fleet.BMC(i).Addr(), []byte(benchPassword), tapCapacity)
			if err != nil {
				return FanoutResult{}, err
			}
			taps = append(taps, t)
			addrs[i] = t.Addr()
		}
	}
	logOf := func(i int) *emissionLog {
		if i < cfg.TimedNodes {
			return taps[i].log
		}
		return nil
	}

	start := cfg.startDaemon
	if start == nil {
		start = func(ctx context.Context) (*Daemon, error) { return StartDaemon(ctx, cfg.Obmd) }
	}
	d, err := start(ctx)
	if err != nil {
		return FanoutResult{}, err
	}
	defer d.Stop()
	base, err := d.Usage()
	if err != nil {
		return FanoutResult{}, err
	}
	nodes := make([]*fanoutNode, cfg.Nodes)
	err = forEach(cfg.Nodes, 32, func(i int) error {
		if err := d.RegisterIPMI(ctx, nodeID(i), addrs[i]); err != nil {
			return err
		}
		tok, err := d.NewToken(ctx, nodeID(i))
		nodes[i] = &fanoutNode{id: nodeID(i), token: tok, log: logOf(i)}
		return err
	})
	if err != nil {
		return FanoutResult{}, fmt.Errorf("registering %d ipmi nodes: %w", cfg.Nodes, err)
	}

	var window fanoutWindow
	var viewers []*viewer // obmd's viewers
	var vmu sync.Mutex
	var ref *viewer // the reference: a direct SOL client
	defer func() {
		for _, v := range append(viewers, ref) {
			if v != nil {
				v.stop()
				<-v.done
			}
		}
	}()
	open := d.OpenConsole
	if cfg.WebSocket {
		open = d.OpenConsoleWS
	}
	connect := func(n *fanoutNode) error {
		body, err := open(ctx, n.id, n.token)
		if err != nil {
			return err
		}
		v := newViewer(n, body)
		vmu.Lock()
		viewers = append(viewers, v)
		vmu.Unlock()
		go v.run(&window)
		return nil
	}
	waitFirst := func(vs []*viewer) error {
		limit := time.After(30 * time.Second)
		for _, v := range vs {
			select {
			case <-v.first:
			case <-v.done:
				return fmt.Errorf("console of %s ended before its first line: %v", v.node.id, v.err)
			case <-limit:
				return fmt.Errorf("console of %s: no counter line within 30 s", v.node.id)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	refConsole, err := openDirectConsole(ctx, addrs[cfg.Nodes])
	if err != nil {
		return FanoutResult{}, fmt.Errorf("reference console: %w", err)
	}
	ref = newViewer(&fanoutNode{id: "reference", log: taps[len(taps)-1].log}, refConsole)
	go ref.run(&window)
	// First viewers open the SOL sessions; then the others join the
	// running consoles.
	if err := forEach(cfg.Nodes, 64, func(i int) error { return connect(nodes[i]) }); err != nil {
		return FanoutResult{}, fmt.Errorf("first viewers: %w", err)
	}
	if err := waitFirst(append([]*viewer{ref}, viewers...)); err != nil {
		return FanoutResult{}, err
	}
	if cfg.ViewersPerNode > 1 {
		extra := cfg.Nodes * (cfg.ViewersPerNode - 1)
		if err := forEach(extra, 64, func(i int) error { return connect(nodes[i%cfg.Nodes]) }); err != nil {
			return FanoutResult{}, fmt.Errorf("more viewers: %w", err)
		}
		if err := waitFirst(viewers); err != nil {
			return FanoutResult{}, err
		}
	}

	select { // everyone is streaming: let it settle
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
		return FanoutResult{}, ctx.Err()
	}
	u0, err := d.Usage()
	if err != nil {
		return FanoutResult{}, err
	}
	self0, err := SelfCPU()
	if err != nil {
		return FanoutResult{}, err
	}
	bytes0 := sumViewerBytes(viewers)
	t0 := time.Now()
	window.start.Store(t0.UnixNano())
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		return FanoutResult{}, ctx.Err()
	}
	t1 := time.Now()
	window.end.Store(t1.UnixNano())
	u1, err := d.Usage()
	if err != nil {
		return FanoutResult{}, err
	}
	self1, err := SelfCPU()
	if err != nil {
		return FanoutResult{}, err
	}
	bytes1 := sumViewerBytes(viewers)
	// Lines sent just before the window's end are still in flight: wait
	// until every timed viewer has a line sent after it.
	late := 0
	lateLimit := time.After(5 * time.Second)
	for _, v := range append(viewers, ref) {
		select {
		case <-v.pastEnd:
		case <-v.done:
		case <-lateLimit:
			late++
		}
	}
	r := FanoutResult{
		Nodes: cfg.Nodes, Viewers: len(viewers), Window: t1.Sub(t0),
		Bytes:       bytes1 - bytes0,
		Late:        late,
		ObmdCores:   (u1.CPU - u0.CPU).Seconds() / t1.Sub(t0).Seconds(),
		BenchCores:  (self1 - self0).Seconds() / t1.Sub(t0).Seconds(),
		ObmdRSS:     u1.RSS,
		ObmdRSSBase: base.RSS,
	}
	r.ExpectedBytes = int64(bytesPerSec * r.Window.Seconds() * float64(len(viewers)))
	var hist Histogram
	for _, v := range append(viewers, ref) {
		v.stop()
		<-v.done
		if v.err != nil && !errors.Is(v.err, errViewerClosed) {
			return r, fmt.Errorf("viewer of %s failed: %w", v.node.id, v.err)
		}
		r.Gaps += v.check.Gaps()
		r.Untimed += v.untimed
		if v == ref {
			continue
		}
		if v.node.log != nil {
			r.TimedViewers++
		}
		hist.Merge(&v.hist)
		r.Lines += v.check.Lines
	}
	var rates []float64
	var acks Histogram
	for _, t := range taps[:len(taps)-1] { // the reference's tap is not obmd's
		t.ackMu.Lock()
		acks.Merge(&t.ackRTT)
		t.ackMu.Unlock()
		r.Retransmits += uint64(t.Retransmits.Load())
	}
	r.ACKP50, r.ACKP99 = acks.Percentile(50), acks.Percentile(99)
	for _, t := range taps {
		r.TapAnomalies += uint64(t.Anomalies.Load() + t.log.overflow.Load())
		if rate, ok := t.log.rate(t0, t1); ok {
			rates = append(rates, rate/bytesPerSec)
		}
	}
	if len(rates) > 0 {
		var sum float64
		for _, x := range rates {
			sum += x
		}
		r.EmittedRate = sum / float64(len(rates))
	}
	r.Samples = hist.Count()
	r.P50, r.P99, r.Max = hist.Percentile(50), hist.Percentile(99), hist.Max()
	r.RefP50, r.RefP99 = ref.hist.Percentile(50), ref.hist.Percentile(99)
	r.RSSPerNode = (r.ObmdRSS - r.ObmdRSSBase) / int64(r.Nodes)
	r.RSSPerViewer = (r.ObmdRSS - r.ObmdRSSBase) / int64(r.Viewers)
	return r, nil
}

// directConsole is obmd's SOL client on its own session: the reference
// viewer. Close ends both.
type directConsole struct {
	*sol.Console
	client *bmc.Client
}

func (c directConsole) Close() error {
	err := c.Console.Close()
	c.client.Close()
	return err
}

func openDirectConsole(ctx context.Context, addr string) (io.ReadCloser, error) {
	client, err := dialBMC(ctx, addr)
	if err != nil {
		return nil, err
	}
	con, err := sol.Open(ctx, client.Session(), sol.ConsoleOptions{})
	if err != nil {
		client.Close()
		return nil, err
	}
	return directConsole{Console: con, client: client}, nil
}

func sumViewerBytes(vs []*viewer) int64 {
	var n int64
	for _, v := range vs {
		n += v.bytes.Load()
	}
	return n
}

// errViewerClosed marks a reader stopped by the benchmark itself.
var errViewerClosed = errors.New("viewer closed by the benchmark")

// run reads the stream until it is closed, timing the lines of a timed
// node that left the BMC inside the window.
func (v *viewer) run(window *fanoutWindow) {
	defer close(v.done)
	var now time.Time
	var cursor *emissionCursor
	if v.node.log != nil {
		cursor = &emissionCursor{log: v.node.log}
	}
	passed := false
	v.check.OnLine = func(line uint64) {
		if !v.sawFirst {
			v.sawFirst = true
			close(v.first)
		}
		if cursor == nil || window.start.Load() == 0 {
			return
		}
		sent, ok := cursor.at(line)
		if !ok {
			v.untimed++
			return
		}
		if window.contains(sent) {
			v.hist.Record(now.Sub(sent))
		} else if end := window.end.Load(); !passed && end != 0 && sent.UnixNano() >= end {
			passed = true
			close(v.pastEnd)
		}
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := v.body.Read(buf)
		if n > 0 {
			now = time.Now()
			v.check.Write(buf[:n])
			v.bytes.Add(int64(n))
		}
		if err != nil {
			if v.closing.Load() {
				err = errViewerClosed
			}
			v.err = err
			return
		}
	}
}
