package rmcpplus

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"obmd/ipmi"
)

// The negotiation policy: how a client opens an RMCP+ session with a BMC
// that may bend IPMI v2.0, all in this file. client_negotiate.go does the
// I/O (it sends the messages and computes the HMACs); every choice it
// makes comes from here, as pure functions and the plan state machine,
// so each rule is a table test without a socket.
//
// Why here and not in package bmc: the decisions fall between handshake
// messages (after an Open Session refusal, a RAKP 2 status, an auth code
// that does not match), which only this package sees.
//
// The rules, by the name a detected deviation is reported under (FreeIPMI's
// workaround name where it has one; BMC-QUIRKS.md has the evidence for each):
//
//   - Cipher suites. A pinned suite is the only one tried. Otherwise only
//     suites with confidentiality are negotiated (confidentialSuites:
//     17, then 3; suites 15 and 16 have no encryption and no standard
//     suite pairs SHA-256 with AES other than 17). The suite list is asked
//     once, in both framings at once (IPMI v1.5 and RMCP+: each is ignored
//     by some BMC), with a short timeout; a BMC that lists none of them
//     gets a NoConfidentialityError naming the explicit opt-in.
//   - "no-cipher-suite-list": the list went unanswered or was refused: try
//     17, then 3 ("blind"), giving a blind suite's Open Session only the
//     short timeout before the next.
//   - "broken-suite": a suite the BMC listed is refused at Open Session or
//     RAKP 2 with any status but 0x0C/0x0D (those are about the user), or
//     its RAKP 2 auth code is all zeros: try the next suite, one round
//     trip each.
//   - "intel20": RAKP 2 status 0x09 or 0x0D while the name-only lookup
//     bit was set: one new handshake with it clear. An RAKP 2 auth code
//     that does not match is also checked against the user name
//     NUL-padded to 16 bytes before "wrong password"; a match means
//     FreeIPMI's intel20 profile (padded name in the RAKP 2 code and the
//     SIK, RAKP 3 without the lookup bit).
//   - "supermicro20": an auth code or integrity check value longer than
//     the HMAC is compared on the HMAC's length; the rest is ignored.
//   - "rakp-error-tag0": while waiting for RAKP 2 or 4, an error of that
//     message type counts whatever its tag (OpenBMC sends tag 0 and
//     console session ID 0).
//   - "short-open-session-error": an Open Session Response of one byte is a
//     refusal whose only field is the status.
//   - "handshake-resend": after a retransmitted RAKP 1 or 3, an auth code
//     mismatch or status 0x02/0x08/0x0F gets one fresh handshake before
//     an error is reported (BMCs that handle a repeated RAKP 1
//     non-idempotently).
//   - "admin-refused": Set Session Privilege Level(administrator) answered
//     0x80 or 0x81: the session runs at operator, which is enough for
//     chassis control and boot options.
//   - "nochecksumcheck": an IPMI response whose checksum is wrong is
//     accepted (and counted) when the RMCP+ integrity check passed; without
//     integrity it is dropped unless the node names the quirk.
//
// A Profile carries what was learned from one session to the next, so a
// BMC pays for its deviations once: a later session starts with the suite
// and settings that worked, and a healthy BMC connects with one handshake.

// confidentialSuites are the suites negotiated when none is pinned,
// strongest first: the supported rows of IPMI v2.0 Table 22-20 with a
// confidentiality algorithm (AES-CBC-128).
var confidentialSuites = []uint8{17, 3}

// Short waits for the requests a BMC may ignore by design: the cipher
// suite list (section 22.15), and Open Session for a suite tried blind.
// A BMC that ignores them must not cost seconds.
const (
	quickTimeout  = 300 * time.Millisecond
	quickAttempts = 2
)

// Workarounds are the per-node overrides an operator names (package bmc's
// quirk names): they apply from the first handshake instead of being
// learned.
type Workarounds struct {
	// Intel20 ("intel20") hashes the user name NUL-padded to 16 bytes from
	// the start, and sends it so in RAKP 1, as FreeIPMI's intel20 does.
	Intel20 bool
	// NoChecksumCheck ("nochecksumcheck") accepts IPMI responses with a
	// wrong checksum even without RMCP+ integrity.
	NoChecksumCheck bool
}

