package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHubInputMessagesNeverInterleave: viewers typing at once each get
// their messages to the stream whole and in their own order; the driver
// never sees two Writes at once.
func TestHubInputMessagesNeverInterleave(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	const writers, messages = 6, 40
	vs := make([]*Viewer, writers)
	for i := range vs {
		vs[i] = attach(t, h, 0)
	}
	stream := <-d.opened

	// A message is: writer id, sequence number, length, then length bytes
	// of the writer's id. Lengths vary so that a split would show.
	msg := func(w, seq int) []byte {
		n := 1 + (w*7+seq*13)%60
		b := []byte{byte(w), byte(seq), byte(n)}
		return append(b, bytes.Repeat([]byte{byte('a' + w)}, n)...)
	}
	var wg sync.WaitGroup
	for w, v := range vs {
		wg.Go(func() {
			for seq := range messages {
				if err := v.WriteInput(context.Background(), msg(w, seq)); err != nil {
					t.Errorf("writer %d message %d: %v", w, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	typed, overlap := stream.input()
	if overlap {
		t.Fatal("two Writes ran on the driver's stream at once")
	}
	next := make([]int, writers)
	for off := 0; off < len(typed); {
		w, seq := int(typed[off]), int(typed[off+1])
		want := msg(w, seq)
		if w >= writers || seq != next[w] || !bytes.Equal(typed[off:min(off+len(want), len(typed))], want) {
			t.Fatalf("at offset %d: not writer %d's whole message %d (split, interleaved or out of order)", off, w, next[min(w, writers-1)])
		}
		next[w]++
		off += len(want)
	}
	for w, n := range next {
		if n != messages {
			t.Errorf("writer %d: %d messages arrived, want %d", w, n, messages)
		}
	}
}

// TestHubInputBreakInOrder: a break goes after the messages written before
// it and before those written after it.
func TestHubInputBreakInOrder(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	v := attach(t, h, 0)
	stream := <-d.opened
	ctx := context.Background()
	if err := v.WriteInput(ctx, []byte("ab")); err != nil {
		t.Fatal(err)
	}
	if err := v.SendBreak(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteInput(ctx, []byte("cd")); err != nil {
		t.Fatal(err)
	}
	if got, _ := stream.input(); string(got) != "ab<BREAK>cd" {
		t.Fatalf("typed %q, want %q", got, "ab<BREAK>cd")
	}
}

// TestHubInputWaitsForReconnect: input typed while the stream is down
// waits for the reopened stream and goes there; a writer whose context
// ends first gives up with its context's error.
func TestHubInputWaitsForReconnect(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDriver("x")
		d.openErrs = []error{nil, errScripted} // the first reopen fails
		h, _ := newTestHub(HubConfig{}, d)
		defer h.close(context.Background(), ErrShuttingDown)
		v := attach(t, h, 0)
		s1 := <-d.opened
		s1.w.Close() // the BMC drops the console
		synctest.Wait()

		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := v.WriteInput(short, []byte("lost")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WriteInput while reconnecting with a 50ms context = %v, want the deadline", err)
		}
		done := make(chan error, 1)
		go func() { done <- v.WriteInput(context.Background(), []byte("kept")) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("WriteInput returned %v before the console reopened", err)
		default:
		}
		s2 := <-d.opened
		if err := <-done; err != nil {
			t.Fatalf("WriteInput after the reopen: %v", err)
		}
		if got, _ := s2.input(); string(got) != "kept" {
			t.Fatalf("reopened stream got %q, want %q", got, "kept")
		}
		if got, _ := s1.input(); len(got) != 0 {
			t.Fatalf("the dead stream got %q", got)
		}
	})
}

// TestHubInputRevocationDropsTypedAhead: a writer blocked on a full
// driver buffer returns with the viewer's reason when the token is
// revoked, and the driver is told to drop what it holds.
func TestHubInputRevocationDropsTypedAhead(t *testing.T) {
	t.Parallel()
	d := newFakeDriver("x")
	h, _ := newTestHub(HubConfig{}, d)
	defer h.close(context.Background(), ErrShuttingDown)
	v := attach(t, h, 0)
	other := attach(t, h, 0)
	stream := <-d.opened
	stream.setGate(make(chan struct{})) // the buffer is full: Write blocks

	first := make(chan error, 1)
	go func() { first <- v.WriteInput(context.Background(), []byte("typed ahead")) }()
	second := make(chan error, 1)
	go func() {
		// Waits for the input slot behind the blocked writer.
		second <- other.WriteInput(context.Background(), []byte("queued"))
	}()
	h.newTenancy(ErrTokenRevoked)
	for _, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrTokenRevoked) {
				t.Fatalf("WriteInput = %v, want ErrTokenRevoked", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a writer stayed blocked after the revocation")
		}
	}
	stream.inMu.Lock()
	discarded := stream.discarded
	stream.inMu.Unlock()
	if discarded == 0 {
		t.Fatal("the driver was not told to drop the revoked tenant's input")
	}
	if got, _ := stream.input(); len(got) != 0 {
		t.Fatalf("the driver typed %q after the revocation", got)
	}
}

// TestHubInputUnsupported: a watch-only stream refuses input.
func TestHubInputUnsupported(t *testing.T) {
	t.Parallel()
	open := func(ctx context.Context) (io.ReadCloser, error) {
		pr, _ := io.Pipe()
		return pr, nil
	}
	h := newHub(HubConfig{}, open, slog.New(slog.DiscardHandler), &consoleStats{})
	defer h.close(context.Background(), ErrShuttingDown)
	v := attach(t, h, 0)
	if err := v.WriteInput(context.Background(), []byte("x")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("WriteInput on a watch-only console = %v, want ErrUnsupported", err)
	}
}

// TestConsoleEndReason: every way a viewer ends has a tenant-safe reason.
func TestConsoleEndReason(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{ErrTokenRevoked, "the node's token was replaced or revoked"},
		{ErrNodeDeleted, "the node was deleted"},
		{ErrShuttingDown, "obmd is shutting down"},
		{TimeoutError("open console: 10.0.0.4:623 did not answer", nil), "the BMC did not answer in time; retrying later may help"},
		{fmt.Errorf("wrapped: %w", ErrTokenRevoked), "the node's token was replaced or revoked"},
	}
	for _, tc := range cases {
		if got := ConsoleEndReason(tc.err); got != tc.want {
			t.Errorf("ConsoleEndReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
