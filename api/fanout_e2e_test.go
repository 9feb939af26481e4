package api

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConsoleFanOutOnFakeBMC: 100 viewers of one fakebmc console (one SOL
// session) each read gap-free counter lines while another viewer has
// stopped reading altogether; a new token then ends every one of the 101
// streams within 100 ms.
//
// Not parallel: it runs before this package's parallel tests, so that the
// 100 ms bound measures obmd, not two cores shared with megabyte
// transfers.
func TestConsoleFanOutOnFakeBMC(t *testing.T) {
	const (
		viewers = 100
		lines   = 300 // about 0.2 s of output at 115200 baud
		revoked = 100 * time.Millisecond
	)
	e := newIPMIE2E(t)
	f := startE2EFakeBMC(t, 1)
	n := e2eNode{e: e, id: "fan", tok: e.register("fan", map[string]any{
		"addr": f.Addr(0), "user": e2eUser, "pass": e2ePass, "cipher_suite": 17,
	})}
	ctx := within(t, 60*time.Second)

	stalled, _ := n.console(ctx) // opens the SOL session; never read until the end
	streams := make([]*bufio.Reader, viewers)
	for i := range streams {
		streams[i], _ = n.console(ctx)
	}

	var wg sync.WaitGroup
	errs := make(chan error, viewers)
	for i, r := range streams {
		wg.Go(func() {
			if err := readConsecutive(r, lines); err != nil {
				errs <- errors.New("viewer " + strconv.Itoa(i) + ": " + err.Error())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if !f.BMC(0).SOLActive() {
		t.Fatal("SOL is not active on the BMC while viewers watch")
	}

	// A new token revokes the one every viewer used.
	ended := make(chan time.Time, viewers+1)
	for _, r := range append(streams, stalled) {
		go func() {
			_, _ = io.Copy(io.Discard, r) // drains what was buffered, then ends
			ended <- time.Now()
		}()
	}
	start := time.Now()
	e.must("POST", "/node/fan/token", "", true, 200)
	var slowest time.Duration
	for range viewers + 1 {
		select {
		case at := <-ended:
			slowest = max(slowest, at.Sub(start))
		case <-ctx.Done():
			t.Fatal("a viewer's stream did not end after its token was revoked")
		}
	}
	if slowest > revoked {
		t.Errorf("the last of %d viewers ended %v after the token was replaced, want within %v", viewers+1, slowest, revoked)
	}
	t.Logf("%d viewers x %d gap-free lines; all %d streams ended within %v of the revocation", viewers, lines, viewers+1, slowest)
}

// readConsecutive skips the first line (a viewer that joins mid-line sees
// its tail), then reads n whole counter lines that count up by one.
func readConsecutive(r *bufio.Reader, n int) error {
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	last := -1
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil {
			return errors.New("after " + strconv.Itoa(i) + " lines: " + err.Error())
		}
		v, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return errors.New("line " + strconv.Quote(line) + " is not a counter value")
		}
		if last >= 0 && v != last+1 {
			return errors.New("line " + strconv.Itoa(v) + " follows " + strconv.Itoa(last))
		}
		last = v
	}
	return nil
}
