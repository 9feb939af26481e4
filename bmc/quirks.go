package bmc

import (
	"fmt"
	"strings"

	"obmd/rmcpplus"
)

// Quirks are named, per-node workarounds for BMCs that bend the IPMI
// specification. The names are FreeIPMI's workaround flags (ipmiconsole(8),
// ipmipower(8) "WORKAROUNDS"), so an operator who found the flag that makes
// FreeIPMI work with a machine can give obmd the same name.
//
// Only names that change what obmd does are accepted; every other name,
// FreeIPMI's included, is an error, so a node is never registered with a
// workaround that silently does nothing:
//
//   - "solport": ignore the port Activate Payload reports for SOL and use
//     the session's own port (FreeIPMI: "ignore alternate SOL ports"; seen
//     as SOL "connection timeout" on boards that report a bogus port).
//   - "solpayloadsize": ignore the payload sizes Activate Payload reports
//     and send at most DefaultSOLPayloadSize bytes per SOL packet (FreeIPMI:
//     "not check for valid SOL payload sizes and assume a proper set").
//   - "opensesspriv": some BMCs hash the session keys with the privilege of
//     Open Session instead of the one in RAKP 1. obmd always sends the same
//     explicit privilege in both (never 0, "highest"), so such a BMC derives
//     the same keys either way: the quirk is accepted and always in effect.
//   - "intel20": the BMC hashes the user name NUL-padded to 16 bytes and
//     checks RAKP 3 without the name-only lookup bit (FreeIPMI: Intel
//     SE7520AF2). obmd detects this on its own (rmcpplus/policy.go); the
//     quirk applies it from the first handshake, with the padded name in
//     RAKP 1 as FreeIPMI sends it.
//   - "nochecksumcheck": accept IPMI responses with a wrong checksum even
//     in a session without integrity (suites 1 and 15, pinned). With
//     integrity obmd accepts them on its own.
//   - "supermicro20": auth codes one byte longer than the HMAC
//     (Supermicro H8QME). obmd always compares on the HMAC's length, so
//     the quirk is accepted and always in effect.
//
// The SOL quirks are explicit overrides: without them the console (package
// sol) applies the rules of BMC-QUIRKS.md to the Activate Payload response
// by itself (a byte-swapped port mapped back, any other port tried along
// with the session's, nonsense sizes replaced). The manager turns
// "solpayloadsize" into sol.ConsoleOptions.MaxData for a payload of
// DefaultSOLPayloadSize bytes and "solport" into
// sol.ConsoleOptions.IgnorePayloadPort.
type Quirks struct {
	IgnoreSOLPort        bool // "solport"
	IgnoreSOLPayloadSize bool // "solpayloadsize"
	OpenSessPriv         bool // "opensesspriv" (no effect: always how obmd behaves)
	Intel20              bool // "intel20"
	NoChecksumCheck      bool // "nochecksumcheck"
	Supermicro20         bool // "supermicro20" (no effect: always how obmd behaves)
}

// Quirk names.
const (
	QuirkSOLPort         = "solport"
	QuirkSOLPayloadSize  = "solpayloadsize"
	QuirkOpenSessPriv    = "opensesspriv"
	QuirkIntel20         = "intel20"
	QuirkNoChecksumCheck = "nochecksumcheck"
	QuirkSupermicro20    = "supermicro20"
)

// QuirkNames lists the accepted quirk names.
func QuirkNames() []string {
	return []string{QuirkIntel20, QuirkNoChecksumCheck, QuirkOpenSessPriv, QuirkSOLPayloadSize, QuirkSOLPort, QuirkSupermicro20}
}

// quirkFlags maps each name to its field.
func (q *Quirks) quirkFlags() map[string]*bool {
	return map[string]*bool{
		QuirkSOLPort:         &q.IgnoreSOLPort,
		QuirkSOLPayloadSize:  &q.IgnoreSOLPayloadSize,
		QuirkOpenSessPriv:    &q.OpenSessPriv,
		QuirkIntel20:         &q.Intel20,
		QuirkNoChecksumCheck: &q.NoChecksumCheck,
		QuirkSupermicro20:    &q.Supermicro20,
	}
}

// Workarounds are the quirks the RMCP+ handshake applies.
func (q Quirks) Workarounds() rmcpplus.Workarounds {
	return rmcpplus.Workarounds{Intel20: q.Intel20, NoChecksumCheck: q.NoChecksumCheck}
}

// ParseQuirks validates names and reports every unknown one at once.
// Names are case-insensitive (FreeIPMI's are lower case); duplicates are
// allowed.
func ParseQuirks(names []string) (Quirks, error) {
	var q Quirks
	flags := q.quirkFlags()
	var unknown []string
	for _, n := range names {
		if f, ok := flags[strings.ToLower(strings.TrimSpace(n))]; ok {
			*f = true
		} else {
			unknown = append(unknown, fmt.Sprintf("%q", n))
		}
	}
	if len(unknown) > 0 {
		return Quirks{}, fmt.Errorf("bmc: unknown quirk %s (supported: %s)",
			strings.Join(unknown, ", "), strings.Join(QuirkNames(), ", "))
	}
	return q, nil
}

// Names returns the quirks that are set, in QuirkNames order.
func (q Quirks) Names() []string {
	flags := q.quirkFlags()
	var out []string
	for _, n := range QuirkNames() {
		if *flags[n] {
			out = append(out, n)
		}
	}
	return out
}

// DefaultSOLPayloadSize is the SOL payload size assumed under the
// "solpayloadsize" quirk: 4 header bytes and 28 characters. It is small on
// purpose (ipmi_sim, for one, reports an inbound size of 32): a BMC that
// reports nonsense is unlikely to take large packets.
const DefaultSOLPayloadSize = 32
