package fakebmc

import (
	"context"
	"io"
	"sync"
	"time"

	"obmd/sol"
)

// The simulated host's serial port.
//
// Counter mode: the host prints "0\n1\n2\n..." at the configured baud rate
// (10 bits per character, 8N1), whether or not anyone listens. While no SOL
// session is attached the output is dropped, as on a real serial port with
// nothing on the other end: the count keeps advancing with time (computed
// on attach, in constant time, not by a running goroutine), and a listener
// that attaches starts at the next whole line. While a session is attached
// the host never loses a character: when SOL's buffer is full (or the
// console deasserts CTS) the host waits, like hardware flow control, so
// every value appears exactly once and a gap seen by a client is the
// client's or the network's doing. With UnlimitedBaud the host prints as
// fast as SOL takes it and does not count while unattached.
//
// Echo mode: every byte typed into SOL comes back as output, in order; a
// host that cannot write back stops reading, and SOL then NACKs the
// console (flow control end to end).
//
// In both modes the bytes typed reach the host's input record
// (BMC.HostInput) in order.
//
// Cost: an unattached console owns no goroutine. An attached one owns a
// reader goroutine and, in counter mode, a writer goroutine woken by the
// fleet's shared ticker (consoleHub), so a thousand consoles share one
// timer. The BMC forwards the host's output in whole SOL packets (see
// produce), so a console at 115200 baud costs 45 packets a second, the
// fewest SOL allows, each one datagram out and one acknowledgement in: at
// a thousand consoles those datagrams, not the simulation, are the cost.

// consoleTick is how often the hub wakes attached counter consoles: at
// 115200 baud one tick is 576 characters, two full SOL packets (the
// second leaves when the first is acknowledged, from the session's
// reader, so a tick wakes the host's writer once for two packets). It is
// shorter than SOL's default character accumulate interval (60 ms): a
// character waits for the BMC about as long as on a real one.
const consoleTick = 50 * time.Millisecond

// solStartDelay holds output back right after activation, so the Activate
// Payload response reaches the client before the first SOL packet.
const solStartDelay = 20 * time.Millisecond

// hostInputMax bounds the input record.
const hostInputMax = 64 << 10

// solPacketChars is the most characters the BMC puts in one SOL packet
// (its outbound payload size less the header): the host's output is
// forwarded in runs of it.
var solPacketChars = sol.MaxDataForPayloadSize(int(solOutboundPayloadSize))

// solAccumulateInterval is how long the BMC holds characters back waiting
// for a whole packet's worth: the default character accumulate interval
// of SOL configuration parameter 3 (IPMI v2.0 Table 26-5), 60 ms. At
// 115200 baud a packet fills in 22 ms; slower consoles send what 60 ms
// brought.
const solAccumulateInterval = 60 * time.Millisecond

// unlimitedChunk is what an UnlimitedBaud counter prints per write (SOL
// is always backlogged then, so its packets are full anyway).
const unlimitedChunk = 4 << 10

// hostPort is the BMC end of an active SOL payload as the host sees its
// serial port: Write blocks while SOL holds as much as it will, Read
// returns what the console typed, Close ends SOL. *sol.BMCEndpoint is one.
type hostPort interface {
	io.ReadWriter
	Close() error
}

// console is one BMC's serial port and the host program behind it.
type console struct {
	hub         *consoleHub
	mode        ConsoleMode
	bytesPerSec float64 // 0: unlimited

	mu      sync.Mutex
	counter *counterStream
	last    time.Time // the counter is up to date as of last
	budget  float64   // characters the host may print now
	sent    time.Time // when characters last went to SOL (or SOL attached)
	out     []byte    // reused output buffer (SOL copies what it is given)
	input   []byte    // typed bytes received, most recent inputMax
	att     *attachment

	inputMax int           // bound of input
	typed    int64         // bytes ever typed
	breaks   int           // serial breaks received
	inputCh  chan struct{} // closed and replaced when typed or breaks grow
}

// attachment is one SOL session on the serial port.
type attachment struct {
	port hostPort
	stop chan struct{} // closed by detach
	wg   sync.WaitGroup
}

func newConsole(hub *consoleHub, mode ConsoleMode, baud int) *console {
	c := &console{hub: hub, mode: mode, counter: newCounterStream(), last: time.Now(),
		inputMax: hostInputMax, inputCh: make(chan struct{})}
	if baud > 0 {
		c.bytesPerSec = float64(baud) / 10
	}
	return c
}

// attach connects SOL to the serial port and starts the host's goroutines.
// The caller detaches any previous attachment first.
func (c *console) attach(p hostPort, now time.Time) {
	a := &attachment{port: p, stop: make(chan struct{})}
	c.mu.Lock()
	if c.mode == ConsoleCounter {
		c.catchUpLocked(now)
		c.counter.SkipToLineStart()
	}
	c.budget = 0
	c.last = now.Add(solStartDelay) // output starts after the delay
	c.sent = c.last
	c.att = a
	c.mu.Unlock()
	a.wg.Add(1)
	go c.readInput(a)
	if c.mode == ConsoleCounter {
		a.wg.Add(1)
		go c.printCounter(a, now.Add(solStartDelay))
	}
}

