package sol

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// lossyPipe is one direction of an in-memory datagram network: every
// packet takes latency plus up to jitter (so packets overtake each other),
// and may be lost or duplicated, decided by a seeded generator. Like UDP it
// never blocks the sender. Jitter stays below the round trip, as on a real
// network, which is what keeps a late copy within the reach of SOL's 4-bit
// sequence numbers.
type lossyPipe struct {
	name    string
	deliver func([]byte)

	mu              sync.Mutex
	rng             *rand.Rand
	loss, dup       float64
	latency, jitter time.Duration

	record  bool        // keep a copy of every packet sent, in log
	log     [][]byte    // guarded by mu
	dead    atomic.Bool // drop everything: a BMC that died
	sent    atomic.Int64
	dropped atomic.Int64
	nacks   atomic.Int64 // packets carrying the NACK bit
}

func newLossyPipe(name string, seed uint64, loss, dup float64, latency, jitter time.Duration) *lossyPipe {
	return &lossyPipe{name: name, rng: rand.New(rand.NewPCG(seed, 0x501)), loss: loss, dup: dup,
		latency: latency, jitter: jitter}
}

func (p *lossyPipe) send(b []byte) {
	p.sent.Add(1)
	if len(b) >= HeaderLen && b[1] != 0 && Op(b[3])&OpNACK != 0 {
		p.nacks.Add(1)
	}
	if p.dead.Load() {
		p.dropped.Add(1)
		return
	}
	b = append([]byte(nil), b...)
	p.mu.Lock()
	if p.record {
		p.log = append(p.log, b)
	}
	lost := p.rng.Float64() < p.loss
	copies := 1
	if p.rng.Float64() < p.dup {
		copies = 2
	}
	var delays [2]time.Duration
	for i := range copies {
		delays[i] = p.latency
		if p.jitter > 0 {
			delays[i] += time.Duration(p.rng.Int64N(int64(p.jitter)))
		}
	}
	p.mu.Unlock()
	if lost {
		p.dropped.Add(1)
		return
	}
	if p.latency == 0 && p.jitter == 0 {
		for range copies {
			p.deliver(b) // an instant network, for benchmarks
		}
		return
	}
	for i := range copies {
		time.AfterFunc(delays[i], func() {
			if !p.dead.Load() {
				p.deliver(b)
			}
		})
	}
}

func (p *lossyPipe) sentPackets() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.log...)
}

// fakeConn is the console's end of the payload channel.
type fakeConn struct {
	out     *lossyPipe
	decided int // what Port reports (an OpenPayloadEither connection's answering port)

	mu     sync.Mutex
	closed bool
	recv   chan []byte
}

func newFakeConn(out *lossyPipe) *fakeConn {
	return &fakeConn{out: out, recv: make(chan []byte, 1024)}
}

func (c *fakeConn) Send(b []byte) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("fake payload connection closed")
	}
	c.out.send(b)
	return nil
}

func (c *fakeConn) Recv() <-chan []byte { return c.recv }

func (c *fakeConn) Port() int { return c.decided }

func (c *fakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.recv)
	}
	return nil
}

// deliver queues an inbound payload, dropping it when the reader is behind
// (as rmcpplus does).
func (c *fakeConn) deliver(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.recv <- b:
	default:
	}
}

func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// fakeBMC answers the payload commands like a BMC and runs a BMCEndpoint
// for the active SOL instance.
type fakeBMC struct {
	inbound, outbound, port uint16
	epCfg                   EndpointConfig // template; Send is filled in
	toConsole               *lossyPipe

	mu       sync.Mutex
	ep       *BMCEndpoint
	active   bool
	calls    []string // "Activate Payload 0101c6000000", ...
	hook     func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool)
	activate chan *BMCEndpoint // receives each new endpoint
}

