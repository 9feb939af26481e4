package rmcpplus

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"obmd/ipmi"
)

func response(seq uint8, netfn ipmi.NetFn, cmd ipmi.Command, data ...byte) *ipmi.Message {
	return &ipmi.Message{DstAddr: ipmi.AddrRemoteSW, NetFn: netfn, SrcAddr: ipmi.AddrBMC, Seq: seq, Cmd: cmd, Data: data}
}

func TestRequestTableDeliver(t *testing.T) {
	tests := []struct {
		name          string
		authenticated bool // request requires authentication
		rsp           *ipmi.Message
		rspAuth       bool
		want          bool
	}{
		{"matching answer", true, response(0, ipmi.NetFnChassis.Response(), ipmi.CmdGetChassisStatus, 0, 1), true, true},
		{"request NetFn instead of response NetFn", true, response(0, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, 0), true, false},
		{"other command", true, response(0, ipmi.NetFnChassis.Response(), ipmi.CmdChassisControl, 0), true, false},
		{"other NetFn", true, response(0, ipmi.NetFnApp.Response(), ipmi.CmdGetChassisStatus, 0), true, false},
		{"other rqSeq", true, response(1, ipmi.NetFnChassis.Response(), ipmi.CmdGetChassisStatus, 0), true, false},
		{"no completion code", true, response(0, ipmi.NetFnChassis.Response(), ipmi.CmdGetChassisStatus), true, false},
		{"unauthenticated answer to in-session request", true, response(0, ipmi.NetFnChassis.Response(), ipmi.CmdGetChassisStatus, 0), false, false},
		{"unauthenticated answer to pre-session request", false, response(0, ipmi.NetFnChassis.Response(), ipmi.CmdGetChassisStatus, 0), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newRequestTable()
			seq, _, err := tab.acquire(context.Background(), nil, ipmi.NetFnChassis, ipmi.CmdGetChassisStatus, tt.authenticated)
			if err != nil || seq != 0 {
				t.Fatalf("acquire = %d, %v", seq, err)
			}
			if got := tab.deliver(tt.rsp, tt.rspAuth); got != tt.want {
				t.Fatalf("deliver = %v, want %v", got, tt.want)
			}
			got := tab.take(seq)
			if tt.want && string(got) != string(tt.rsp.Data) {
				t.Fatalf("take = % X, want % X", got, tt.rsp.Data)
			}
			if !tt.want && got != nil {
				t.Fatalf("take = % X, want nothing", got)
			}
		})
	}
}

func TestRequestTableRoundRobinAndRelease(t *testing.T) {
	tab := newRequestTable()
	ctx := context.Background()
	a, _, _ := tab.acquire(ctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true)
	b, _, _ := tab.acquire(ctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true)
	if a != 0 || b != 1 {
		t.Fatalf("first two rqSeq = %d, %d; want 0, 1", a, b)
	}
	tab.release(a)
	// A released number is not reused at once: the next one is 2.
	c, _, _ := tab.acquire(ctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true)
	if c != 2 {
		t.Fatalf("third rqSeq = %d, want 2", c)
	}
	// A late answer to a released request is dropped.
	if tab.deliver(response(a, ipmi.NetFnApp.Response(), ipmi.CmdGetDeviceID, 0), true) {
		t.Fatal("answer to released rqSeq delivered")
	}
}

func TestRequestTableDuplicateRequestKeepsAnswer(t *testing.T) {
	tab := newRequestTable()
	seq, slot, _ := tab.acquire(context.Background(), nil, ipmi.NetFnChassis, ipmi.CmdChassisControl, true)
	nf := ipmi.NetFnChassis.Response()
	tab.deliver(response(seq, nf, ipmi.CmdChassisControl, 0x00), true)
	tab.deliver(response(seq, nf, ipmi.CmdChassisControl, byte(ipmi.CCDuplicateRequest)), true)
	<-slot.ready
	if got := tab.take(seq); len(got) != 1 || got[0] != 0 {
		t.Fatalf("answer = % X, want 00 (0xCF must not replace it)", got)
	}
	// A 0xCF first, then the real answer: the real answer wins.
	tab.deliver(response(seq, nf, ipmi.CmdChassisControl, byte(ipmi.CCDuplicateRequest)), true)
	tab.deliver(response(seq, nf, ipmi.CmdChassisControl, 0x00, 0x42), true)
	<-slot.ready
	if got := tab.take(seq); len(got) != 2 || got[1] != 0x42 {
		t.Fatalf("answer = % X, want 00 42", got)
	}
}

// With all 64 numbers in use, the 65th caller waits until one is released,
// and gives up when its context ends or the table's owner stops.
func TestRequestTableFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := newRequestTable()
		ctx := context.Background()
		for range rqSeqCount {
			if _, _, err := tab.acquire(ctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan uint8)
		go func() {
			seq, _, err := tab.acquire(ctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true)
			if err != nil {
				t.Error(err)
			}
			got <- seq
		}()
		synctest.Wait()
		select {
		case seq := <-got:
			t.Fatalf("65th acquire returned %d while all were busy", seq)
		default:
		}
		tab.release(17)
		if seq := <-got; seq != 17 {
			t.Fatalf("65th acquire = %d, want the released 17", seq)
		}

		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, _, err := tab.acquire(tctx, nil, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("acquire on full table with deadline: %v", err)
		}
		stop := make(chan struct{})
		close(stop)
		if _, _, err := tab.acquire(ctx, stop, ipmi.NetFnApp, ipmi.CmdGetDeviceID, true); err != errStopped {
			t.Fatalf("acquire on full stopped table: %v", err)
		}
	})
}