// Names of the deviations the client detects and works around.
const (
	QuirkIntel20               = "intel20"
	QuirkSupermicro20          = "supermicro20"
	QuirkNoChecksumCheck       = "nochecksumcheck"
	QuirkRAKPErrorTag0         = "rakp-error-tag0"
	QuirkShortOpenSessionError = "short-open-session-error"
	QuirkBrokenSuite           = "broken-suite"
	QuirkNoCipherSuiteList     = "no-cipher-suite-list"
	QuirkHandshakeResend       = "handshake-resend"
	QuirkAdminRefused          = "admin-refused"
)

// Detection is one deviation seen on the wire.
type Detection struct {
	Name     string
	Evidence string
	At       time.Time
}

// NoConfidentialityError: the BMC offers no cipher suite with
// confidentiality, and no suite was pinned.
type NoConfidentialityError struct {
	Addr string
	// Offered are the suites the BMC listed; nil if it did not list them.
	Offered []uint8
	// Refused are the suites with confidentiality it refused when tried.
	Refused []uint8
}

func (e *NoConfidentialityError) Error() string {
	var offer string
	switch {
	case e.Offered == nil:
		offer = fmt.Sprintf("did not list its cipher suites and refuses %v", e.Refused)
	case len(e.Refused) > 0:
		offer = fmt.Sprintf("offers cipher suites %v but refuses %v; none other has confidentiality (17 or 3)", e.Offered, e.Refused)
	default:
		offer = fmt.Sprintf("offers cipher suites %v, none with confidentiality (17 or 3)", e.Offered)
	}
	return fmt.Sprintf("rmcpplus: %s %s; obmd negotiates only encrypted sessions unless the node's cipher_suite pins one", e.Addr, offer)
}

// BMCReason is the error without the BMC's address, for a tenant.
func (e *NoConfidentialityError) BMCReason() string {
	return "the BMC offers no cipher suite with encryption, and obmd does not use an unencrypted one unless the operator pins the node's cipher_suite"
}

// Profile is what a client knows of one BMC across its sessions: the
// settings that worked and the deviations seen. It is safe for concurrent
// use; give every Dial to one BMC the same Profile (ClientConfig.Profile).
type Profile struct {
	mu        sync.Mutex
	known     knowledge
	offered   []uint8 // the last suite list the BMC gave; nil: none
	detected  []Detection
	checksums uint64 // responses accepted despite a wrong checksum
}

// knowledge is what a handshake starts from.
type knowledge struct {
	suite     uint8               // suite of the last established session; 0: none yet
	lookupOff bool                // the BMC refused name-only lookup; a clear bit worked
	intel20   bool                // the BMC hashes the NUL-padded user name
	privilege ipmi.PrivilegeLevel // session privilege that worked; 0: as configured
}

// NewProfile returns an empty profile.
func NewProfile() *Profile { return &Profile{} }

// Suite is the cipher suite of the last session established (0: none).
func (p *Profile) Suite() uint8 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known.suite
}

// Privilege is the privilege of the last session established (0: none).
func (p *Profile) Privilege() ipmi.PrivilegeLevel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known.privilege
}

// Offered is the last cipher suite list the BMC gave (nil: none).
func (p *Profile) Offered() []uint8 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.offered)
}

// Detected lists the deviations seen, first seen first.
func (p *Profile) Detected() []Detection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.detected)
}

// ChecksumsTolerated counts responses accepted despite a wrong checksum.
func (p *Profile) ChecksumsTolerated() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checksums
}

// snapshot is what a new handshake starts from, and the last suite list.
func (p *Profile) snapshot() (knowledge, []uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known, slices.Clone(p.offered)
}

// note records detections, keeping the first of each name.
func (p *Profile) note(ds []Detection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteLocked(ds...)
}

func (p *Profile) noteLocked(ds ...Detection) {
	for _, d := range ds {
		if !slices.ContainsFunc(p.detected, func(x Detection) bool { return x.Name == d.Name }) {
			p.detected = append(p.detected, d)
		}
	}
}

