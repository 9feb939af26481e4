package rmcpplus

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"obmd/ipmi"
)

// The negotiation policy, without sockets: each case starts a plan, feeds
// it the answers a BMC gave, and checks every attempt it asked for and
// how it ended.

// step is one attempt of a scripted negotiation: the attempt the plan
// must ask for, and the outcome to feed back.
type step struct {
	want attemptSpec
	got  attemptOutcome
}

var (
	errUnknown  = errors.New("unknown user")
	errPassword = errors.New("wrong password")
	errRefused  = errors.New("refused")
	errTimeout  = &timeoutError{addr: "bmc", what: "x", attempts: 4}
)

func refused(st stage, status RAKPStatus) attemptOutcome {
	return attemptOutcome{Stage: st, Kind: outcomeRefused, Status: status, Err: errRefused}
}

var ok = attemptOutcome{Kind: outcomeOK}

func TestPlan(t *testing.T) {
	admin := ipmi.PrivilegeAdministrator
	type listAnswer struct {
		offered []uint8
		err     error
	}
	tests := []struct {
		name     string
		pinned   uint8
		known    knowledge
		w        Workarounds
		list     *listAnswer // nil: the plan must not ask for the list
		steps    []step
		wantErr  error  // nil: the last step succeeds
		wantText string // or the final error must contain this
		detected []string
	}{
		{
			name:  "healthy BMC: 17 in one handshake",
			list:  &listAnswer{offered: []uint8{1, 2, 3, 17}},
			steps: []step{{attemptSpec{Suite: 17, NameOnlyLookup: true}, ok}},
		},
		{
			name:  "3 when 17 is not listed",
			list:  &listAnswer{offered: []uint8{1, 2, 3}},
			steps: []step{{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok}},
		},
		{
			name:     "only suites without confidentiality: refused before any handshake",
			list:     &listAnswer{offered: []uint8{1, 2}},
			wantText: "offers cipher suites [1 2], none with confidentiality",
		},
		{
			name:   "a pinned suite is the only one, and no list is asked",
			pinned: 2,
			steps:  []step{{attemptSpec{Suite: 2, NameOnlyLookup: true}, ok}},
		},
		{
			name:    "a pinned suite refused: no fallback",
			pinned:  17,
			steps:   []step{{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageOpenSession, RAKPNoCipherSuiteMatch)}},
			wantErr: errRefused,
		},
		{
			name: "no-cipher-suite-list: 17 blind with the short wait, then 3",
			list: &listAnswer{err: errTimeout},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true, QuickOpen: true}, attemptOutcome{Stage: stageOpenSession, Kind: outcomeSilent, Err: errTimeout}},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkNoCipherSuiteList},
		},
		{
			name: "no-cipher-suite-list, and the BMC refuses both: no confidentiality",
			list: &listAnswer{err: errRefused},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true, QuickOpen: true}, refused(stageOpenSession, RAKPNoCipherSuiteMatch)},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, refused(stageOpenSession, RAKPInvalidAuthAlgorithm)},
			},
			wantText: "did not list its cipher suites and refuses [17 3]",
			detected: []string{QuirkNoCipherSuiteList},
		},
		{
			name: "a full session table is not a missing suite",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageOpenSession, RAKPInsufficientResources)},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, refused(stageOpenSession, RAKPInsufficientResources)},
			},
			wantErr: errRefused,
		},
		{
			name: "broken-suite: 17 listed, refused with 0x12 at Open Session",
			list: &listAnswer{offered: []uint8{1, 2, 3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageOpenSession, RAKPIllegalOrUnrecognizedParameter)},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkBrokenSuite},
		},
		{
			name: "broken-suite: 17 refused at RAKP 2 with 0x01",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageRAKP2, RAKPInsufficientResources)},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkBrokenSuite},
		},
		{
			name: "broken-suite: RAKP 2 auth code all zeros",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeZeroAuthCode, Err: errRefused}},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkBrokenSuite},
		},
		{
			name: "intel20: 0x09 with the lookup bit set, accepted with it clear",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageRAKP2, RAKPInvalidRole)},
				{attemptSpec{Suite: 17}, ok},
			},
			detected: []string{QuirkIntel20},
		},
		{
			name: "unknown user: one retry without the lookup bit, then the first answer",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeRefused, Status: RAKPUnauthorizedName, Err: errUnknown}},
				{attemptSpec{Suite: 17}, refused(stageRAKP2, RAKPUnauthorizedName)},
			},
			wantErr: errUnknown,
		},
		{
			name:  "unknown user when the lookup bit is known to be refused: no retry",
			known: knowledge{suite: 17, lookupOff: true},
			steps: []step{
				{attemptSpec{Suite: 17}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeRefused, Status: RAKPUnauthorizedName, Err: errUnknown}},
			},
			wantErr: errUnknown,
		},
		{
			name: "invalid name length is final",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageRAKP2, RAKPInvalidNameLength)},
			},
			wantErr: errRefused,
		},
		{
			name: "wrong password is final",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeAuthMismatch, Err: errPassword}},
			},
			wantErr: errPassword,
		},
		{
			name: "handshake-resend: 0x08 after a retransmitted RAKP 1 gets one fresh handshake",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeRefused, Status: RAKPInactiveSessionID, Resent: true, Err: errRefused}},
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkHandshakeResend},
		},
		{
			name: "handshake-resend: a mismatch after a retransmitted RAKP 1, then a real wrong password",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeAuthMismatch, Resent: true, Err: errPassword}},
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeAuthMismatch, Err: errPassword}},
			},
			wantErr:  errPassword,
			detected: []string{QuirkHandshakeResend},
		},
		{
			name: "handshake-resend: RAKP 4 0x0F after a retransmitted RAKP 3",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP4, Kind: outcomeRefused, Status: RAKPInvalidIntegrityCheckValue, Resent: true, Err: errRefused}},
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, ok},
			},
			detected: []string{QuirkHandshakeResend},
		},
		{
			name: "a refusal without a retransmission is not the resend rule",
			list: &listAnswer{offered: []uint8{17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP4, Kind: outcomeRefused, Status: RAKPInvalidIntegrityCheckValue, Err: errRefused}},
			},
			wantErr: errRefused,
		},
		{
			name: "silence at a listed suite is a timeout, not a fallback",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageOpenSession, Kind: outcomeSilent, Err: errTimeout}},
			},
			wantErr: ErrTimeout,
		},
		{
			name:  "learned: the suite that worked, first and without the list",
			known: knowledge{suite: 3},
			steps: []step{{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok}},
		},
		{
			name:  "learned suite refused now: the others blind",
			known: knowledge{suite: 17},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, refused(stageOpenSession, RAKPNoCipherSuiteMatch)},
				{attemptSpec{Suite: 3, NameOnlyLookup: true}, ok},
			},
		},
		{
			name:  "learned intel20 and lookup",
			known: knowledge{suite: 17, intel20: true, lookupOff: true},
			steps: []step{{attemptSpec{Suite: 17, Intel20: true}, ok}},
		},
		{
			name:  "intel20 override pads the RAKP 1 name too",
			w:     Workarounds{Intel20: true},
			list:  &listAnswer{offered: []uint8{17}},
			steps: []step{{attemptSpec{Suite: 17, NameOnlyLookup: true, Intel20: true, PadInRAKP1: true}, ok}},
		},
		{
			name: "a context or socket failure ends at once",
			list: &listAnswer{offered: []uint8{3, 17}},
			steps: []step{
				{attemptSpec{Suite: 17, NameOnlyLookup: true}, attemptOutcome{Stage: stageRAKP2, Kind: outcomeFailed, Err: errRefused}},
			},
			wantErr: errRefused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan("bmc", tt.pinned, admin, tt.w, tt.known, nil)
			if p.wantsSuiteList() != (tt.list != nil) {
				t.Fatalf("wantsSuiteList = %v", p.wantsSuiteList())
			}
			if tt.list != nil {
				p.suiteList(tt.list.offered, tt.list.err)
			}
			for i, st := range tt.steps {
				spec, err := p.next()
				if err != nil {
					t.Fatalf("step %d: next gave up: %v", i, err)
				}
				if spec != st.want {
					t.Fatalf("step %d: attempt %+v, want %+v", i, spec, st.want)
				}
				p.record(spec, st.got)
			}
			final := p.final
			if tt.wantErr == nil && tt.wantText == "" {
				if !p.done || final != nil {
					t.Fatalf("plan not done after the last step (final %v)", final)
				}
			} else {
				if _, err := p.next(); err != final || final == nil {
					t.Fatalf("next after the last step = %v, want the final error %v", err, final)
				}
				if tt.wantErr != nil && !errors.Is(final, tt.wantErr) {
					t.Fatalf("final error %v, want %v", final, tt.wantErr)
				}
				if tt.wantText != "" && (final == nil || !strings.Contains(final.Error(), tt.wantText)) {
					t.Fatalf("final error %v, want it to say %q", final, tt.wantText)
				}
			}
			var names []string
			for _, d := range p.detections {
				if d.Evidence == "" || d.At.IsZero() {
					t.Errorf("detection %+v lacks evidence or time", d)
				}
				names = append(names, d.Name)
			}
			if !slices.Equal(names, tt.detected) {
				t.Fatalf("detected %v, want %v", names, tt.detected)
			}
			if got := p.attempts; got != len(tt.steps) {
				t.Fatalf("attempts counted %d, want %d", got, len(tt.steps))
			}
		})
	}
}

