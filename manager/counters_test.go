package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"obmd/bmc"
)

func TestOutcome(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{TimeoutError("power on", nil), "timeout"},
		{BMCError("power on", errors.New("0xD5")), "bmc_error"},
		{CredentialsError("power on", bmc.ErrWrongPassword), "bmc_error"},
		{Invalidf("bad"), "invalid"},
		{errUnauthorizedToken, "unauthorized"},
		{&Error{Kind: ErrNotFound}, "not_found"},
		{UnsupportedError("no"), "unsupported"},
		{fmt.Errorf("op: %w", context.Canceled), "canceled"},
		{errors.New("something else"), "internal"},
	}
	for _, tc := range cases {
		if got := Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDialResult(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{fmt.Errorf("dial: %w", bmc.ErrTimeout), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("rakp: %w", bmc.ErrWrongPassword), "auth"},
		{bmc.ErrUnknownUser, "auth"},
		{context.Canceled, "canceled"},
		{errors.New("connection refused"), "error"},
	}
	var c DriverCounters
	for _, tc := range cases {
		r := dialResult(tc.err)
		if r.String() != tc.want {
			t.Errorf("dialResult(%v) = %s, want %s", tc.err, r, tc.want)
		}
		c.CountDial(r)
	}
	got := c.Dials()
	want := map[string]int64{"ok": 1, "timeout": 2, "auth": 2, "canceled": 1, "error": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Dials()[%s] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	var none *DriverCounters
	none.CountDial(DialOK) // a driver built outside a Manager: no panic
}

// Every tenant operation and console open reaches the observer, with its
// outcome and its duration (the wait for the node's slot included).
func TestOperationsObserved(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		type obs struct {
			op, outcome string
			took        time.Duration
		}
		var mu sync.Mutex
		var seen []obs
		fr := newFakeRegistry(t)
		m, err := New(Config{Store: newMemStore(), Drivers: fr.Registry, OpTimeout: 2 * time.Second,
			Observe: func(op, outcome string, took time.Duration) {
				mu.Lock()
				seen = append(seen, obs{op, outcome, took})
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		registerT(t, m, "n", "fake", fakeInfoJSON("a"))
		a := mustAccess(t, m, "n", mustToken(t, m, "n"))
		d := fr.driver(t, "n")
		d.setHook(func(ctx context.Context, op string) error {
			switch op {
			case "on":
				time.Sleep(300 * time.Millisecond)
				return nil
			case "off":
				<-ctx.Done()
				return ctx.Err()
			}
			return BMCError(op, errors.New("refused"))
		})
		ctx := context.Background()
		a.PowerOn(ctx)
		a.PowerOff(ctx)
		a.PowerStatus(ctx)
		a.SetBootDevice(ctx, "floppy")
		v, err := a.OpenConsole(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		v.Close()
		m.Close(ctx)

		want := []obs{
			{"power on", "ok", 300 * time.Millisecond},
			{"power off", "timeout", 2 * time.Second},
			{"power status", "bmc_error", 0},
			{"set boot device", "invalid", 0},
			{"open console", "ok", 0},
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != len(want) {
			t.Fatalf("observed %+v, want %+v", seen, want)
		}
		for i := range want {
			if seen[i] != want[i] {
				t.Errorf("observation %d = %+v, want %+v", i, seen[i], want[i])
			}
		}
	})
}