func (f *fakeBMC) Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %x", ipmi.CommandName(netfn, cmd), data))
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if rsp, err, handled := hook(ctx, cmd, data); handled {
			return rsp, err
		}
	}
	if netfn != ipmi.NetFnApp {
		return nil, &ipmi.CompletionError{NetFn: netfn, Cmd: cmd, Code: ipmi.CCInvalidCommand}
	}
	ccErr := func(code ipmi.CompletionCode) error {
		return &ipmi.CompletionError{NetFn: netfn, Cmd: cmd, Code: code}
	}
	switch cmd {
	case ipmi.CmdActivatePayload:
		var req ipmi.ActivatePayloadReq
		if err := req.Unmarshal(data); err != nil {
			return nil, ccErr(ipmi.CompletionCodeFor(err))
		}
		f.mu.Lock()
		if f.active {
			f.mu.Unlock()
			return nil, ccErr(ipmi.CCPayloadAlreadyActive)
		}
		cfg := f.epCfg
		cfg.Send = func(b []byte) error { f.toConsole.send(b); return nil }
		cfg.MaxData = MaxDataForPayloadSize(int(f.outbound))
		ep := NewBMCEndpoint(cfg)
		f.ep, f.active = ep, true
		f.mu.Unlock()
		if f.activate != nil {
			f.activate <- ep
		}
		rsp := ipmi.ActivatePayloadRsp{InboundPayloadSize: f.inbound, OutboundPayloadSize: f.outbound,
			Port: f.port, VLAN: ipmi.NoVLAN}
		return rsp.Marshal(), nil
	case ipmi.CmdDeactivatePayload:
		f.mu.Lock()
		ep, active := f.ep, f.active
		f.active = false
		f.mu.Unlock()
		if !active {
			return nil, ccErr(0x80)
		}
		ep.Close()
		return nil, nil
	case ipmi.CmdGetPayloadActivationStatus:
		f.mu.Lock()
		defer f.mu.Unlock()
		rsp := ipmi.GetPayloadActivationStatusRsp{InstanceCapacity: 1}
		if f.active {
			rsp.Active = 1
		}
		return rsp.Marshal(), nil
	}
	return nil, ccErr(ipmi.CCInvalidCommand)
}

// handle is the session's SOL payload handler.
func (f *fakeBMC) handle(b []byte) {
	f.mu.Lock()
	ep := f.ep
	f.mu.Unlock()
	if ep != nil {
		ep.HandlePayload(b)
	}
}

func (f *fakeBMC) setHook(h func(ctx context.Context, cmd ipmi.Command, data []byte) ([]byte, error, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

func (f *fakeBMC) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBMC) endpoint() *BMCEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ep
}

// fakeSession is a ClientSession[*fakeConn] without CipherSuite.
type fakeSession struct {
	bmc  *fakeBMC
	conn *fakeConn

	mu         sync.Mutex
	openedPort int
	done       chan struct{}
	err        error
}

func (s *fakeSession) Do(ctx context.Context, netfn ipmi.NetFn, cmd ipmi.Command, data []byte) ([]byte, error) {
	select {
	case <-s.done:
		return nil, s.Err()
	default:
	}
	return s.bmc.Do(ctx, netfn, cmd, data)
}

func (s *fakeSession) OpenPayload(pt rmcpplus.PayloadType, port int) (*fakeConn, error) {
	if pt != rmcpplus.PayloadSOL {
		return nil, fmt.Errorf("payload type %v", pt)
	}
	s.mu.Lock()
	s.openedPort = port
	s.mu.Unlock()
	return s.conn, nil
}

func (s *fakeSession) Done() <-chan struct{} { return s.done }

func (s *fakeSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// end ends the session with err.
func (s *fakeSession) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.done)
	}
}

// suiteSession also reports its cipher suite.
type suiteSession struct {
	*fakeSession
	suite rmcpplus.CipherSuite
}

func (s suiteSession) CipherSuite() rmcpplus.CipherSuite { return s.suite }

// rig is a Console's world: a fake session to a fake BMC over two lossy
// pipes.
type rig struct {
	bmc              *fakeBMC
	sess             *fakeSession
	toBMC, toConsole *lossyPipe
}

type rigConfig struct {
	seed              uint64
	loss, dup         float64
	latency, jitter   time.Duration
	inbound, outbound uint16
	endpoint          EndpointConfig
}

func newRig(c rigConfig) *rig {
	if c.latency < 0 {
		c.latency = 0 // instant
	} else if c.latency == 0 {
		c.latency = time.Millisecond
	}
	if c.inbound == 0 {
		c.inbound = 259
	}
	if c.outbound == 0 {
		c.outbound = 259
	}
	r := &rig{}
	r.toConsole = newLossyPipe("BMC->console", c.seed, c.loss, c.dup, c.latency, c.jitter)
	r.toBMC = newLossyPipe("console->BMC", c.seed+1000, c.loss, c.dup, c.latency, c.jitter)
	r.bmc = &fakeBMC{inbound: c.inbound, outbound: c.outbound, port: 623, epCfg: c.endpoint, toConsole: r.toConsole}
	r.sess = &fakeSession{bmc: r.bmc, conn: newFakeConn(r.toBMC), done: make(chan struct{})}
	r.toConsole.deliver = r.sess.conn.deliver
	r.toBMC.deliver = r.bmc.handle
	return r
}
