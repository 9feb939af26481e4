package fakebmc

import (
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/bmc"
	"obmd/internal/peertest"
	"obmd/ipmi"
	"obmd/rmcpplus"
)

// The compatibility matrix, session half: for each row of BMC-QUIRKS.md
// "Handshake and session", fakebmc reproducing it, and what ipmitool,
// FreeIPMI and obmd's client do against it with no workaround flag or
// configured quirk anywhere. The peers' outcomes are asserted, so this
// table documents their behaviour (ipmitool 1.8.19, FreeIPMI 1.6.10) and
// fails if it changes; obmd must work wherever either peer does, and give
// a precise error in under 2 s on the error rows.

// peerOutcome is what a peer run did: succeeded (exit 0 and the power
// state printed), or failed; either way its output says says.
type peerOutcome struct {
	ok   bool
	says string
	// orSays is another text the peer may print instead, where its
	// outcome varies from run to run.
	orSays string
}

// obmdOutcome is what obmd's client did.
type obmdOutcome struct {
	ok         bool
	suite      uint8  // negotiated
	handshakes uint64 // Open Session Requests the BMC saw for the first session
	// again is what the second session (from what the first learned)
	// costs; 0 means 1.
	again    uint64
	detected string // the deviation reported ("" none)
	// On the error rows: the error (errors.Is) and what it says.
	is   error
	says string
}

// compatRow is one row of the matrix.
type compatRow struct {
	name   string // the quirk, or what the row is
	quirk  Quirk  // "" for none
	suites []uint8
	user   string // the clients' user name; "" is the BMC's
	// ipmitool -I lanplus -N 1 -R 1 chassis power status, without -C
	// (ipmitool asks the suites and picks 17, else 3) and with -C 17.
	ipmitool, ipmitool17 peerOutcome
	// ipmipower --stat with FreeIPMI's defaults: suite 3, operator.
	freeipmi peerOutcome
	obmd     obmdOutcome
}

var (
	ipmitoolOK = peerOutcome{ok: true, says: "Chassis Power is"}
	freeipmiOK = peerOutcome{ok: true, says: "127.0.0.1: "}
	noSession  = peerOutcome{says: "Unable to establish IPMI v2 / RMCP+ session"}
)

