package bench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"obmd/bmc"
	"obmd/rmcpplus"
	"obmd/sol"
)

// SOL is stop-and-wait (IPMI v2.0 section 15.9: one packet outstanding per
// direction), so each packet costs a cycle: the client's turnaround (the
// BMC's packet read from the socket -> our ACK written to it) plus the
// link's round trip (our ACK written -> the BMC's next packet read, which
// covers both kernels, the BMC's own processing and our socket's wake-up).
// A client that took no time at all would move one full packet per link
// round trip: characters per packet / mean link round trip is the protocol
// limit of the link, and the benchmark reports obmd's Console throughput
// as a fraction of it. Both halves are timed on the client's socket during
// the measured window itself, by the order of the SOL datagrams.

// SOLConfig sizes the SOL throughput benchmark.
type SOLConfig struct {
	FakeBMC  string        // the cmd/fakebmc binary
	Duration time.Duration // measured window (default 5 s)
}

// SOLResult is one SOL session's throughput from an unthrottled counter
// console in a separate fakebmc process.
type SOLResult struct {
	Bytes       int64
	Elapsed     time.Duration
	BytesPerSec float64
	Gaps        uint64  // counter defects: must be 0
	CPUPerMB    float64 // CPU seconds of the client process per 10^6 bytes
	// FakeBMCCPUPerMB is the same for the fakebmc process, for reference.
	FakeBMCCPUPerMB float64

	PacketChars int   // characters per full packet from the BMC
	Packets     int64 // SOL packets from the BMC in the window
	// Turnaround is the BMC packet read -> our ACK written time, LinkRTT
	// the ACK written -> next BMC packet read time: means and medians.
	Turnaround, TurnaroundP50 time.Duration
	LinkRTT, LinkRTTP50       time.Duration
	// LimitBytesPerSec is PacketChars / LinkRTT; Ratio is BytesPerSec over
	// it.
	LimitBytesPerSec float64
	Ratio            float64
	// CycleRatio is BytesPerSec over PacketChars / (Turnaround + LinkRTT):
	// how full the packets and how busy the cycle were, our own
	// turnaround counted as part of the round trip.
	CycleRatio float64
}

