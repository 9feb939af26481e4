package sol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"obmd/ipmi"
	"obmd/rmcpplus"
)

// solHandler is the smallest BMC that serves SOL over a real
// rmcpplus.Server: Activate, Deactivate and Get Payload Activation Status
// for one SOL instance, backed by a BMCEndpoint.
type solHandler struct {
	port uint16

	mu       sync.Mutex
	ep       *BMCEndpoint
	owner    *rmcpplus.ServerSession
	eps      chan *BMCEndpoint
	commands []string
}

func (h *solHandler) ServeIPMI(ss *rmcpplus.ServerSession, req *ipmi.Message) (ipmi.CompletionCode, []byte) {
	h.mu.Lock()
	h.commands = append(h.commands, ipmi.CommandName(req.NetFn, req.Cmd))
	h.mu.Unlock()
	if req.NetFn != ipmi.NetFnApp {
		return ipmi.CCInvalidCommand, nil
	}
	switch req.Cmd {
	case ipmi.CmdActivatePayload:
		var r ipmi.ActivatePayloadReq
		if err := r.Unmarshal(req.Data); err != nil {
			return ipmi.CompletionCodeFor(err), nil
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.ep != nil {
			return ipmi.CCPayloadAlreadyActive, nil
		}
		const outbound = 259
		ep := NewBMCEndpoint(EndpointConfig{
			Send:    func(b []byte) error { return ss.SendPayload(rmcpplus.PayloadSOL, b) },
			MaxData: MaxDataForPayloadSize(outbound),
		})
		ss.SetPayloadHandler(rmcpplus.PayloadSOL, ep.HandlePayload)
		h.ep, h.owner = ep, ss
		go func() {
			<-ss.Done()
			h.deactivate(ep)
		}()
		h.eps <- ep
		rsp := ipmi.ActivatePayloadRsp{InboundPayloadSize: 259, OutboundPayloadSize: outbound, Port: h.port, VLAN: ipmi.NoVLAN}
		return ipmi.CCOK, rsp.Marshal()
	case ipmi.CmdDeactivatePayload:
		h.mu.Lock()
		ep := h.ep
		h.mu.Unlock()
		if ep == nil || !h.deactivate(ep) {
			return 0x80, nil // already deactivated
		}
		return ipmi.CCOK, nil
	case ipmi.CmdGetPayloadActivationStatus:
		h.mu.Lock()
		defer h.mu.Unlock()
		rsp := ipmi.GetPayloadActivationStatusRsp{InstanceCapacity: 1}
		if h.ep != nil {
			rsp.Active = 1
		}
		return ipmi.CCOK, rsp.Marshal()
	}
	return ipmi.CCInvalidCommand, nil
}

// deactivate ends ep if it is still the active instance.
func (h *solHandler) deactivate(ep *BMCEndpoint) bool {
	h.mu.Lock()
	if h.ep != ep {
		h.mu.Unlock()
		return false
	}
	h.ep = nil
	h.owner.SetPayloadHandler(rmcpplus.PayloadSOL, nil)
	h.mu.Unlock()
	ep.Close()
	return true
}

func startSOLServer(t *testing.T) (addr string, h *solHandler) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h = &solHandler{port: uint16(pc.LocalAddr().(*net.UDPAddr).Port), eps: make(chan *BMCEndpoint, 4)}
	srv := rmcpplus.NewServer(rmcpplus.ServerConfig{
		GUID: [16]byte{0xa1, 0x23, 0x45},
		Users: func(name string) ([]byte, ipmi.PrivilegeLevel, bool) {
			return []byte("secret"), ipmi.PrivilegeAdministrator, name == "admin"
		},
		Handler: h,
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, rmcpplus.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String(), h
}

func dialSOL(t *testing.T, addr string, suite uint8) *rmcpplus.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{Addr: addr, Username: "admin", Password: []byte("secret"),
		CipherSuite: suite, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConsoleOverRMCPPlus runs the Console against a BMCEndpoint through a
// real rmcpplus client session and server on loopback UDP, with the
// integrity and encryption of cipher suites 17 and 3.
func TestConsoleOverRMCPPlus(t *testing.T) {
	for _, suite := range []uint8{17, 3} {
		t.Run(fmt.Sprintf("cipher suite %d", suite), func(t *testing.T) {
			addr, h := startSOLServer(t)
			sess := dialSOL(t, addr, suite)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Open(ctx, sess, ConsoleOptions{RetryInterval: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			ep := <-h.eps
			hostOut := randomStream(uint64(suite), 256<<10)
			typed := randomStream(uint64(suite)+1, 16<<10)
			var wg sync.WaitGroup
			var atHost []byte
			wg.Add(3)
			go func() { defer wg.Done(); ep.Write(hostOut) }()
			go func() { defer wg.Done(); c.Write(typed) }()
			go func() {
				defer wg.Done()
				atHost, _ = io.ReadAll(io.LimitReader(ep, int64(len(typed))))
			}()
			atConsole, err := io.ReadAll(io.LimitReader(c, int64(len(hostOut))))
			if err != nil {
				t.Fatalf("console Read: %v", err)
			}
			wg.Wait()
			if !bytes.Equal(atConsole, hostOut) {
				t.Fatalf("host to console: %s", firstDifference(atConsole, hostOut))
			}
			if !bytes.Equal(atHost, typed) {
				t.Fatalf("console to host: %s", firstDifference(atHost, typed))
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			h.mu.Lock()
			last := h.commands[len(h.commands)-1]
			h.mu.Unlock()
			if last != "Deactivate Payload" {
				t.Fatalf("last command %q, want Deactivate Payload", last)
			}
		})
	}
}

// TestConsoleTakeOverOverRMCPPlus: a second session takes the SOL payload
// from the first, whose Console learns it was deactivated.
func TestConsoleTakeOverOverRMCPPlus(t *testing.T) {
	addr, h := startSOLServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := Open(ctx, dialSOL(t, addr, 17), ConsoleOptions{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	defer first.Close()
	<-h.eps
	second, err := Open(ctx, dialSOL(t, addr, 17), ConsoleOptions{})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer second.Close()
	ep := <-h.eps
	if got := second.Activation().TakeOvers; got != 1 {
		t.Fatalf("TakeOvers = %d, want 1", got)
	}
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, ErrDeactivated) {
		t.Fatalf("first console Read: %v, want ErrDeactivated", err)
	}
	ep.Write([]byte("ok\n"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(second, buf); err != nil || string(buf) != "ok\n" {
		t.Fatalf("second console read %q, %v", buf, err)
	}
}
