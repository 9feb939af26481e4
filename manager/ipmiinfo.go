package manager

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"obmd/bmc"
	"obmd/ipmi"
)

// DefaultIPMIPort is the RMCP port a BMC listens on when addr names none
// (IPMI v2.0 section 13.1.1: port 623, 26Fh).
const DefaultIPMIPort = 623

// IPMICipherSuites are the cipher suite IDs a node may pin (IPMI v2.0
// section 22.15.2, Table 22-20): 1, 2, 3 (RAKP-HMAC-SHA1) and 15, 16, 17
// (RAKP-HMAC-SHA256). Suite 0 (no authentication) is refused.
var IPMICipherSuites = []uint8{1, 2, 3, 15, 16, 17}

// Limits from IPMI v2.0: user names are at most 16 bytes (section 13.17,
// RAKP 1 "ULENm"), passwords and Kg at most 20 bytes (section 13.31).
const (
	maxIPMIUserLen = 16
	maxIPMIPassLen = 20
	maxIPMIKgLen   = 20
)

// IPMIInfo is a validated "info" object of an "ipmi" node.
//
// Its String, GoString and LogValue leave out Pass and Kg; nothing else
// should print it.
type IPMIInfo struct {
	// Addr is host:port, the port defaulted to 623.
	Addr string
	User string
	Pass string
	// CipherSuite pins a suite from IPMICipherSuites; 0 means choose the
	// strongest of 17 and 3 that the BMC offers.
	CipherSuite uint8
	// Privilege is ipmi.PrivilegeAdministrator (the default) or
	// ipmi.PrivilegeOperator.
	Privilege ipmi.PrivilegeLevel
	// Kg is the BMC key (IPMI v2.0 section 13.31); nil means the password is
	// used in its place.
	Kg []byte
	// Quirks are names from bmc.QuirkNames, without duplicates, in the
	// order given.
	Quirks []string
}

// ipmiInfoJSON is the wire form; pointers tell a missing field from an
// empty one.
type ipmiInfoJSON struct {
	Addr        *string  `json:"addr"`
	User        *string  `json:"user"`
	Pass        *string  `json:"pass"`
	CipherSuite *int     `json:"cipher_suite"`
	Privilege   *string  `json:"privilege"`
	Kg          *string  `json:"kg"`
	Quirks      []string `json:"quirks"`
}

// ParseIPMIInfo validates an "ipmi" node's info:
//
//	{"addr": "10.0.0.4", "user": "u", "pass": "p"}
//
// plus the optional "cipher_suite" (one of IPMICipherSuites), "privilege"
// ("administrator" or "operator"), "kg" (hex, at most 20 bytes) and
// "quirks" (names from bmc.QuirkNames). Unknown fields, a missing or empty
// addr, user or pass, and invalid values are a *ValidationError (ErrInvalid)
// naming every problem found.
func ParseIPMIInfo(raw json.RawMessage) (IPMIInfo, error) {
	var in ipmiInfoJSON
	if err := DecodeStrict("ipmi info", raw, &in); err != nil {
		return IPMIInfo{}, err
	}
	v := validation{what: "ipmi info"}
	out := IPMIInfo{Privilege: ipmi.PrivilegeAdministrator}

	switch {
	case in.Addr == nil || *in.Addr == "":
		v.addf("addr is missing (want a BMC host or host:port)")
	default:
		addr, err := normalizeBMCAddr(*in.Addr)
		if err != nil {
			v.addf("addr %q: %v", *in.Addr, err)
		}
		out.Addr = addr
	}

	switch {
	case in.User == nil || *in.User == "":
		v.addf("user is missing")
	case len(*in.User) > maxIPMIUserLen:
		v.addf("user is %d bytes long; IPMI user names are at most %d", len(*in.User), maxIPMIUserLen)
	default:
		out.User = *in.User
	}

	switch {
	case in.Pass == nil || *in.Pass == "":
		v.addf("pass is missing")
	case len(*in.Pass) > maxIPMIPassLen:
		v.addf("pass is %d bytes long; IPMI v2.0 passwords are at most %d", len(*in.Pass), maxIPMIPassLen)
	default:
		out.Pass = *in.Pass
	}

	if in.CipherSuite != nil {
		cs := *in.CipherSuite
		if cs < 0 || cs > 255 || !slices.Contains(IPMICipherSuites, uint8(cs)) {
			v.addf("cipher_suite %d is not supported (want one of %v, or leave it out to pick the strongest of 17 and 3)", cs, IPMICipherSuites)
		} else {
			out.CipherSuite = uint8(cs)
		}
	}

	if in.Privilege != nil {
		switch *in.Privilege {
		case "administrator":
			out.Privilege = ipmi.PrivilegeAdministrator
		case "operator":
			out.Privilege = ipmi.PrivilegeOperator
		default:
			v.addf("privilege %q is not supported (want \"administrator\" or \"operator\")", *in.Privilege)
		}
	}

	if in.Kg != nil && *in.Kg != "" {
		kg, err := hex.DecodeString(*in.Kg)
		switch {
		case err != nil:
			v.addf("kg is not a hex string (%d characters given)", len(*in.Kg))
		case len(kg) > maxIPMIKgLen:
			v.addf("kg is %d bytes long; the BMC key is at most %d", len(kg), maxIPMIKgLen)
		default:
			out.Kg = kg
		}
	}

	// The quirk names and their meanings live in package bmc alone.
	for _, q := range in.Quirks {
		name := strings.ToLower(strings.TrimSpace(q))
		switch _, err := bmc.ParseQuirks([]string{name}); {
		case err != nil:
			v.addf("quirk %q is unknown (known: %s)", q, strings.Join(bmc.QuirkNames(), ", "))
		case !slices.Contains(out.Quirks, name):
			out.Quirks = append(out.Quirks, name)
		}
	}

	if err := v.err(); err != nil {
		return IPMIInfo{}, err
	}
	return out, nil
}

// normalizeBMCAddr accepts a host, host:port, an IPv6 literal or
// [IPv6]:port and returns host:port with the port defaulted to 623.
func normalizeBMCAddr(s string) (string, error) {
	return normalizeHostPort(s, DefaultIPMIPort)
}

// isHostname reports whether s is a DNS name made of letters, digits and
// hyphens (RFC 1123), labels of 1 to 63 characters, at most 253 in all.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

func privilegeName(p ipmi.PrivilegeLevel) string {
	if p == ipmi.PrivilegeOperator {
		return "operator"
	}
	return "administrator"
}

// LogValue is the info without Pass and Kg.
func (i IPMIInfo) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("addr", i.Addr),
		slog.String("user", i.User),
		slog.String("privilege", privilegeName(i.Privilege)),
		slog.Bool("kg_set", len(i.Kg) > 0),
	}
	if i.CipherSuite != 0 {
		attrs = append(attrs, slog.Int("cipher_suite", int(i.CipherSuite)))
	}
	if len(i.Quirks) > 0 {
		attrs = append(attrs, slog.String("quirks", strings.Join(i.Quirks, ",")))
	}
	return slog.GroupValue(attrs...)
}

// String is the info without Pass and Kg.
func (i IPMIInfo) String() string {
	suite := "auto"
	if i.CipherSuite != 0 {
		suite = strconv.Itoa(int(i.CipherSuite))
	}
	return fmt.Sprintf("ipmi{addr=%s user=%s privilege=%s cipher_suite=%s kg_set=%t quirks=%v}",
		i.Addr, i.User, privilegeName(i.Privilege), suite, len(i.Kg) > 0, i.Quirks)
}

// GoString keeps %#v from printing the password.
func (i IPMIInfo) GoString() string { return i.String() }
