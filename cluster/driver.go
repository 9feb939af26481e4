package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"obmd/manager"
)

// Driver is the driver the Manager holds for every node of a cluster
// instance. It points at one of three places, as the ownership
// reconciler (owners.go) decides:
//
//   - local: this instance owns the node; calls go to the real driver
//     (ipmi, mock), built when ownership arrives and closed when it goes;
//   - remote: another instance owns it; calls are forwarded to it
//     (peers.go), and the console is its stream;
//   - none: nobody holds the node's lock yet (its owner just died, or is
//     handing it over); calls wait, within their deadline, for one.
//
// Moving away from local drains the real driver first: new calls wait,
// the calls in flight finish, the console streams close (the ipmi driver
// deactivates SOL) and the driver is closed, before the reconciler
// releases the lock. Any move closes the console stream the node's hub
// reads, so the hub reopens it at the new place and writes one
// "[obmd: console reconnected after ...]" line for its viewers.
type Driver struct {
	o    *owners
	id   string
	typ  manager.DriverType
	info manager.DriverInfo
	env  manager.DriverEnv
	log  *slog.Logger

	mu       sync.Mutex // guards the fields below
	want     target
	mode     targetKind
	remote   string         // the owner's URL, in remote mode
	inner    manager.Driver // the real driver, in local mode
	innerErr error          // why the real driver could not be built
	calls    int            // local calls in flight
	idle     chan struct{}  // closed when calls drops to 0 (set by a drain)
	draining chan struct{}  // closed when the drain in progress is done
	closed   bool
	changed  chan struct{}        // closed (and replaced) on every move
	streams  map[*stream]struct{} // console streams opened here
	peerEnds map[*peerEnd]struct{}
}

type targetKind int

const (
	targetNone targetKind = iota
	targetLocal
	targetRemote
)

func (k targetKind) String() string {
	switch k {
	case targetLocal:
		return "local"
	case targetRemote:
		return "remote"
	}
	return "none"
}

// target is where a Driver should point.
type target struct {
	kind targetKind
	url  string // the owner's, for targetRemote
}

func newDriver(o *owners, t manager.DriverType, info manager.DriverInfo, env manager.DriverEnv) *Driver {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{
		o: o, id: env.NodeID, typ: t, info: info, env: env, log: log.With("component", "cluster"),
		changed:  make(chan struct{}),
		streams:  map[*stream]struct{}{},
		peerEnds: map[*peerEnd]struct{}{},
	}
}

var _ manager.Driver = (*Driver)(nil)
var _ manager.StatusReporter = (*Driver)(nil)
var _ manager.OwnerReporter = (*Driver)(nil)

// point sets where the driver should point, and moves it there: at once,
// or when the drain away from local is done.
func (d *Driver) point(t target) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want = t
	d.moveLocked()
}

func (d *Driver) moveLocked() {
	if d.closed || d.draining != nil {
		return // the drain moves on when it is done
	}
	t := d.want
	switch {
	case t.kind == d.mode && (t.kind != targetRemote || t.url == d.remote):
		return
	case d.mode == targetLocal:
		d.startDrainLocked()
		return
	}
	d.closeStreamsLocked() // a remote stream from the previous owner
	switch t.kind {
	case targetLocal:
		d.inner, d.innerErr = d.typ.New(d.info, d.env)
		if d.innerErr != nil {
			d.log.Error("building the node's driver failed", "err", d.innerErr)
		}
		d.log.Info("driving the node's BMC from this instance")
	case targetRemote:
		d.log.Info("forwarding the node's calls to its owner", "owner", t.url)
	}
	d.mode, d.remote = t.kind, t.url
	d.signalLocked()
}

// signalLocked wakes the calls waiting for a move.
func (d *Driver) signalLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// startDrainLocked stops driving the BMC from here (see Driver).
func (d *Driver) startDrainLocked() {
	d.mode = targetNone
	d.draining = make(chan struct{})
	inner := d.inner
	d.signalLocked()
	for pe := range d.peerEnds {
		pe.end() // forwarded console streams: the others look for the new owner
	}
	go func() {
		d.mu.Lock()
		for d.calls > 0 {
			idle := make(chan struct{})
			d.idle = idle
			d.mu.Unlock()
			<-idle
			d.mu.Lock()
		}
		streams := d.takeStreamsLocked()
		d.mu.Unlock()
		for _, s := range streams {
			s.Close()
		}
		if inner != nil {
			if err := inner.Close(); err != nil {
				d.log.Warn("closing the node's driver", "err", err)
			}
		}
		d.mu.Lock()
		d.inner, d.innerErr = nil, nil
		close(d.draining)
		d.draining = nil
		d.moveLocked()
		d.mu.Unlock()
		d.log.Info("stopped driving the node's BMC from this instance")
	}()
}

