package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/coder/websocket"

	"obmd/fakebmc"
)

// Typing latency: how long a key typed into a console takes to reach the
// machine. One byte at a time is sent and timed until the simulated
// host's serial port has it (fakebmc's input record, in this process),
// through obmd (a WebSocket to a real obmd process, which types it into
// its SOL session) and, as the baseline, through `ipmitool sol activate`
// (a byte written to its standard input), against two BMCs of the same
// fleet in the same run. The next byte is sent only once the previous one
// arrived, so each sample is one key's whole trip.

// TypingConfig sizes a typing latency benchmark.
type TypingConfig struct {
	Obmd    string // the obmd binary
	Samples int    // keys timed per client (default 500)
	// Warmup keys are sent and not timed, after the console is open
	// (default 20).
	Warmup int
	// Ipmitool is the ipmitool binary (default: found on PATH).
	Ipmitool string
}

// TypingResult holds both clients' latency percentiles.
type TypingResult struct {
	Samples                  int
	P50, P99, Max            time.Duration // through obmd
	IpmitoolP50, IpmitoolP99 time.Duration
	IpmitoolMax              time.Duration
}

// TypingLatency runs one typing latency benchmark.
func TypingLatency(ctx context.Context, cfg TypingConfig) (TypingResult, error) {
	if cfg.Samples <= 0 {
		cfg.Samples = 500
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 20
	}
	if cfg.Ipmitool == "" {
		p, err := FindIpmitool()
		if err != nil {
			return TypingResult{}, err
		}
		cfg.Ipmitool = p
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// BMC 0 is obmd's node, BMC 1 ipmitool's. The echo console sends each
	// key back, as a shell at a prompt does.
	fleet, err := startFleet(ctx, 2, fakebmc.DefaultBaud, func(c *fakebmc.BMCConfig) {
		c.Console = fakebmc.ConsoleEcho
		c.HostInputMax = 1 << 20
	})
	if err != nil {
		return TypingResult{}, err
	}
	defer fleet.Close()

	obmd, err := typeThroughObmd(ctx, cfg, fleet)
	if err != nil {
		return TypingResult{}, fmt.Errorf("through obmd: %w", err)
	}
	base, err := typeThroughIpmitool(ctx, cfg, fleet)
	if err != nil {
		return TypingResult{}, fmt.Errorf("through ipmitool sol activate: %w", err)
	}
	return TypingResult{
		Samples: cfg.Samples,
		P50:     obmd.Percentile(50), P99: obmd.Percentile(99), Max: obmd.Max(),
		IpmitoolP50: base.Percentile(50), IpmitoolP99: base.Percentile(99), IpmitoolMax: base.Max(),
	}, nil
}

// typeKeys sends warmup+samples keys with send, each once the previous
// one reached bmc's host, and times the samples.
func typeKeys(ctx context.Context, cfg TypingConfig, bmc *fakebmc.BMC, send func(key byte) error) (*Histogram, error) {
	var hist Histogram
	sent := bmc.HostInputTotal()
	for i := range cfg.Warmup + cfg.Samples {
		key := byte('a' + i%26) // never the escape character
		start := time.Now()
		if err := send(key); err != nil {
			return nil, err
		}
		sent++
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := bmc.WaitHostInput(wctx, sent)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("key %d did not reach the machine: %w", i, err)
		}
		if i >= cfg.Warmup {
			hist.Record(time.Since(start))
		}
	}
	if got := bmc.HostInput(); len(got) > 0 && got[len(got)-1] != byte('a'+(cfg.Warmup+cfg.Samples-1)%26) {
		return nil, errors.New("the machine's last key is not the last one typed")
	}
	return &hist, nil
}

func typeThroughObmd(ctx context.Context, cfg TypingConfig, fleet *fakebmc.Fleet) (*Histogram, error) {
	d, err := StartDaemon(ctx, cfg.Obmd)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	if err := d.RegisterIPMI(ctx, "typing", fleet.Addr(0)); err != nil {
		return nil, err
	}
	tok, err := d.NewToken(ctx, "typing")
	if err != nil {
		return nil, err
	}
	conn, err := d.DialConsole(ctx, "typing", tok)
	if err != nil {
		return nil, err
	}
	defer conn.CloseNow()
	go func() { // the echo: read and drop, so obmd never waits for us
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	return typeKeys(ctx, cfg, fleet.BMC(0), func(key byte) error {
		return conn.Write(ctx, websocket.MessageBinary, []byte{key})
	})
}

func typeThroughIpmitool(ctx context.Context, cfg TypingConfig, fleet *fakebmc.Fleet) (*Histogram, error) {
	t := Ipmitool{Path: cfg.Ipmitool, Addr: fleet.Addr(1), Username: benchUser, Password: benchPassword, CipherSuite: 17}
	args, err := t.Args("sol", "activate")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = append(os.Environ(), "IPMI_PASSWORD="+t.Password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close() // end of input: ipmitool deactivates SOL and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = fleet.BMC(1).WaitSOL(wctx, true)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("ipmitool did not activate SOL: %w", err)
	}
	return typeKeys(ctx, cfg, fleet.BMC(1), func(key byte) error {
		_, err := stdin.Write([]byte{key})
		return err
	})
}