// sessionCompatRows are the rows, in BMC-QUIRKS.md's order.
func sessionCompatRows() []compatRow {
	return []compatRow{
		{name: "healthy", ipmitool: ipmitoolOK, ipmitool17: ipmitoolOK, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1}},
		{name: "intel20", quirk: QuirkIntel20,
			ipmitool: noSession, ipmitool17: noSession, freeipmi: peerOutcome{says: "password invalid"},
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1, detected: rmcpplus.QuirkIntel20}},
		{name: "long auth code", quirk: QuirkRAKP2LongAuthCode,
			ipmitool: ipmitoolOK, ipmitool17: ipmitoolOK, freeipmi: peerOutcome{says: "password invalid"},
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1, detected: rmcpplus.QuirkSupermicro20}},
		{name: "bad IPMI checksum", quirk: QuirkBadChecksum,
			ipmitool: ipmitoolOK, ipmitool17: ipmitoolOK, freeipmi: peerOutcome{says: "session timeout"},
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1, detected: rmcpplus.QuirkNoChecksumCheck}},
		// An unknown user: ipmitool never checks the tag of an error and
		// fails at once; FreeIPMI drops it and times out (in some runs,
		// seen on a loaded machine, it reports "BMC error" instead); obmd
		// says why.
		{name: "RAKP error with tag 0, unknown user", quirk: QuirkRAKPErrorTag0, user: "nobody",
			ipmitool: noSession, ipmitool17: noSession, freeipmi: peerOutcome{says: "session timeout", orSays: "BMC error"},
			obmd: obmdOutcome{is: rmcpplus.ErrUnknownUser, says: `unknown user "nobody"`, detected: rmcpplus.QuirkRAKPErrorTag0}},
		{name: "1-byte Open Session error", quirk: QuirkOpenSessionShortError,
			ipmitool: noSession, ipmitool17: noSession, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 3, handshakes: 2, detected: rmcpplus.QuirkShortOpenSessionError}},
		{name: "advertised suite broken: zero auth code", quirk: QuirkSuite17ZeroAuthCode,
			ipmitool: noSession, ipmitool17: noSession, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 3, handshakes: 2, detected: rmcpplus.QuirkBrokenSuite}},
		{name: "advertised suite broken: refused", quirk: QuirkSuite17Refused,
			ipmitool:   peerOutcome{says: "Error in open session response message : illegal parameter"},
			ipmitool17: peerOutcome{says: "illegal parameter"}, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 3, handshakes: 2, detected: rmcpplus.QuirkBrokenSuite}},
		// ipmitool prints its failure and falls back to suite 3 after
		// its retries (-N 1 -R 1 here; ~10 s with its defaults).
		{name: "no cipher-suite list", quirk: QuirkNoCipherList,
			ipmitool: peerOutcome{ok: true, says: "Unable to Get Channel Cipher Suites"}, ipmitool17: ipmitoolOK, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1, detected: rmcpplus.QuirkNoCipherSuiteList}},
		// ipmitool restarts the handshake; ipmipower reports "BMC error".
		{name: "non-idempotent handshake resend", quirk: QuirkHandshakeResendError,
			ipmitool:   peerOutcome{ok: true, says: "no response from RAKP 1 message"},
			ipmitool17: peerOutcome{ok: true, says: "no response from RAKP 1 message"}, freeipmi: peerOutcome{says: "BMC error"},
			// Every new console address meets the lost RAKP 2 again.
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 2, again: 2, detected: rmcpplus.QuirkHandshakeResend}},
		// FreeIPMI asks for operator privilege by default.
		{name: "admin privilege refused", quirk: QuirkAdminRefused,
			ipmitool:   peerOutcome{says: "Set Session Privilege Level to ADMINISTRATOR failed"},
			ipmitool17: peerOutcome{says: "Set Session Privilege Level to ADMINISTRATOR failed"}, freeipmi: freeipmiOK,
			obmd: obmdOutcome{ok: true, suite: 17, handshakes: 1, detected: rmcpplus.QuirkAdminRefused}},
		// Issue 9 defect 4: a BMC offering no encryption. ipmitool picks
		// suite 3 anyway and is refused; obmd refuses to go unencrypted
		// and names the opt-in.
		{name: "no confidentiality offered", suites: []uint8{1, 2},
			ipmitool:   peerOutcome{says: "no matching cipher suite"},
			ipmitool17: peerOutcome{says: "no matching cipher suite"}, freeipmi: peerOutcome{says: "cipher suite id unavailable"},
			obmd: obmdOutcome{says: "cipher_suite"}},
	}
}

func TestSessionCompatibility(t *testing.T) {
	t.Parallel()
	for _, row := range sessionCompatRows() {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			qs := QuirkSet()
			if row.quirk != "" {
				qs = QuirkSet(row.quirk)
			}
			f := startTestFleet(t, 1, func(c *FleetConfig) {
				c.BMC.Quirks = qs
				c.BMC.CipherSuites = row.suites
			})
			user := row.user
			if user == "" {
				user = testUser
			}
			// obmd first: the BMC's Open Session count is then its own.
			checkObmdAgainst(t, f, user, row.obmd)
			tg := peertest.Target{Port: portOf(t, f.Addr(0)), Username: user, Password: testPass}
			t.Run("ipmitool", func(t *testing.T) {
				t.Parallel()
				r := peertest.Ipmitool(t, t.Context(), tg, "-I", "lanplus", "-N", "1", "-R", "1", "chassis", "power", "status")
				checkPeer(t, r, row.ipmitool, regexp.MustCompile(`Chassis Power is (on|off)`))
			})
			t.Run("ipmitool -C 17", func(t *testing.T) {
				t.Parallel()
				r := peertest.Ipmitool(t, t.Context(), tg, "-I", "lanplus", "-C", "17", "-N", "1", "-R", "1", "chassis", "power", "status")
				checkPeer(t, r, row.ipmitool17, regexp.MustCompile(`Chassis Power is (on|off)`))
			})
			t.Run("ipmipower", func(t *testing.T) {
				t.Parallel()
				// ipmipower waits 20 s for a silent BMC by default.
				r := peertest.Ipmipower(t, t.Context(), tg, "--session-timeout=3000", "--retransmission-timeout=500", "--stat")
				checkPeer(t, r, row.freeipmi, regexp.MustCompile(`127\.0\.0\.1: (on|off)\n`))
			})
		})
	}
}

