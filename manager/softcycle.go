package manager

import (
	"context"
	"log/slog"
	"time"
)

// The end of a soft power cycle, shared by the drivers of real BMCs (ipmi,
// redfish): once the operating system has been asked to shut down, wait
// until the node is off, polling its power state, for at most the grace
// period; force it off if it is still on; power it on. The wait ends
// early enough to leave the forced off and the power on room before the
// operation's deadline.

// powerSteps are the driver's own steps.
type powerSteps struct {
	isOn     func(ctx context.Context) (bool, error)
	forceOff func(ctx context.Context) error
	powerOn  func(ctx context.Context) error
	// classify turns the context's error into the driver's ErrTimeout.
	classify func(op string, err error) error
	poll     time.Duration
	log      *slog.Logger
}

// graceEnd is when a soft power cycle stops waiting for the OS: grace from
// now, but keeping a third of the time left to ctx's deadline, at most
// maxReserve, for what follows.
func graceEnd(ctx context.Context, grace, maxReserve time.Duration) time.Time {
	now := time.Now()
	end := now.Add(grace)
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(dl.Sub(now)/3, maxReserve)
		if capped := dl.Add(-reserve); capped.Before(end) {
			end = capped
		}
	}
	return end
}

// finishSoftCycle waits for the node to go off until until (the soft off
// was asked at asked), forces it off if it did not, and powers it on. A
// zero until means the soft off could not be asked: force at once.
func (p powerSteps) finishSoftCycle(ctx context.Context, asked, until time.Time) error {
	off := false
	if !until.IsZero() {
		var err error
		if off, err = p.awaitOff(ctx, until); err != nil {
			return err
		}
		if !off {
			p.log.Info("node still on after the soft-off grace period; forcing it off",
				"waited", time.Since(asked).Round(time.Millisecond))
		}
	}
	if !off {
		if err := p.forceOff(ctx); err != nil {
			return err
		}
		if _, err := p.awaitOff(ctx, time.Time{}); err != nil {
			return err
		}
	}
	return p.powerOn(ctx)
}

// awaitOff polls the power state every poll until the node is off (true),
// until is reached (false; zero means no limit but ctx's), or ctx ends
// (its error).
func (p powerSteps) awaitOff(ctx context.Context, until time.Time) (bool, error) {
	for {
		on, err := p.isOn(ctx)
		if err != nil {
			return false, err
		}
		if !on {
			return true, nil
		}
		wait := p.poll
		if !until.IsZero() {
			left := time.Until(until)
			if left <= 0 {
				return false, nil
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, p.classify("waiting for the node to power off", ctx.Err())
		}
	}
}
