package sol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// The client-cost benchmarks run the BMC (rmcpplus.Server and one
// BMCEndpoint per session) in a second process, this test binary started
// again as TestHelperBMCProcess, so that the allocations, CPU time and
// memory they report are the client's alone: what obmd pays per SOL packet
// and per idle session.

// helperBMCEnv selects the helper's console: "stream" writes host output
// as fast as each Console takes it (fakebmc -baud 0), "idle" writes none.
const helperBMCEnv = "SOL_HELPER_BMC"

// helperBMC answers Activate, Deactivate and Get Payload Activation Status
// with one SOL endpoint per session (a real BMC has one per BMC; this one
// stands in for a fleet).
type helperBMC struct {
	stream bool
	chunk  []byte

	mu  sync.Mutex
	eps map[*rmcpplus.ServerSession]*BMCEndpoint
}

func (h *helperBMC) ServeIPMI(ss *rmcpplus.ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte) {
	if req.NetFn != ipmi.NetFnApp {
		return ipmi.CCInvalidCommand, nil
	}
	switch req.Cmd {
	case ipmi.CmdActivatePayload:
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.eps[ss] != nil {
			return ipmi.CCPayloadAlreadyActive, nil
		}
		const size = HeaderLen + MaxCharacters
		ep := NewBMCEndpoint(EndpointConfig{
			Send:    func(b []byte) error { return ss.SendPayload(rmcpplus.PayloadSOL, b) },
			MaxData: MaxCharacters,
		})
		ss.SetPayloadHandler(rmcpplus.PayloadSOL, ep.HandlePayload)
		h.eps[ss] = ep
		go func() {
			<-ss.Done()
			h.deactivate(ss)
		}()
		if h.stream {
			go func() {
				for {
					if _, err := ep.Write(h.chunk); err != nil {
						return
					}
				}
			}()
		}
		rsp := ipmi.ActivatePayloadRsp{InboundPayloadSize: size, OutboundPayloadSize: size, VLAN: ipmi.NoVLAN}
		return ipmi.CCOK, rsp.Marshal()
	case ipmi.CmdDeactivatePayload:
		if !h.deactivate(ss) {
			return 0x80, nil
		}
		return ipmi.CCOK, nil
	case ipmi.CmdGetPayloadActivationStatus:
		h.mu.Lock()
		defer h.mu.Unlock()
		rsp := ipmi.GetPayloadActivationStatusRsp{InstanceCapacity: 1}
		if h.eps[ss] != nil {
			rsp.Active = 1
		}
		return ipmi.CCOK, rsp.Marshal()
	}
	return ipmi.CCInvalidCommand, nil
}

func (h *helperBMC) deactivate(ss *rmcpplus.ServerSession) bool {
	h.mu.Lock()
	ep := h.eps[ss]
	delete(h.eps, ss)
	h.mu.Unlock()
	if ep == nil {
		return false
	}
	ss.SetPayloadHandler(rmcpplus.PayloadSOL, nil)
	ep.Close()
	return true
}

// TestHelperBMCProcess is not a test: it is the BMC process of the
// client-cost benchmarks. It prints its address, serves until its stdin
// closes, and exits.
func TestHelperBMCProcess(t *testing.T) {
	mode := os.Getenv(helperBMCEnv)
	if mode == "" {
		t.Skip("the BMC process of the client-cost benchmarks; runs only when they start it")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &helperBMC{stream: mode == "stream", chunk: []byte(strings.Repeat("0123456789abcdef", 256)),
		eps: make(map[*rmcpplus.ServerSession]*BMCEndpoint)}
	srv := rmcpplus.NewServer(rmcpplus.ServerConfig{
		GUID: [16]byte{0xa1, 0x23, 0x45},
		Users: func(name string) ([]byte, ipmi.PrivilegeLevel, bool) {
			return []byte("secret"), ipmi.PrivilegeAdministrator, name == "admin"
		},
		Handler:     h,
		MaxSessions: 4096,
	})
	go srv.Serve(pc)
	fmt.Println(pc.LocalAddr().String())
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// startHelperBMC starts the BMC process in mode and returns its address.
func startHelperBMC(tb testing.TB, mode string) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperBMCProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperBMCEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close() // the helper exits when its stdin closes
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("the BMC process did not report its address: %v", err)
	}
	return strings.TrimSpace(line)
}

func dialHelper(tb testing.TB, addr string) *rmcpplus.Session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{Addr: addr, Username: "admin", Password: []byte("secret"),
		CipherSuite: 17})
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	return s
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// BenchmarkConsoleClientCost reads an unthrottled console (cipher suite
// 17) from a BMC in another process: each op is 1 MiB of console output.
// It reports the client's CPU time and heap allocations per full SOL
// packet (255 characters: the packet read, decrypted, acknowledged with a
// sealed ACK, and the characters handed to Read).
func BenchmarkConsoleClientCost(b *testing.B) {
	addr := startHelperBMC(b, "stream")
	sess := dialHelper(b, addr)
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Open(ctx, sess, ConsoleOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	read := func(n int) {
		for n > 0 {
			k, err := c.Read(buf[:min(n, len(buf))])
			if err != nil {
				b.Fatal(err)
			}
			n -= k
		}
	}
	const size = 1 << 20
	read(size) // warm-up: buffers grown, the stream at its pace
	b.SetBytes(size)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := processCPU(), time.Now()
	for b.Loop() {
		read(size)
	}
	cpu, wall := processCPU()-cpu0, time.Since(t0)
	runtime.ReadMemStats(&ms1)
	packets := float64(b.N) * size / MaxCharacters
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/packets, "allocs/pkt")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/packets, "cpu-µs/pkt")
	b.ReportMetric(packets/wall.Seconds(), "pkts/s")
}

// BenchmarkIdleClientMemory reports the client's memory per idle session
// (live heap and goroutine stacks, after a GC), with and without an active
// SOL Console on it, for 200 sessions to a BMC in another process.
func BenchmarkIdleClientMemory(b *testing.B) {
	for _, withConsole := range []bool{false, true} {
		name := "session"
		if withConsole {
			name = "session+console"
		}
		b.Run(name, func(b *testing.B) {
			addr := startHelperBMC(b, "idle")
			const n = 200
			for b.Loop() {
				heap, stack := idleClientMemory(b, addr, n, withConsole)
				b.ReportMetric(heap+stack, "bytes/session")
				b.ReportMetric(heap, "heap-bytes/session")
				b.ReportMetric(stack, "stack-bytes/session")
			}
		})
	}
}

func idleClientMemory(b *testing.B, addr string, n int, withConsole bool) (heap, stack float64) {
	inUse := func() (heap, stack uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, ms.StackInuse
	}
	heap0, stack0 := inUse()
	sessions := make([]*rmcpplus.Session, n)
	consoles := make([]*Console, 0, n)
	for i := range sessions {
		sessions[i] = dialHelper(b, addr)
		if withConsole {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := Open(ctx, sessions[i], ConsoleOptions{})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			consoles = append(consoles, c)
		}
	}
	time.Sleep(100 * time.Millisecond) // the startup packets answered: idle
	heap1, stack1 := inUse()
	for _, c := range consoles {
		if err := c.Close(); err != nil && !errors.Is(err, ErrClosed) {
			b.Fatal(err)
		}
	}
	for _, s := range sessions {
		s.Close()
	}
	return float64(int64(heap1)-int64(heap0)) / float64(n), float64(int64(stack1)-int64(stack0)) / float64(n)
}
