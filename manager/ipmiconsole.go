package manager

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"obmd/bmc"
	"obmd/sol"
)

// ipmiConsoleInputBuffer bounds the typed bytes a node's console holds
// for the BMC (sol.ConsoleOptions.MaxPending): the per-console input
// buffer. SOL carries one packet of at most 255 characters at a time, so
// 4 KiB keeps the BMC as busy as any larger buffer while a tenancy change
// has little typed-ahead input to discard.
const ipmiConsoleInputBuffer = 4 << 10

// consoleOptions are the SOL options for this node: the configured ones,
// with the node's named quirks applied (explicit overrides) and what its
// consoles learned before (the auxiliary data the BMC accepted). Package
// sol adapts to every other deviation of BMC-QUIRKS.md by itself; what it
// learns is reported to noteAdaptation.
func (d *ipmiDriver) consoleOptions() sol.ConsoleOptions {
	opts := d.cfg.SOL
	opts.Logger = d.log.With("component", "sol")
	if opts.MaxPending <= 0 {
		opts.MaxPending = ipmiConsoleInputBuffer
	}
	opts.OnAdapt = d.noteAdaptation
	d.mu.Lock()
	if d.solAux != nil {
		aux := *d.solAux
		opts.Aux = &aux
	}
	d.mu.Unlock()
	opts.IgnorePayloadPort = opts.IgnorePayloadPort || d.quirks.IgnoreSOLPort
	if d.quirks.IgnoreSOLPayloadSize {
		// Under the quirk the reported sizes are ignored for a fixed one.
		opts.MaxData = sol.MaxDataForPayloadSize(bmc.DefaultSOLPayloadSize)
	}
	return opts
}

// OpenConsole activates SOL on a session of its own (taking over a stale
// activation, IPMI v2.0 section 24.1 completion code 80h) and returns the
// host's serial output. Closing it deactivates SOL and gives the session
// back to the pool.
func (d *ipmiDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, d.classify("open console", errPoolClosed)
	}
	opts := d.consoleOptions()
	con, c, err := withSession(ctx, d, "open console", func(ctx context.Context, c *bmc.Client) (*sol.Console, error) {
		s := c.Session()
		if s == nil {
			return nil, bmc.ErrClosed
		}
		return sol.Open(ctx, s, opts)
	})
	if err != nil {
		d.release(c, err)
		return nil, err
	}
	act := con.Activation()
	if act.TakeOvers > 0 {
		// It may have been a client that died, or one still running
		// (another obmd, an operator's ipmitool): say what is known.
		d.log.Info("SOL was active for another session; took it over",
			"takeovers", act.TakeOvers, "sol_enable_toggled", act.EnableToggled)
		if d.counters != nil {
			d.counters.SOLTakeovers.Add(int64(act.TakeOvers))
		}
	}
	d.mu.Lock()
	aux := act.Aux
	d.solAux = &aux // what this BMC accepts, to try first next time
	d.mu.Unlock()
	ic := &ipmiConsole{d: d, con: con, client: c}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		ic.Close()
		return nil, d.classify("open console", errPoolClosed)
	}
	d.consoles[ic] = struct{}{}
	d.mu.Unlock()
	return ic, nil
}

// ipmiConsole is an open SOL console and the session it holds.
type ipmiConsole struct {
	d      *ipmiDriver
	con    *sol.Console
	client *bmc.Client
	once   sync.Once
	// lost: the console stopped because its session stopped answering
	// (sol.ErrSessionLost), which the session itself may not know yet.
	lost atomic.Bool
}

// Notes are what viewers are told about this console's opening (the hub
// writes each as a marker line): a SOL instance taken from another
// session.
func (ic *ipmiConsole) Notes() []string {
	act := ic.con.Activation()
	switch {
	case act.TakeOvers > 0 && act.EnableToggled:
		return []string{"SOL was active for another session; took it over (Deactivate Payload was ignored: SOL Enable turned off and on)"}
	case act.TakeOvers > 0:
		return []string{"SOL was active for another session; took it over"}
	}
	return nil
}

// LastHeard is when the BMC last sent a SOL packet (output, or an answer
// to the keepalive's probe): the hub counts a console's outage from it.
func (ic *ipmiConsole) LastHeard() time.Time { return ic.con.LastHeard() }

// Read returns the host's serial output.
func (ic *ipmiConsole) Read(p []byte) (int, error) {
	n, err := ic.con.Read(p)
	if err != nil && errors.Is(err, sol.ErrSessionLost) {
		ic.lost.Store(true)
	}
	return n, err
}

// The console takes input: keystrokes and breaks go to sol.Console, whose
// MaxPending bounds what waits for the BMC's acknowledgement.
var _ ConsoleWriter = (*ipmiConsole)(nil)

// Write types p on the host's serial port through SOL (IPMI v2.0 section
// 15.9: one packet outstanding, partial accepts and NACKs resent by the
// engine), blocking while MaxPending bytes await acknowledgement.
func (ic *ipmiConsole) Write(p []byte) (int, error) { return ic.con.Write(p) }

// SendBreak sends SOL's "generate break" operation after the bytes written.
func (ic *ipmiConsole) SendBreak() error { return ic.con.SendBreak() }

// DiscardInput drops the typed bytes not yet sent to the BMC.
func (ic *ipmiConsole) DiscardInput() int { return ic.con.DiscardInput() }

// Close deactivates SOL (best effort) and returns the session to the pool
// if it is still alive. A pending Read returns at once.
//
// A console whose session was lost gives it back to nobody: the SOL
// keepalive gave up on it under its own deadline, which leaves the
// session looking alive, and a reopen that reused it would first spend
// the reuse budget on a BMC that no longer knows it. The node's idle
// sessions go too: a BMC that forgets one session (it rebooted, or its
// session table was reset) has almost always forgotten them all, and the
// console's reopen should dial at once.
func (ic *ipmiConsole) Close() error {
	ic.once.Do(func() {
		if err := ic.con.Close(); err != nil {
			ic.d.log.Debug("closing the SOL console", "err", err)
		}
		if ic.lost.Load() {
			ic.d.pool.discard(ic.client)
			if n := ic.d.pool.discardIdle(); n > 0 {
				ic.d.log.Info("console session lost; closed the node's idle sessions with it", "count", n)
			}
		} else {
			ic.d.pool.put(ic.client) // a dead session is discarded there
		}
		ic.d.mu.Lock()
		delete(ic.d.consoles, ic)
		ic.d.mu.Unlock()
	})
	return nil
}

// noteAdaptation records what a console learned about the BMC, for
// Status. The first detection of each quirk is kept, with its time; the
// evidence is the latest.
func (d *ipmiDriver) noteAdaptation(a sol.Adaptation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.learned == nil {
		d.learned = make(map[string]QuirkStatus)
	}
	q, ok := d.learned[a.Quirk]
	if !ok {
		q = QuirkStatus{Name: a.Quirk, Source: QuirkDetected, Since: time.Now().UTC()}
	}
	q.Evidence = a.Evidence
	d.learned[a.Quirk] = q
}

// consoleQuirks are the quirks the node's consoles detected, oldest
// first.
func (d *ipmiDriver) consoleQuirks() []QuirkStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]QuirkStatus, 0, len(d.learned))
	for _, q := range d.learned {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b QuirkStatus) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