// drained is closed once the driver no longer drives the BMC.
func (d *Driver) drained() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining != nil {
		return d.draining
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (d *Driver) isLocal() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode == targetLocal && d.draining == nil && !d.closed
}

func (d *Driver) takeStreamsLocked() []*stream {
	out := make([]*stream, 0, len(d.streams))
	for s := range d.streams {
		out = append(out, s)
		delete(d.streams, s)
	}
	return out
}

// closeStreamsLocked closes the remote streams (Close cancels an HTTP
// request: it does not block).
func (d *Driver) closeStreamsLocked() {
	for _, s := range d.takeStreamsLocked() {
		go s.Close()
	}
}

// errNotOwner answers a forwarded call that reached an instance that does
// not drive the node (any more): the caller looks for the owner again.
var errNotOwner = errors.New("this instance does not own the node")

type forwardedKey struct{}

// withForwarded marks ctx as a forwarded call's: it is served here or
// refused, never forwarded again.
func withForwarded(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedKey{}, true)
}

func isForwarded(ctx context.Context) bool {
	v, _ := ctx.Value(forwardedKey{}).(bool)
	return v
}

// peerRetry paces forwarding attempts to an owner that did not answer,
// between the reconciler's moves (which retry at once).
const peerRetry = 250 * time.Millisecond

// do runs one call where the driver points, following its moves until
// ctx is done: local runs it on the real driver; remote forwards it, and
// if the owner cannot be reached or says it is not the owner, waits for
// the next move (or peerRetry) and tries again; none waits for a move.
func (d *Driver) do(ctx context.Context, op string, local func(manager.Driver) error, remote func(url string, gen <-chan struct{}) error) error {
	forwarded := isForwarded(ctx)
	var lastErr error
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return fmt.Errorf("%s: node %q: driver closed", op, d.id)
		}
		changed := d.changed
		var retry <-chan time.Time
		switch d.mode {
		case targetLocal:
			if d.innerErr != nil {
				err := d.innerErr
				d.mu.Unlock()
				return err
			}
			inner := d.inner
			d.calls++
			d.mu.Unlock()
			err := local(inner)
			d.mu.Lock()
			d.calls--
			if d.calls == 0 && d.idle != nil {
				close(d.idle)
				d.idle = nil
			}
			d.mu.Unlock()
			return err
		case targetRemote:
			url := d.remote
			d.mu.Unlock()
			if forwarded {
				return errNotOwner
			}
			err := remote(url, changed)
			if !retryable(err) {
				return err
			}
			lastErr = err
			retry = time.After(peerRetry)
		default:
			d.mu.Unlock()
			if forwarded {
				return errNotOwner
			}
		}
		select {
		case <-changed:
		case <-retry:
		case <-ctx.Done():
			return noOwner(op, d.id, lastErr, ctx.Err())
		}
	}
}

// noOwner is the error of a call no owner served before its deadline.
func noOwner(op, id string, last, ctxErr error) error {
	if errors.Is(ctxErr, context.Canceled) {
		return ctxErr
	}
	reason := fmt.Sprintf("%s: node %q: no instance of the cluster could serve it (its owner is changing)", op, id)
	return manager.TenantError(manager.ErrUnavailable, reason, last,
		"the obmd instance that drives this node is changing; retrying in a few seconds will help")
}

func (d *Driver) PowerOn(ctx context.Context) error {
	return d.do(ctx, "power on",
		func(in manager.Driver) error { return in.PowerOn(ctx) },
		func(url string, _ <-chan struct{}) error {
			return d.o.c.peers.call(ctx, url, d.id, "power_on", nil, nil)
		})
}

func (d *Driver) PowerOff(ctx context.Context) error {
	return d.do(ctx, "power off",
		func(in manager.Driver) error { return in.PowerOff(ctx) },
		func(url string, _ <-chan struct{}) error {
			return d.o.c.peers.call(ctx, url, d.id, "power_off", nil, nil)
		})
}

func (d *Driver) PowerCycle(ctx context.Context, force bool) error {
	return d.do(ctx, "power cycle",
		func(in manager.Driver) error { return in.PowerCycle(ctx, force) },
		func(url string, _ <-chan struct{}) error {
			return d.o.c.peers.call(ctx, url, d.id, "power_cycle", powerCycleBody{Force: force}, nil)
		})
}

func (d *Driver) PowerStatus(ctx context.Context) (string, error) {
	var status string
	err := d.do(ctx, "power status",
		func(in manager.Driver) error {
			s, err := in.PowerStatus(ctx)
			status = s
			return err
		},
		func(url string, _ <-chan struct{}) error {
			var out powerStatusBody
			err := d.o.c.peers.call(ctx, url, d.id, "power_status", nil, &out)
			status = out.PowerStatus
			return err
		})
	return status, err
}