// noteOffered records the BMC's suite list, whatever the handshake's end.
func (p *Profile) noteOffered(offered []uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offered = slices.Clone(offered)
}

// learn records a list answer and an established session's settings.
func (p *Profile) learn(offered []uint8, k knowledge) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offered != nil {
		p.offered = slices.Clone(offered)
	}
	p.known = k
}

// toleratedChecksum counts a response accepted despite its checksum and
// records the deviation the first time.
func (p *Profile) toleratedChecksum(m *ipmi.Message, integrity bool) {
	why := "the RMCP+ integrity check passed"
	if !integrity {
		why = "the node's nochecksumcheck quirk accepts it without integrity"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checksums++
	p.noteLocked(Detection{Name: QuirkNoChecksumCheck, At: time.Now(),
		Evidence: fmt.Sprintf("the answer to %s had a wrong IPMI checksum; accepted because %s", ipmi.CommandName(m.NetFn&^1, m.Cmd), why)})
}

// acceptBadChecksum is the "nochecksumcheck" rule: a response with a wrong
// IPMI checksum is accepted when RMCP+ integrity protected it, or when the
// node's workaround says so.
func acceptBadChecksum(integrity bool, w Workarounds) bool {
	return integrity || w.NoChecksumCheck
}

// privilegeFallback is the "admin-refused" rule: the privilege to ask for
// after Set Session Privilege Level(asked) was answered cc.
func privilegeFallback(asked ipmi.PrivilegeLevel, cc ipmi.CompletionCode) (ipmi.PrivilegeLevel, bool) {
	// Section 22.18: 80h "requested level not available for this user",
	// 81h "requested level exceeds channel and/or user privilege limit".
	if asked == ipmi.PrivilegeAdministrator && (cc == 0x80 || cc == 0x81) {
		return ipmi.PrivilegeOperator, true
	}
	return 0, false
}

// authCodeVerdict is what a received RAKP auth code or integrity check
// value says.
type authCodeVerdict uint8

const (
	authCodeMismatch authCodeVerdict = iota
	authCodeMatch
	authCodeLong // matches on the HMAC's length, with bytes after it ("supermicro20")
	authCodeZero // all zeros: the BMC did not compute it ("broken-suite")
)

// judgeAuthCode compares a received code with the expected HMAC, in
// constant time over the HMAC's length.
func judgeAuthCode(got, want []byte) authCodeVerdict {
	if len(got) >= len(want) && hmac.Equal(got[:len(want)], want) {
		if len(got) > len(want) {
			return authCodeLong
		}
		return authCodeMatch
	}
	if len(got) > 0 && !slices.ContainsFunc(got, func(c byte) bool { return c != 0 }) {
		return authCodeZero
	}
	return authCodeMismatch
}

// intel20NameLen is the user name length the intel20 BMCs hash: the
// 16-byte user name field, NUL-padded.
const intel20NameLen = MaxUsernameLength

// rakpNames are the user name and role bytes each RAKP computation
// covers (section 13.31), which the intel20 BMCs compute differently.
type rakpNames struct {
	rakp1Name string // sent in RAKP 1
	hashName  string // in the RAKP 2 auth code and the SIK
	rakp3Role uint8  // ROLEm in the RAKP 3 auth code
}

// rakpNamesFor gives the standard inputs, or with intel20 FreeIPMI's
// intel20 ones: the name NUL-padded to 16 bytes in the RAKP 2 code and the
// SIK, RAKP 3 with the name-only lookup bit clear. padInRAKP1 also sends the
// padded name in RAKP 1 (the operator's override, as FreeIPMI does).
func rakpNamesFor(user string, role uint8, intel20, padInRAKP1 bool) rakpNames {
	n := rakpNames{rakp1Name: user, hashName: user, rakp3Role: role}
	if !intel20 {
		return n
	}
	padded := user
	if len(padded) < intel20NameLen {
		padded += strings.Repeat("\x00", intel20NameLen-len(padded))
	}
	n.hashName = padded
	n.rakp3Role = role &^ RoleNameOnlyLookup
	if padInRAKP1 {
		n.rakp1Name = padded
	}
	return n
}

// rakpErrorMatches is the "rakp-error-tag0" rule: whether an RAKP 2 or 4
// reply with status st, tag and console session ID belongs to our request
// (tag want, our console ID), and whether it took the rule to say so. A
// success must carry our tag and console ID; an error counts with any tag
// if its console ID is ours or 0.
func rakpErrorMatches(st RAKPStatus, tag, want uint8, console, ours uint32) (ok, tagRule bool) {
	if st == RAKPNoErrors {
		return tag == want && console == ours, false
	}
	if tag == want {
		return true, false
	}
	return console == ours || console == 0, true
}

// stage is the handshake message an attempt ended at.
type stage uint8

const (
	stageOpenSession stage = iota + 1 // waiting for the Open Session Response
	stageRAKP2                        // for RAKP 2
	stageRAKP4                        // for RAKP 4
)

func (s stage) String() string {
	switch s {
	case stageOpenSession:
		return "Open Session"
	case stageRAKP2:
		return "RAKP 2"
	case stageRAKP4:
		return "RAKP 4"
	}
	return "handshake"
}

// outcomeKind is how one handshake attempt ended.
type outcomeKind uint8

const (
	outcomeOK           outcomeKind = iota // session keys established
	outcomeRefused                         // a non-zero status
	outcomeSilent                          // no answer
	outcomeAuthMismatch                    // RAKP 2 auth code or RAKP 4 check value does not match
	outcomeZeroAuthCode                    // RAKP 2 auth code all zeros
	outcomeFailed                          // anything else: context, socket, malformed answer
)

// attemptSpec is how one handshake attempt (Open Session through RAKP 4)
// is made.
type attemptSpec struct {
	Suite          uint8
	NameOnlyLookup bool // bit 4 of ROLEm in RAKP 1
	Intel20        bool // rakpNamesFor's intel20 inputs from the start
	PadInRAKP1     bool // the padded name in RAKP 1 too (override only)
	QuickOpen      bool // Open Session silence ends the attempt after the short wait
}

// attemptOutcome is what the wire said to one attempt.
type attemptOutcome struct {
	Stage  stage
	Kind   outcomeKind
	Status RAKPStatus // for outcomeRefused
	Resent bool       // the message answered had been retransmitted
	Err    error      // what to report if the policy gives up here
	Seen   []Detection
	// Learned on success: the attempt found intel20's padded name.
	Intel20 bool
}

// resendCasualty reports whether o looks like a BMC that mishandled a
// retransmitted RAKP 1 or 3 (the "handshake-resend" rule).
func resendCasualty(o attemptOutcome) bool {
	if !o.Resent || (o.Stage != stageRAKP2 && o.Stage != stageRAKP4) {
		return false
	}
	switch o.Kind {
	case outcomeAuthMismatch:
		return true
	case outcomeRefused:
		return o.Status == RAKPInvalidSessionID || o.Status == RAKPInactiveSessionID || o.Status == RAKPInvalidIntegrityCheckValue
	}
	return false
}

// suiteRefusal reports whether a refused attempt should move on to the
// next suite ("broken-suite"): any Open Session refusal, and any RAKP 2
// refusal but the two about the user name (0x0C, 0x0D).
func suiteRefusal(o attemptOutcome) bool {
	if o.Kind != outcomeRefused {
		return false
	}
	switch o.Stage {
	case stageOpenSession:
		return true
	case stageRAKP2:
		return o.Status != RAKPInvalidNameLength && o.Status != RAKPUnauthorizedName
	}
	return false
}

// noSuiteMatch reports whether an Open Session status means "pick other
// algorithms" (Table 13-15).
func noSuiteMatch(st RAKPStatus) bool {
	switch st {
	case RAKPInvalidAuthAlgorithm, RAKPInvalidIntegrityAlgorithm,
		RAKPInvalidConfidentialityAlgo, RAKPNoCipherSuiteMatch:
		return true
	}
	return false
}

// plan is one Dial's negotiation: which attempt to make next, and when to
// give up with which error. It does no I/O.
type plan struct {
	addr       string
	pinned     uint8
	privilege  ipmi.PrivilegeLevel // asked for in Set Session Privilege Level
	padInRAKP1 bool

	suites   []uint8 // candidates, in order
	listed   bool    // the candidates come from the BMC's own list
	quickTil int     // suites[i] for i >= quickTil are tried blind
	i        int     // current candidate
	lookup   bool    // name-only lookup bit for the next attempt
	intel20  bool

	offered       []uint8 // the BMC's list, if it gave one
	lookupRetried bool
	freshUsed     bool
	noMatchOnly   bool        // every refusal so far said "no suite match" (or a blind suite was silent)
	pending       error       // reported if the intel20 lookup retry fails too
	suspects      []Detection // suites that failed; a deviation only if a later suite works
	final         error       // set: give up with it
	done          bool
	detections    []Detection
	attempts      int
}

// newPlan starts a negotiation from the configuration, the overrides and
// what the profile knows (k, and the suite list last read, if any).
func newPlan(addr string, pinned uint8, privilege ipmi.PrivilegeLevel, w Workarounds, k knowledge, offered []uint8) *plan {
	p := &plan{
		addr:        addr,
		pinned:      pinned,
		privilege:   privilege,
		lookup:      !k.lookupOff,
		intel20:     k.intel20 || w.Intel20,
		padInRAKP1:  w.Intel20,
		noMatchOnly: true,
	}
	if k.privilege != 0 && k.privilege < privilege {
		p.privilege = k.privilege // "admin-refused", learned
	}
	switch {
	case pinned != 0:
		p.suites, p.quickTil = []uint8{pinned}, 1
	case k.suite != 0:
		// What worked last time first; the others blind after it, as the
		// list (if any) was read when the suite was chosen.
		p.suites = append([]uint8{k.suite}, slices.DeleteFunc(slices.Clone(confidentialSuites), func(id uint8) bool { return id == k.suite })...)
		p.quickTil = 1
		p.offered = offered
	}
	return p
}

// wantsSuiteList reports whether the BMC's cipher suite list is needed.
func (p *plan) wantsSuiteList() bool { return p.suites == nil && p.final == nil }

// suiteList takes the answer to Get Channel Cipher Suites: the standard
// suite IDs listed, or the error (no answer, a refusal, a malformed list).
func (p *plan) suiteList(offered []uint8, err error) {
	if err != nil {
		p.suites, p.quickTil = slices.Clone(confidentialSuites), 0
		p.detect(QuirkNoCipherSuiteList, fmt.Sprintf("Get Channel Cipher Suites went unanswered in both framings or was refused (%v); tried %v blind", err, confidentialSuites))
		return
	}
	p.offered = offered
	p.listed = true
	for _, id := range confidentialSuites {
		if slices.Contains(offered, id) {
			p.suites = append(p.suites, id)
		}
	}
	p.quickTil = len(p.suites)
	if len(p.suites) == 0 {
		p.final = &NoConfidentialityError{Addr: p.addr, Offered: slices.Clone(offered)}
	}
}

// next is the attempt to make, or the error to give up with.
func (p *plan) next() (attemptSpec, error) {
	if p.final != nil {
		return attemptSpec{}, p.final
	}
	if p.done || p.i >= len(p.suites) {
		return attemptSpec{}, errors.New("rmcpplus: negotiation has no attempt left")
	}
	return attemptSpec{
		Suite:          p.suites[p.i],
		NameOnlyLookup: p.lookup,
		Intel20:        p.intel20,
		PadInRAKP1:     p.intel20 && p.padInRAKP1,
		QuickOpen:      p.i >= p.quickTil && p.i+1 < len(p.suites),
	}, nil
}

// record takes the outcome of the attempt next returned and decides what
// comes after it.
func (p *plan) record(spec attemptSpec, o attemptOutcome) {
	p.attempts++
	p.add(o.Seen...)
	switch o.Kind {
	case outcomeOK:
		p.done = true
		if o.Intel20 {
			p.intel20 = true
		}
		// A refusal of one suite that the next does not share was about
		// that suite (a full session table refuses them all).
		p.add(p.suspects...)
		if p.lookupRetried {
			p.detect(QuirkIntel20, "RAKP 2 refused name-only lookup; name and privilege lookup (lookup bit clear) was accepted")
		}
		return
	case outcomeFailed:
		p.final = o.Err
		return
	}
	if resendCasualty(o) && !p.freshUsed {
		p.freshUsed = true
		p.detect(QuirkHandshakeResend, fmt.Sprintf("after a retransmitted %s request, %s: %s; one fresh handshake", requestOf(o.Stage.String()), o.Stage, outcomeText(o)))
		return // the same attempt, afresh
	}
	if o.Stage == stageRAKP2 && o.Kind == outcomeRefused && spec.NameOnlyLookup && !p.lookupRetried &&
		(o.Status == RAKPInvalidRole || o.Status == RAKPUnauthorizedName) {
		p.lookupRetried, p.lookup, p.pending = true, false, o.Err
		return
	}
	if o.Stage == stageRAKP2 && o.Kind == outcomeRefused && (o.Status == RAKPInvalidNameLength || o.Status == RAKPUnauthorizedName) {
		p.giveUp(o.Err)
		return
	}
	quickSilence := o.Kind == outcomeSilent && o.Stage == stageOpenSession && spec.QuickOpen
	if !(suiteRefusal(o) || o.Kind == outcomeZeroAuthCode || quickSilence) {
		p.giveUp(o.Err)
		return
	}
	if !(o.Stage == stageOpenSession && (quickSilence || noSuiteMatch(o.Status))) {
		p.noMatchOnly = false
	}
	if (p.listed || o.Kind == outcomeZeroAuthCode) && len(p.suspects) == 0 {
		listed := ""
		if p.listed {
			listed = ", which the BMC lists,"
		}
		p.suspects = append(p.suspects, Detection{Name: QuirkBrokenSuite, At: time.Now(),
			Evidence: fmt.Sprintf("cipher suite %d%s failed: %s; cipher suite %d works", spec.Suite, listed, outcomeText(o), p.suites[min(p.i+1, len(p.suites)-1)])})
	}
	if p.pinned == 0 && p.i+1 < len(p.suites) {
		p.i++
		return
	}
	if p.pinned == 0 && p.noMatchOnly {
		p.final = &NoConfidentialityError{Addr: p.addr, Offered: p.offered, Refused: slices.Clone(p.suites)}
		return
	}
	p.giveUp(o.Err)
}

// giveUp ends the negotiation with err, or with the error that made the
// intel20 lookup retry if that retry failed too.
func (p *plan) giveUp(err error) {
	if p.pending != nil {
		err = p.pending
	}
	p.final = err
}

func (p *plan) detect(name, evidence string) {
	p.add(Detection{Name: name, Evidence: evidence, At: time.Now()})
}

// add records detections, the first of each name.
func (p *plan) add(ds ...Detection) {
	for _, d := range ds {
		if !slices.ContainsFunc(p.detections, func(x Detection) bool { return x.Name == d.Name }) {
			p.detections = append(p.detections, d)
		}
	}
}

// outcomeText describes a failed attempt for evidence.
func outcomeText(o attemptOutcome) string {
	switch o.Kind {
	case outcomeRefused:
		return "status " + o.Status.String()
	case outcomeSilent:
		return "no answer"
	case outcomeAuthMismatch:
		return "auth code mismatch"
	case outcomeZeroAuthCode:
		return "RAKP 2 auth code all zeros"
	}
	if o.Err != nil {
		return o.Err.Error()
	}
	return "failed"
}

// Negotiation is what a Dial found and chose, for the operator (obmd
// probe) and for status reports.
type Negotiation struct {
	// AuthCaps is the channel's answer to Get Channel Authentication
	// Capabilities (section 22.13).
	AuthCaps ipmi.GetChannelAuthCapabilitiesRsp
	// Offered is the cipher suite list, when it was asked and answered.
	Offered []uint8
	// ListAsked: the list was asked (no suite pinned, none learned).
	ListAsked bool
	Suite     uint8
	Privilege ipmi.PrivilegeLevel
	// Handshakes is the number of Open Session exchanges it took.
	Handshakes int
	// Detected are the deviations this Dial saw.
	Detected []Detection
}