// SOLThroughput reads one SOL console, fed by `fakebmc -baud 0`, for
// cfg.Duration after a one-second warm-up.
func SOLThroughput(ctx context.Context, cfg SOLConfig) (SOLResult, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	fb, err := StartFakeBMCProcess(ctx, cfg.FakeBMC, 1, 0)
	if err != nil {
		return SOLResult{}, err
	}
	defer fb.Stop()

	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return SOLResult{}, err
	}
	tc := &solTimingConn{PacketConn: raw}
	client, err := bmc.Dial(ctx, bmc.Config{
		Addr: fb.Addr, Username: benchUser, Password: []byte(benchPassword),
		CipherSuite: 17, PacketConn: tc,
	})
	if err != nil {
		return SOLResult{}, err
	}
	defer client.Close()
	console, err := sol.Open(ctx, client.Session(), sol.ConsoleOptions{})
	if err != nil {
		return SOLResult{}, fmt.Errorf("activating SOL: %w", err)
	}
	defer console.Close()
	act := console.Activation()
	if act.Port != 0 && act.Port != raw.LocalAddr().(*net.UDPAddr).Port && act.Port != udpPort(fb.Addr) {
		return SOLResult{}, fmt.Errorf("the BMC moved SOL to port %d; the round trip is timed on the session's socket only", act.Port)
	}

	var check CounterCheck
	var total atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := console.Read(buf)
			check.Write(buf[:n])
			total.Add(int64(n))
			if err != nil {
				readErr <- err
				return
			}
		}
	}()

	select { // warm-up: the session reaches its steady state
	case <-time.After(time.Second):
	case err := <-readErr:
		return SOLResult{}, fmt.Errorf("console ended during warm-up: %w", err)
	case <-ctx.Done():
		return SOLResult{}, ctx.Err()
	}
	cpu0, err := SelfCPU()
	if err != nil {
		return SOLResult{}, err
	}
	fb0, err := ReadProcUsage(fb.PID())
	if err != nil {
		return SOLResult{}, err
	}
	bytes0, t0 := total.Load(), time.Now()
	tc.record(true)
	select {
	case <-time.After(cfg.Duration):
	case err := <-readErr:
		return SOLResult{}, fmt.Errorf("console ended during the measurement: %w", err)
	case <-ctx.Done():
		return SOLResult{}, ctx.Err()
	}
	tc.record(false)
	bytes1, elapsed := total.Load(), time.Since(t0)
	cpu1, err := SelfCPU()
	if err != nil {
		return SOLResult{}, err
	}
	fb1, err := ReadProcUsage(fb.PID())
	if err != nil {
		return SOLResult{}, err
	}
	console.Close()
	<-readErr // the reader has stopped: check is ours to read

	r := SOLResult{
		Bytes:           bytes1 - bytes0,
		Elapsed:         elapsed,
		Gaps:            check.Gaps(),
		PacketChars:     sol.MaxDataForPayloadSize(act.OutboundPayloadSize),
		FakeBMCCPUPerMB: (fb1.CPU - fb0.CPU).Seconds() / (float64(bytes1-bytes0) / 1e6),
	}
	r.BytesPerSec = float64(r.Bytes) / elapsed.Seconds()
	r.CPUPerMB = (cpu1 - cpu0).Seconds() / (float64(r.Bytes) / 1e6)
	tc.mu.Lock()
	r.Packets = tc.inSOL
	r.Turnaround, r.TurnaroundP50 = tc.turn.Mean(), tc.turn.Percentile(50)
	r.LinkRTT, r.LinkRTTP50 = tc.link.Mean(), tc.link.Percentile(50)
	tc.mu.Unlock()
	if r.Bytes == 0 || r.LinkRTT == 0 {
		return r, fmt.Errorf("no SOL data flowed in %v (%d bytes, %d packets)", elapsed, r.Bytes, r.Packets)
	}
	r.LimitBytesPerSec = float64(r.PacketChars) / r.LinkRTT.Seconds()
	r.Ratio = r.BytesPerSec / r.LimitBytesPerSec
	r.CycleRatio = r.BytesPerSec / (float64(r.PacketChars) / (r.Turnaround + r.LinkRTT).Seconds())
	return r, nil
}

// udpPort is the port of host:port, or 0.
func udpPort(addr string) int {
	_, p, err := splitHostPort(addr)
	if err != nil {
		return 0
	}
	return p
}

// solTimingConn is the client's UDP socket with a stopwatch on it: while
// recording, it times the alternation of SOL packets from the BMC and SOL
// packets (ACKs) to it. Only the packet headers are looked at, which are
// in clear even when the payload is encrypted.
type solTimingConn struct {
	net.PacketConn
	recording atomic.Bool

	mu         sync.Mutex
	inPkt      rmcpplus.Packet // reused: decoding allocates nothing
	outPkt     rmcpplus.Packet
	lastIn     time.Time // last SOL packet read, zero after an ACK
	lastOut    time.Time // last SOL packet written, zero after a read
	turn, link Histogram
	inSOL      int64
}

func (c *solTimingConn) record(on bool) {
	c.mu.Lock()
	c.lastIn, c.lastOut = time.Time{}, time.Time{}
	c.mu.Unlock()
	c.recording.Store(on)
}

func (c *solTimingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil && c.recording.Load() {
		now := time.Now()
		c.mu.Lock()
		if c.inPkt.Unmarshal(p[:n]) == nil && c.inPkt.PayloadType == rmcpplus.PayloadSOL {
			c.inSOL++
			if !c.lastOut.IsZero() {
				c.link.Record(now.Sub(c.lastOut))
			}
			c.lastIn, c.lastOut = now, time.Time{}
		}
		c.mu.Unlock()
	}
	return n, addr, err
}

func (c *solTimingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil && c.recording.Load() {
		now := time.Now()
		c.mu.Lock()
		if c.outPkt.Unmarshal(p) == nil && c.outPkt.PayloadType == rmcpplus.PayloadSOL {
			if !c.lastIn.IsZero() {
				c.turn.Record(now.Sub(c.lastIn))
			}
			c.lastOut, c.lastIn = now, time.Time{}
		}
		c.mu.Unlock()
	}
	return n, err
}