func (d *Driver) SetBootDevice(ctx context.Context, dev string) error {
	return d.do(ctx, "set boot device",
		func(in manager.Driver) error { return in.SetBootDevice(ctx, dev) },
		func(url string, _ <-chan struct{}) error {
			return d.o.c.peers.call(ctx, url, d.id, "boot_device", bootDeviceBody{BootDev: dev}, nil)
		})
}

// OpenConsole opens the console where the driver points: the real
// driver's, or the owner's stream. Either is closed when the driver moves.
func (d *Driver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	var out io.ReadCloser
	err := d.do(ctx, "open console",
		func(in manager.Driver) error {
			rc, err := in.OpenConsole(ctx)
			if err != nil {
				return err
			}
			// Tracked while the call still counts as in flight, so a drain
			// (which waits for it) closes it.
			out = d.track(rc)
			return nil
		},
		func(url string, gen <-chan struct{}) error {
			rc, err := d.o.c.peers.openConsole(ctx, url, d.id)
			if err != nil {
				return err
			}
			d.mu.Lock()
			moved := d.closed
			select {
			case <-gen:
				moved = true
			default:
			}
			d.mu.Unlock()
			if moved {
				rc.Close()
				return errMovedMeanwhile
			}
			out = d.track(rc)
			return nil
		})
	return out, err
}

// errMovedMeanwhile: the driver moved while a console was being opened at
// the old place; it is opened again at the new one.
var errMovedMeanwhile = errors.New("the node's owner changed while its console was opening")

// track registers a console stream, to be closed when the driver moves.
// A stream that takes input (manager.ConsoleWriter: the real driver's, or
// the owner's) keeps taking it through the wrapper; one that does not
// stays watch-only.
func (d *Driver) track(rc io.ReadCloser) io.ReadCloser {
	s := &stream{ReadCloser: rc, d: d}
	d.mu.Lock()
	d.streams[s] = struct{}{}
	d.mu.Unlock()
	if in, ok := rc.(manager.ConsoleWriter); ok {
		return &inputStream{stream: s, in: in}
	}
	return s
}

// inputStream is a tracked stream that takes input.
type inputStream struct {
	*stream
	in manager.ConsoleWriter
}

var _ manager.ConsoleWriter = (*inputStream)(nil)

func (s *inputStream) Write(p []byte) (int, error) { return s.in.Write(p) }
func (s *inputStream) SendBreak() error            { return s.in.SendBreak() }
func (s *inputStream) DiscardInput() int           { return s.in.DiscardInput() }

// stream is a console stream the driver closes when it moves.
type stream struct {
	io.ReadCloser
	d    *Driver
	once sync.Once
	err  error
}

func (s *stream) Close() error {
	s.once.Do(func() {
		s.err = s.ReadCloser.Close()
		s.d.mu.Lock()
		delete(s.d.streams, s)
		s.d.mu.Unlock()
	})
	return s.err
}

// peerEnd ends one console stream this instance serves to another.
type peerEnd struct {
	end func()
}

// servePeer registers a console stream served to another instance, to be
// ended if this one stops driving the node; false if it already has.
func (d *Driver) servePeer(end func()) (stop func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode != targetLocal || d.draining != nil || d.closed {
		return nil, false
	}
	pe := &peerEnd{end: end}
	d.peerEnds[pe] = struct{}{}
	return func() {
		d.mu.Lock()
		delete(d.peerEnds, pe)
		d.mu.Unlock()
	}, true
}

// Close closes the real driver, if any, once a drain in progress is done,
// and forgets the node. The Manager calls it once, with the console closed
// and no call in flight.
func (d *Driver) Close() error {
	d.mu.Lock()
	for d.draining != nil {
		ch := d.draining
		d.mu.Unlock()
		<-ch
		d.mu.Lock()
	}
	d.closed = true
	inner := d.inner
	d.inner = nil
	streams := d.takeStreamsLocked()
	for pe := range d.peerEnds {
		pe.end()
	}
	d.signalLocked()
	d.mu.Unlock()
	for _, s := range streams {
		s.Close()
	}
	var err error
	if inner != nil {
		err = inner.Close()
	}
	d.o.detach(d)
	return err
}

// Status is the real driver's report while this instance drives the node.
func (d *Driver) Status() manager.DriverStatus {
	d.mu.Lock()
	inner, mode, remote := d.inner, d.mode, d.remote
	d.mu.Unlock()
	if mode == targetLocal && inner != nil {
		if r, ok := inner.(manager.StatusReporter); ok {
			return r.Status()
		}
		return manager.DriverStatus{}
	}
	if mode == targetRemote {
		return manager.DriverStatus{Sessions: "none here: calls are forwarded to the owner, " + remote}
	}
	return manager.DriverStatus{Sessions: "none here: waiting for an instance to own the node"}
}

// Owner is the node's owner as this instance knows it.
func (d *Driver) Owner() manager.OwnerStatus { return d.o.ownerStatus(d.id) }
