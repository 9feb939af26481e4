package manager

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"obmd/bmc"
	"obmd/ipmi"
	"obmd/sol"
)

// ipmiConsoleInputBuffer bounds the typed bytes a node's console holds
// for the BMC (sol.ConsoleOptions.MaxPending): the per-console input
// buffer. SOL carries one packet of at most 255 characters at a time, so
// 4 KiB keeps the BMC as busy as any larger buffer while a tenancy change
// has little typed-ahead input to discard.
const ipmiConsoleInputBuffer = 4 << 10

// consoleOptions are the SOL options for this node: the configured ones,
// with the node's quirks applied.
func (d *ipmiDriver) consoleOptions() sol.ConsoleOptions {
	opts := d.cfg.SOL
	opts.Logger = d.log.With("component", "sol")
	if opts.MaxPending <= 0 {
		opts.MaxPending = ipmiConsoleInputBuffer
	}
	opts.IgnorePayloadPort = opts.IgnorePayloadPort || d.quirks.IgnoreSOLPort
	if d.quirks.IgnoreSOLPayloadSize {
		// Under the quirk the reported sizes are ignored, so any response
		// gives the quirk's size.
		if n, err := d.quirks.SOLMaxData(ipmi.ActivatePayloadRsp{}); err == nil {
			opts.MaxData = n
		}
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
	if n := con.Activation().TakeOvers; n > 0 {
		d.log.Info("took over a stale SOL activation", "takeovers", n)
		if d.counters != nil {
			d.counters.SOLTakeovers.Add(int64(n))
		}
	}
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