func TestPlanPrivilege(t *testing.T) {
	if p := newPlan("bmc", 0, ipmi.PrivilegeAdministrator, Workarounds{}, knowledge{}, nil); p.privilege != ipmi.PrivilegeAdministrator {
		t.Fatalf("privilege %v, want administrator", p.privilege)
	}
	// "admin-refused", learned: the next session asks for operator at once.
	if p := newPlan("bmc", 0, ipmi.PrivilegeAdministrator, Workarounds{}, knowledge{privilege: ipmi.PrivilegeOperator}, nil); p.privilege != ipmi.PrivilegeOperator {
		t.Fatalf("privilege %v, want operator", p.privilege)
	}
}

func TestPrivilegeFallback(t *testing.T) {
	tests := []struct {
		asked ipmi.PrivilegeLevel
		cc    ipmi.CompletionCode
		want  ipmi.PrivilegeLevel
		ok    bool
	}{
		{ipmi.PrivilegeAdministrator, 0x80, ipmi.PrivilegeOperator, true},
		{ipmi.PrivilegeAdministrator, 0x81, ipmi.PrivilegeOperator, true},
		{ipmi.PrivilegeAdministrator, ipmi.CCInvalidDataField, 0, false},
		{ipmi.PrivilegeOperator, 0x81, 0, false}, // nothing below operator runs chassis control
	}
	for _, tt := range tests {
		got, ok := privilegeFallback(tt.asked, tt.cc)
		if got != tt.want || ok != tt.ok {
			t.Errorf("privilegeFallback(%v, %v) = %v, %v; want %v, %v", tt.asked, tt.cc, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAcceptBadChecksum(t *testing.T) {
	tests := []struct {
		integrity bool
		w         Workarounds
		want      bool
	}{
		{true, Workarounds{}, true},
		{false, Workarounds{}, false},
		{false, Workarounds{NoChecksumCheck: true}, true},
	}
	for _, tt := range tests {
		if got := acceptBadChecksum(tt.integrity, tt.w); got != tt.want {
			t.Errorf("acceptBadChecksum(%v, %+v) = %v", tt.integrity, tt.w, got)
		}
	}
}

func TestJudgeAuthCode(t *testing.T) {
	want := []byte{1, 2, 3, 4}
	tests := []struct {
		name string
		got  []byte
		v    authCodeVerdict
	}{
		{"exact", []byte{1, 2, 3, 4}, authCodeMatch},
		{"one byte more (supermicro20)", []byte{1, 2, 3, 4, 0}, authCodeLong},
		{"differs", []byte{1, 2, 3, 5}, authCodeMismatch},
		{"short", []byte{1, 2, 3}, authCodeMismatch},
		{"all zeros", []byte{0, 0, 0, 0}, authCodeZero},
		{"all zeros and long", []byte{0, 0, 0, 0, 0}, authCodeZero},
		{"empty", nil, authCodeMismatch},
	}
	for _, tt := range tests {
		if v := judgeAuthCode(tt.got, want); v != tt.v {
			t.Errorf("%s: judgeAuthCode(% x) = %v, want %v", tt.name, tt.got, v, tt.v)
		}
	}
}

func TestRAKPNamesFor(t *testing.T) {
	role := byte(ipmi.PrivilegeAdministrator) | RoleNameOnlyLookup
	padded := "admin" + strings.Repeat("\x00", 11)
	tests := []struct {
		name         string
		intel20, pad bool
		want         rakpNames
	}{
		{"standard", false, false, rakpNames{"admin", "admin", role}},
		{"intel20 learned", true, false, rakpNames{"admin", padded, byte(ipmi.PrivilegeAdministrator)}},
		{"intel20 override", true, true, rakpNames{padded, padded, byte(ipmi.PrivilegeAdministrator)}},
	}
	for _, tt := range tests {
		if got := rakpNamesFor("admin", role, tt.intel20, tt.pad); got != tt.want {
			t.Errorf("%s: %+q, want %+q", tt.name, got, tt.want)
		}
	}
	if n := rakpNamesFor("sixteen-chars-xx", role, true, false); n.hashName != "sixteen-chars-xx" {
		t.Errorf("a 16-byte name is not padded further: %q", n.hashName)
	}
}

func TestRAKPErrorMatches(t *testing.T) {
	const ours = 0x11223344
	tests := []struct {
		name         string
		st           RAKPStatus
		tag          uint8
		console      uint32
		ok, tag0Rule bool
	}{
		{"success with our tag", RAKPNoErrors, 7, ours, true, false},
		{"success with another tag", RAKPNoErrors, 0, ours, false, false},
		{"success for another console", RAKPNoErrors, 7, 5, false, false},
		{"error with our tag", RAKPUnauthorizedName, 7, 9, true, false},
		{"error with tag 0 and console 0 (OpenBMC)", RAKPUnauthorizedName, 0, 0, true, true},
		{"error with another tag, our console", RAKPInvalidRole, 3, ours, true, true},
		{"error with another tag and another console", RAKPInvalidRole, 3, 5, false, true},
	}
	for _, tt := range tests {
		ok, rule := rakpErrorMatches(tt.st, tt.tag, 7, tt.console, ours)
		if ok != tt.ok || (ok && rule != tt.tag0Rule) {
			t.Errorf("%s: = %v, %v; want %v, %v", tt.name, ok, rule, tt.ok, tt.tag0Rule)
		}
	}
}

func TestProfileKeepsFirstDetection(t *testing.T) {
	p := NewProfile()
	p.note([]Detection{{Name: "a", Evidence: "first"}, {Name: "b", Evidence: "b"}})
	p.note([]Detection{{Name: "a", Evidence: "second"}})
	got := p.Detected()
	if len(got) != 2 || got[0].Evidence != "first" || got[1].Name != "b" {
		t.Fatalf("Detected = %+v", got)
	}
	p.learn([]uint8{3, 17}, knowledge{suite: 17, privilege: ipmi.PrivilegeOperator})
	if p.Suite() != 17 || p.Privilege() != ipmi.PrivilegeOperator || !slices.Equal(p.Offered(), []uint8{3, 17}) {
		t.Fatalf("after learn: suite %d privilege %v offered %v", p.Suite(), p.Privilege(), p.Offered())
	}
}

// A learned suite that no longer works, and no other: the error names the
// list the BMC gave when the suite was chosen, not "did not list".
func TestPlanLearnedSuiteGone(t *testing.T) {
	p := newPlan("bmc", 0, ipmi.PrivilegeAdministrator, Workarounds{}, knowledge{suite: 17}, []uint8{1, 17})
	for _, want := range []uint8{17, 3} {
		spec, err := p.next()
		if err != nil || spec.Suite != want {
			t.Fatalf("next = %+v, %v; want suite %d", spec, err, want)
		}
		p.record(spec, refused(stageOpenSession, RAKPNoCipherSuiteMatch))
	}
	_, err := p.next()
	var nce *NoConfidentialityError
	if !errors.As(err, &nce) || !strings.Contains(err.Error(), "offers cipher suites [1 17] but refuses [17 3]") {
		t.Fatalf("final error %v", err)
	}
}