// detach closes SOL port p and waits for the host's goroutines; the host
// goes on printing to nobody. It does nothing if p is no longer attached.
func (c *console) detach(p hostPort, now time.Time) {
	c.mu.Lock()
	a := c.att
	if a == nil || a.port != p {
		c.mu.Unlock()
		return
	}
	c.att = nil
	c.mu.Unlock()
	close(a.stop)
	_ = a.port.Close() // unblocks Write and Read
	a.wg.Wait()
	c.mu.Lock()
	c.last = now
	c.mu.Unlock()
}

// catchUpLocked advances an unattached counter by the characters printed
// to nobody since c.last.
func (c *console) catchUpLocked(now time.Time) {
	if c.bytesPerSec > 0 && now.After(c.last) {
		c.counter.Skip(uint64(now.Sub(c.last).Seconds() * c.bytesPerSec))
	}
	c.last = now
}

// printCounter is the counter host's writer while attached: each hub tick
// it prints what the baud rate allows since the last tick and writes it to
// SOL, blocking while SOL is full (the host waits; nothing is skipped).
func (c *console) printCounter(a *attachment, start time.Time) {
	defer a.wg.Done()
	select {
	case <-a.stop:
		return
	case <-time.After(time.Until(start)):
	}
	if c.bytesPerSec > 0 {
		c.hub.subscribe()
		defer c.hub.unsubscribe()
	}
	for {
		if c.bytesPerSec > 0 {
			select {
			case <-a.stop:
				return
			case <-c.hub.next():
			}
		} else {
			select {
			case <-a.stop:
				return
			default:
			}
		}
		buf := c.produce(time.Now())
		if len(buf) == 0 {
			continue
		}
		if _, err := a.port.Write(buf); err != nil {
			return // SOL closed
		}
	}
}

// produce returns what the host printed by now and the BMC forwards: the
// baud rate's worth since the last call (capped at 100 ms of output, so a
// host held back by flow control does not burst), in whole SOL packets,
// or all of it once the oldest character has waited the accumulate
// interval; with UnlimitedBaud a fixed chunk. The result is valid
// until the next call.
func (c *console) produce(now time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	if c.bytesPerSec == 0 {
		n = unlimitedChunk
	} else {
		elapsed := max(now.Sub(c.last).Seconds(), 0)
		c.budget = min(c.budget+elapsed*c.bytesPerSec, max(c.bytesPerSec/10, 64))
		n = int(c.budget)
		if n < solPacketChars && now.Sub(c.sent) < solAccumulateInterval {
			n = 0 // wait for a whole packet, or the interval
		} else if n >= solPacketChars {
			n -= n % solPacketChars
		}
		c.budget -= float64(n)
	}
	c.last = now
	if n == 0 {
		return nil
	}
	c.sent = now
	if cap(c.out) < n {
		c.out = make([]byte, n)
	}
	buf := c.out[:n]
	c.counter.Read(buf)
	return buf
}

// readInput is the host's reader while attached: typed bytes go to the
// input record and, in echo mode, straight back out.
func (c *console) readInput(a *attachment) {
	defer a.wg.Done()
	buf := make([]byte, 512)
	for {
		n, err := a.port.Read(buf)
		if n > 0 {
			c.record(buf[:n])
			if c.mode == ConsoleEcho {
				if _, werr := a.port.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // SOL closed
		}
	}
}

func (c *console) record(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.input = append(c.input, b...)
	if over := len(c.input) - c.inputMax; over > 0 {
		c.input = append(c.input[:0:0], c.input[over:]...)
	}
	c.typed += int64(len(b))
	c.notifyInputLocked()
}

func (c *console) notifyInputLocked() {
	close(c.inputCh)
	c.inputCh = make(chan struct{})
}

// noteBreak records a serial break from the console.
func (c *console) noteBreak() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.breaks++
	c.notifyInputLocked()
}

func (c *console) inputTotal() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.typed
}

func (c *console) breakCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.breaks
}

// waitInput waits until done (which takes c.mu itself) holds, checking it
// each time input or a break arrives, or until ctx ends.
func (c *console) waitInput(ctx context.Context, done func() bool) error {
	for {
		c.mu.Lock()
		ch := c.inputCh
		c.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hostInput returns a copy of the input record.
func (c *console) hostInput() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.input...)
}

// consoleHub is a fleet's shared ticker: every consoleTick it wakes all
// attached counter consoles at once (one timer for the fleet, not one per
// console). Its goroutine runs only while some console subscribes.
type consoleHub struct {
	mu      sync.Mutex
	subs    int
	tick    chan struct{} // closed at the next tick, then replaced
	running bool
	closed  bool
	stop    chan struct{}
}

func newConsoleHub() *consoleHub {
	return &consoleHub{tick: make(chan struct{}), stop: make(chan struct{})}
}

func (h *consoleHub) subscribe() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs++
	if !h.running && !h.closed {
		h.running = true
		go h.loop()
	}
}

func (h *consoleHub) unsubscribe() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs--
}

// next returns a channel closed at the next tick.
func (h *consoleHub) next() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tick
}

func (h *consoleHub) loop() {
	t := time.NewTicker(consoleTick)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.mu.Lock()
			close(h.tick)
			h.tick = make(chan struct{})
			if h.subs == 0 {
				h.running = false
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
		}
	}
}

// close stops the ticker. Consoles must be detached first.
func (h *consoleHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
}