// checkPeer asserts a peer's outcome: success means exit 0 and the power
// state printed (done); failure means it was not printed.
func checkPeer(t *testing.T, r peertest.Result, want peerOutcome, done *regexp.Regexp) {
	t.Helper()
	out := r.Stdout + r.Stderr
	ok := r.OK() && done.MatchString(out)
	says := strings.Contains(out, want.says) || (want.orSays != "" && strings.Contains(out, want.orSays))
	if ok != want.ok || !says {
		t.Fatalf("want ok=%v saying %q; got ok=%v:\n%s", want.ok, want.says, ok, r)
	}
}

// checkObmdAgainst runs obmd's client, with no quirk configured, against
// BMC 0 of f: on the rows that work, power on, status, off, status and
// the boot device, then a second session that starts from what the first
// learned (one Open Session, but where the BMC makes every new client pay);
// on the error rows, the error and how fast.
func checkObmdAgainst(t *testing.T, f *Fleet, user string, want obmdOutcome) {
	t.Helper()
	b := f.BMC(0)
	profile := rmcpplus.NewProfile()
	cfg := bmc.Config{Addr: f.Addr(0), Username: user, Password: []byte(testPass), Profile: profile,
		Timeout: 400 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := bmc.Dial(ctx, cfg)
	took := time.Since(start)
	if !want.ok {
		if err == nil {
			c.Close()
			t.Fatal("obmd: Dial succeeded; want an error")
		}
		if (want.is != nil && !errors.Is(err, want.is)) || !strings.Contains(err.Error(), want.says) {
			t.Fatalf("obmd: Dial: %v; want %v saying %q", err, want.is, want.says)
		}
		if took >= 2*time.Second {
			t.Fatalf("obmd: the error took %v; want it in under 2 s", took)
		}
		if want.detected != "" && !hasDetection(profile.Detected(), want.detected) {
			t.Fatalf("obmd: detected %+v; want %s", profile.Detected(), want.detected)
		}
		return
	}
	if err != nil {
		t.Fatalf("obmd: Dial: %v", err)
	}
	defer c.Close()
	n := c.Session().Negotiation()
	if n.Suite != want.suite {
		t.Errorf("obmd: negotiated suite %d, want %d", n.Suite, want.suite)
	}
	if got := b.OpenSessionRequests(); got != want.handshakes {
		t.Errorf("obmd: the BMC saw %d Open Session Requests, want %d", got, want.handshakes)
	}
	if want.detected == "" && len(n.Detected) > 0 || want.detected != "" && !hasDetection(n.Detected, want.detected) {
		t.Errorf("obmd: detected %+v; want %q", n.Detected, want.detected)
	}
	if err := c.PowerOn(ctx); err != nil || !b.PowerOn() {
		t.Fatalf("obmd: power on: %v (machine on: %v)", err, b.PowerOn())
	}
	if on, err := c.PowerStatus(ctx); err != nil || !on {
		t.Fatalf("obmd: power status after on: %v, %v", on, err)
	}
	if err := c.PowerOff(ctx); err != nil || b.PowerOn() {
		t.Fatalf("obmd: power off: %v (machine on: %v)", err, b.PowerOn())
	}
	if on, err := c.PowerStatus(ctx); err != nil || on {
		t.Fatalf("obmd: power status after off: %v, %v", on, err)
	}
	if err := c.SetBootDevice(ctx, ipmi.BootDevicePXE, true); err != nil || b.BootDevice() != ipmi.BootDevicePXE {
		t.Fatalf("obmd: boot device pxe: %v (BMC has %v)", err, b.BootDevice())
	}
	// The next session pays nothing for the deviation: one handshake.
	before := b.OpenSessionRequests()
	c2, err := bmc.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("obmd: second Dial: %v", err)
	}
	defer c2.Close()
	if got, again := b.OpenSessionRequests()-before, max(want.again, 1); got != again {
		t.Errorf("obmd: the second session took %d Open Session Requests, want %d", got, again)
	}
	if _, err := c2.PowerStatus(ctx); err != nil {
		t.Fatalf("obmd: power status on the second session: %v", err)
	}
}

func hasDetection(ds []rmcpplus.Detection, name string) bool {
	return slices.ContainsFunc(ds, func(d rmcpplus.Detection) bool { return d.Name == name })
}

// portOf is the port of host:port.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	n, cerr := strconv.Atoi(port)
	if err != nil || cerr != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return n
}
