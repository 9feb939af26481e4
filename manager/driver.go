package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
)

// PowerDriver controls a node's power and boot device.
//
// The Manager never calls two methods of one node's driver at the same time,
// and bounds each call with a context deadline (the operation timeout):
// drivers must give up when ctx is done. Errors should be made with
// Invalidf, BMCError or TimeoutError; others become BMC errors (502), and
// context.DeadlineExceeded or a net.Error timeout becomes a timeout (504).
type PowerDriver interface {
	// PowerOn turns the node on; a node already on stays on.
	PowerOn(ctx context.Context) error
	// PowerOff turns the node off at once (hard off); a node already off
	// stays off.
	PowerOff(ctx context.Context) error
	// PowerCycle with force resets the node at once. Without force it asks
	// the OS to shut down (ACPI soft off) and powers on once the node is off,
	// forcing it off after a grace period. A node that is off is powered on.
	PowerCycle(ctx context.Context, force bool) error
	// PowerStatus reports the power state ("on" or "off" for real BMCs).
	PowerStatus(ctx context.Context) (string, error)
	// SetBootDevice sets the persistent boot device. The device names are the
	// driver's ("pxe", "disk", "none" for IPMI); an unknown name is an
	// Invalidf error (400).
	SetBootDevice(ctx context.Context, dev string) error
}

// ConsoleDriver opens a node's serial console.
type ConsoleDriver interface {
	// OpenConsole starts a console stream. ctx bounds only the opening; the
	// stream lives until it is closed or the console ends. Close must make a
	// pending Read return promptly. The console hub opens at most one stream
	// per node at a time, whatever the number of viewers.
	//
	// A stream that also implements ConsoleWriter takes the tenants' input;
	// one that does not is watch-only (input is refused with
	// ErrUnsupported).
	OpenConsole(ctx context.Context) (io.ReadCloser, error)
}

// ConsoleWriter is the input side of a console stream. The hub calls Write
// and SendBreak from one goroutine at a time; DiscardInput and Close may
// come while a Write blocks, and must make it return.
type ConsoleWriter interface {
	// Write types p on the console, in order after everything written
	// before. It returns once the driver holds all of p in a bounded
	// buffer (for SOL: at most the console's MaxPending bytes not yet
	// acknowledged by the BMC), blocking while that buffer is full: this
	// is how a writer faster than the BMC is slowed down. It fails only
	// once the stream has ended; some of p may have reached the BMC then.
	Write(p []byte) (int, error)
	// SendBreak sends a serial break after the bytes already written.
	SendBreak() error
	// DiscardInput drops the input written and not yet sent to the BMC
	// (the tenancy ended: none of it may reach the machine afterwards),
	// and a break not yet sent; a blocked Write returns. It returns the
	// bytes dropped.
	DiscardInput() int
}

// Driver is everything obmd needs from one node's out-of-band controller.
type Driver interface {
	PowerDriver
	ConsoleDriver
	// Close releases the driver's resources (BMC sessions, goroutines). It is
	// called once, after the node's console stream has been closed and no
	// other call is in flight.
	Close() error
}

// DriverInfo is a node's validated driver configuration. Its LogValue (and
// String) must leave out secrets such as passwords and keys: it is what logs
// show of a node.
type DriverInfo interface {
	slog.LogValuer
	fmt.Stringer
}

// DriverEnv is what a driver constructor gets besides the node's info.
type DriverEnv struct {
	NodeID string
	Logger *slog.Logger // already carries the node id attribute
	// Counters is where the driver counts dials and SOL takeovers for the
	// daemon's metrics; nil outside a Manager (DriverCounters' methods
	// accept a nil receiver).
	Counters *DriverCounters
}

// DriverType describes one kind of driver, such as "mock" or "ipmi".
type DriverType struct {
	// ParseInfo validates a node's "info" object. Unknown fields, missing
	// required fields and invalid values must be rejected with an error of
	// kind ErrInvalid (see ValidationError). It must not do I/O.
	ParseInfo func(raw json.RawMessage) (DriverInfo, error)
	// New builds the driver of one node from the info ParseInfo returned. It
	// must not do network I/O (sessions are opened on first use): it runs for
	// every stored node at startup. A nil New means the type is known but not
	// available in this build; registering such a node fails with
	// ErrUnsupported after its info has been validated.
	New func(info DriverInfo, env DriverEnv) (Driver, error)
}

// Registry maps driver type names to their DriverType. Build it before
// handing it to the Manager; it is not modified afterwards.
type Registry struct {
	types map[string]DriverType
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{types: make(map[string]DriverType)}
}

// Register adds a driver type. Names are unique and ParseInfo is required.
func (r *Registry) Register(name string, t DriverType) error {
	if name == "" || t.ParseInfo == nil {
		return fmt.Errorf("manager: driver type %q needs a name and a ParseInfo function", name)
	}
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("manager: driver type %q registered twice", name)
	}
	r.types[name] = t
	return nil
}

// Names lists the registered type names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.types))
	for n := range r.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Type returns the named driver type.
func (r *Registry) Type(name string) (DriverType, bool) {
	t, ok := r.types[name]
	return t, ok
}

func (r *Registry) lookup(name string) (DriverType, error) {
	t, ok := r.types[name]
	if !ok {
		return DriverType{}, Invalidf("unknown driver type %q (known: %v)", name, r.Names())
	}
	return t, nil
}

// BuiltinDrivers returns a registry holding "mock" (the original obmd's test
// driver, which HIL's integration tests use), "ipmi" and "redfish", each
// with its default configuration.
func BuiltinDrivers() *Registry {
	r := NewRegistry()
	mustRegister(r, "mock", MockDriverType())
	mustRegister(r, "ipmi", IPMIDriverType(IPMIDriverConfig{}))
	mustRegister(r, "redfish", RedfishDriverType(RedfishDriverConfig{}))
	return r
}

// typedDriver makes a DriverType from a driver's own parser and
// constructor, which take and give its concrete info type I. A nil build
// leaves New nil: the type is known but not available.
func typedDriver[I DriverInfo](name string, parse func(json.RawMessage) (I, error), build func(I, DriverEnv) (Driver, error)) DriverType {
	t := DriverType{
		ParseInfo: func(raw json.RawMessage) (DriverInfo, error) {
			info, err := parse(raw)
			if err != nil {
				return nil, err
			}
			return info, nil
		},
	}
	if build != nil {
		t.New = func(info DriverInfo, env DriverEnv) (Driver, error) {
			ti, ok := info.(I)
			if !ok {
				return nil, fmt.Errorf("manager: %s driver given %T info", name, info)
			}
			return build(ti, env)
		}
	}
	return t
}

func mustRegister(r *Registry, name string, t DriverType) {
	if err := r.Register(name, t); err != nil {
		panic(err)
	}
}
