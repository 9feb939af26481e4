package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"obmd/manager"
)

// inputDriver is a driver whose console stream takes input, as streams do
// once the interactive console exists.
type inputDriver struct {
	manager.Driver
	mu     sync.Mutex
	typed  []byte
	breaks int
}

type inputConsole struct {
	io.ReadCloser
	d *inputDriver
}

func (c inputConsole) Write(p []byte) (int, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.typed = append(c.d.typed, p...)
	return len(p), nil
}
func (c inputConsole) SendBreak() error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.breaks++
	return nil
}
func (c inputConsole) DiscardInput() int { return 0 }

func (d *inputDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	rc, err := d.Driver.OpenConsole(ctx)
	if err != nil {
		return nil, err
	}
	return inputConsole{ReadCloser: rc, d: d}, nil
}

// TestLocalConsoleInputPassesThrough: while this instance drives the node,
// the cluster's wrapper keeps the real stream's input side.
func TestLocalConsoleInputPassesThrough(t *testing.T) {
	t.Parallel()
	c := &Cluster{log: slog.New(slog.DiscardHandler)}
	o := newOwners(c)
	inner := &inputDriver{Driver: manager.NewMockDriver(manager.MockInfo{Addr: "x"})}
	typ := manager.DriverType{New: func(manager.DriverInfo, manager.DriverEnv) (manager.Driver, error) { return inner, nil }}
	d := newDriver(o, typ, manager.MockInfo{Addr: "x"}, manager.DriverEnv{NodeID: "n"})
	d.point(target{kind: targetLocal})
	defer d.Close()
	rc, err := d.OpenConsole(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	in, ok := rc.(manager.ConsoleWriter)
	if !ok {
		t.Fatalf("the wrapper hid the stream's input side (%T)", rc)
	}
	if _, err := in.Write([]byte("ls\r")); err != nil {
		t.Fatal(err)
	}
	if err := in.SendBreak(); err != nil {
		t.Fatal(err)
	}
	inner.mu.Lock()
	defer inner.mu.Unlock()
	if string(inner.typed) != "ls\r" || inner.breaks != 1 {
		t.Errorf("the real stream got %q and %d breaks", inner.typed, inner.breaks)
	}
	// A stream without an input side stays watch-only.
	watchOnly := manager.DriverType{New: func(manager.DriverInfo, manager.DriverEnv) (manager.Driver, error) {
		return readOnlyDriver{manager.NewMockDriver(manager.MockInfo{Addr: "x"})}, nil
	}}
	d2 := newDriver(o, watchOnly, manager.MockInfo{Addr: "x"}, manager.DriverEnv{NodeID: "m"})
	d2.point(target{kind: targetLocal})
	defer d2.Close()
	rc2, err := d2.OpenConsole(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if _, ok := rc2.(manager.ConsoleWriter); ok {
		t.Error("a watch-only stream gained an input side")
	}
}

// readOnlyDriver's console stream has no input side.
type readOnlyDriver struct{ *manager.MockDriver }

func (d readOnlyDriver) OpenConsole(ctx context.Context) (io.ReadCloser, error) {
	rc, err := d.MockDriver.OpenConsole(ctx)
	if err != nil {
		return nil, err
	}
	return struct{ io.ReadCloser }{rc}, nil
}

// TestRemoteConsoleInput: a console stream from the owner has an input
// side, which forwards to the owner's console; input for a stream the
// owner does not serve is "not the owner" (the forwarder reopens). The
// bytes reaching a BMC through it are checked end to end in cmd/obmd
// (TestClusterConsoleInput).
func TestRemoteConsoleInput(t *testing.T) {
	t.Parallel()
	owner, other := ownerAndOther(t)
	var d *Driver
	other.c.own.mu.Lock()
	for x := range other.c.own.nodes["n"].drivers {
		d = x
	}
	other.c.own.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	in, ok := rc.(manager.ConsoleWriter)
	if !ok {
		t.Fatalf("a stream from the owner has no input side (%T)", rc)
	}
	if n, err := in.Write([]byte("x")); err != nil || n != 1 {
		t.Errorf("input through the owner: %d, %v", n, err)
	}
	if err := in.SendBreak(); err != nil {
		t.Errorf("break through the owner: %v", err)
	}
	// Input naming a stream the owner does not serve.
	ps := &peerStream{p: other.c.peers, base: owner.url, id: "n", stream: "0123", ctx: ctx}
	ps.inputCtx, ps.inputCancel = context.WithCancel(ctx)
	if err := ps.SendBreak(); !errors.Is(err, errNotOwner) {
		b, _ := json.Marshal(err)
		t.Errorf("input for an unknown stream: %v %s, want not-owner", err, b)
	}
}
