package sol

import (
	"context"
	"io"
	"math"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEngineThroughput moves 1 MiB from a BMC-side Engine to a
// console-side Engine wired back to back (no network, no goroutines): the
// cost of the sequencing rules alone.
func BenchmarkEngineThroughput(b *testing.B) {
	const size = 1 << 20
	data := randomStream(1, size)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		bmc := NewEngine(Config{Role: BMCSide})
		console := NewEngine(Config{Role: ConsoleSide})
		now := t0
		received := 0
		var toConsole, toBMC []Packet
		toConsole = append(toConsole, bmc.Write(now, data).Send...)
		for received < size {
			for len(toConsole) > 0 {
				p := toConsole[0]
				toConsole = toConsole[1:]
				o := console.Receive(now, p)
				received += len(o.Deliver)
				toBMC = append(toBMC, o.Send...)
				toBMC = append(toBMC, console.Consume(now, len(o.Deliver)).Send...)
			}
			for len(toBMC) > 0 {
				p := toBMC[0]
				toBMC = toBMC[1:]
				toConsole = append(toConsole, bmc.Receive(now, p).Send...)
			}
		}
	}
}

// BenchmarkConsoleEndpoint moves 1 MiB from a BMCEndpoint to a Console over
// an instant in-memory network, with real goroutines and timers: the cost
// of the two shells and the engines, without RMCP+.
func BenchmarkConsoleEndpoint(b *testing.B) {
	const size = 1 << 20
	data := randomStream(2, size)
	b.SetBytes(size)
	for b.Loop() {
		r := newRig(rigConfig{latency: -1, inbound: 259, outbound: 259})
		c, err := Open(context.Background(), r.sess, ConsoleOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ep := r.bmc.endpoint()
		go ep.Write(data)
		if _, err := io.CopyN(io.Discard, c, size); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// fleet runs n BMCEndpoints whose hosts each print chunk bytes every 10 ms
// (chunk = baud/1000 is the line rate at 10 bits per character), rounds
// times, against console-side Engines that acknowledge at once. It waits
// until everything is delivered and returns the process CPU time used and
// the wall time taken.
func fleet(tb testing.TB, n, chunk, rounds int) (cpu, wall time.Duration) {
	type client struct {
		ep *BMCEndpoint
		e  *Engine
	}
	clients := make([]*client, n)
	type msg struct {
		c *client
		b []byte
	}
	wire := make(chan msg, 4*n)
	for i := range clients {
		c := &client{e: NewEngine(Config{Role: ConsoleSide})}
		c.ep = NewBMCEndpoint(EndpointConfig{
			Send:    func(b []byte) error { wire <- msg{c, append([]byte(nil), b...)}; return nil },
			MaxData: MaxCharacters,
		})
		clients[i] = c
	}
	total := int64(n * chunk * rounds)
	allDelivered := make(chan struct{})
	go func() { // the consoles: acknowledge and consume everything
		var delivered int64
		for m := range wire {
			p, err := ParsePacket(m.b)
			if err != nil {
				tb.Error(err)
				return
			}
			o := m.c.e.Receive(time.Now(), p)
			delivered += int64(len(o.Deliver))
			o2 := m.c.e.Consume(time.Now(), len(o.Deliver))
			for _, s := range append(o.Send, o2.Send...) {
				go m.c.ep.HandlePayload(s.Marshal())
			}
			if delivered == total && o.Deliver != nil {
				close(allDelivered)
			}
		}
	}()
	data := make([]byte, chunk)
	for i := range data {
		data[i] = byte('0' + i%10)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	for range rounds {
		<-tick.C
		for _, c := range clients {
			c.ep.Write(data)
		}
	}
	tick.Stop()
	select {
	case <-allDelivered:
	case <-time.After(60 * time.Second):
		tb.Fatalf("not everything was delivered within a minute")
	}
	wall = time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	for _, c := range clients {
		c.ep.Close()
	}
	close(wire) // no endpoint sends once closed
	cpu = time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
		syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
	return cpu, wall
}

// TestBMCEndpointFleetIsCheap: 1,000 endpoints at 115200 baud (11.5 MB/s
// in all) must cost well under one core. The bound is on CPU time per byte
// (which a loaded machine inflates less than wall time): at most 40
// ns/byte, i.e. under half a core at the full 11.5 MB/s, counting the
// simulated consoles too. Other load still adds to it (the scheduler
// spins, caches go cold: 42-52 ns seen beside two other test binaries on
// two cores, 22-30 ns alone), never takes from it, so the least of up to
// three runs is the measure.
func TestBMCEndpointFleetIsCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1,000 endpoints for a second of real time")
	}
	if raceEnabled {
		t.Skip("CPU budget not meaningful under the race detector")
	}
	const n, baud, rounds, bound = 1000, 115200, 100, 40.0
	chunk := baud / 1000
	bytes := float64(n * chunk * rounds)
	least := math.Inf(1)
	for try := 0; try < 3 && least > bound; try++ {
		cpu, wall := fleet(t, n, chunk, rounds)
		perByte := float64(cpu.Nanoseconds()) / bytes
		least = min(least, perByte)
		t.Logf("%d endpoints: %.1f MB in %v (%.1f MB/s), %v CPU, %.1f ns/byte: %.2f cores at 115200 baud",
			n, bytes/1e6, wall.Round(time.Millisecond), bytes/1e6/wall.Seconds(), cpu, perByte, perByte*float64(n*baud/10)/1e9)
	}
	if least > bound {
		t.Fatalf("%.1f ns of CPU per byte at best of 3 runs: 1,000 endpoints at 115200 baud would need %.2f cores",
			least, least*float64(n*baud/10)/1e9)
	}
}

// BenchmarkBMCEndpointFleet reports the cores 1,000 endpoints at 115200
// baud use for one second of output (including the simulated consoles).
func BenchmarkBMCEndpointFleet(b *testing.B) {
	const n, baud, rounds = 1000, 115200, 100
	for b.Loop() {
		cpu, wall := fleet(b, n, baud/1000, rounds)
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
		b.ReportMetric(float64(n*baud/1000*rounds)/1e6/wall.Seconds(), "MB/s")
	}
}
