package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"obmd/redfish"
)

// DefaultRedfishPort is the HTTPS port a Redfish service listens on when
// addr names none.
const DefaultRedfishPort = 443

// Bounds of a redfish node's info: Redfish sets no length on user names
// or passwords, but nothing real comes near these.
const (
	maxRedfishUserLen   = 256
	maxRedfishPassLen   = 1024
	maxRedfishSystemLen = 256
	maxRedfishCALen     = 32 << 10
)

// RedfishInfo is a validated "info" object of a "redfish" node.
//
// Its String, GoString and LogValue leave out Pass and the CA
// certificate; nothing else should print it.
type RedfishInfo struct {
	// BaseURL is https://host:port, the port defaulted to 443.
	BaseURL string
	User    string
	Pass    string
	// System chooses the ComputerSystem (its Id or path); "" means the
	// only member of the Systems collection.
	System string
	// CACert is the PEM the BMC's certificate must verify against (its
	// own self-signed certificate, or its CA); nil means the system's
	// roots.
	CACert []byte
	// VerifyTLS is false only when the operator opted out explicitly
	// (verify_tls: false).
	VerifyTLS bool
	// Console, if set, is the node's SOL console over IPMI on the same
	// BMC with the same credentials; nil means the node has none.
	Console *IPMIInfo
}

type redfishInfoJSON struct {
	Addr      *string         `json:"addr"`
	User      *string         `json:"user"`
	Pass      *string         `json:"pass"`
	System    *string         `json:"system"`
	CACert    *string         `json:"ca_cert"`
	VerifyTLS *bool           `json:"verify_tls"`
	Console   json.RawMessage `json:"console"`
}

type redfishConsoleJSON struct {
	Type        *string `json:"type"`
	Addr        *string `json:"addr"`
	CipherSuite *int    `json:"cipher_suite"`
}

// ParseRedfishInfo validates a "redfish" node's info:
//
//	{"addr": "10.0.0.4", "user": "u", "pass": "p"}
//
// addr is host[:port] (port 443 by default) or an https:// base URL.
// Optional: "system" (a ComputerSystem's Id or path), "ca_cert" (PEM) or
// "verify_tls": false (never both), and "console": {"type": "ipmi",
// "addr": host[:port] (default the Redfish host, port 623),
// "cipher_suite": N} for SOL with the same user and password. Unknown
// fields, missing or empty addr, user or pass, and invalid values are a
// *ValidationError (ErrInvalid) naming every problem.
func ParseRedfishInfo(raw json.RawMessage) (RedfishInfo, error) {
	var in redfishInfoJSON
	if err := DecodeStrict("redfish info", raw, &in); err != nil {
		return RedfishInfo{}, err
	}
	v := validation{what: "redfish info"}
	out := RedfishInfo{VerifyTLS: true}

	var host string
	switch {
	case in.Addr == nil || *in.Addr == "":
		v.addf("addr is missing (want a BMC host, host:port or https:// URL)")
	default:
		base, h, err := parseRedfishAddr(*in.Addr)
		if err != nil {
			v.addf("addr %q: %v", *in.Addr, err)
		}
		out.BaseURL, host = base, h
	}

	switch {
	case in.User == nil || *in.User == "":
		v.addf("user is missing")
	case len(*in.User) > maxRedfishUserLen || strings.ContainsFunc(*in.User, isControl):
		v.addf("user must be at most %d bytes without control characters", maxRedfishUserLen)
	default:
		out.User = *in.User
	}

	switch {
	case in.Pass == nil || *in.Pass == "":
		v.addf("pass is missing")
	case len(*in.Pass) > maxRedfishPassLen:
		v.addf("pass is %d bytes long; at most %d", len(*in.Pass), maxRedfishPassLen)
	default:
		out.Pass = *in.Pass
	}

	if in.System != nil {
		s := *in.System
		switch {
		case s == "":
			v.addf("system is empty (leave it out to use the BMC's only system)")
		case len(s) > maxRedfishSystemLen || strings.ContainsFunc(s, isControl) || strings.ContainsAny(s, "?#"):
			v.addf("system must be a ComputerSystem Id or path of at most %d bytes", maxRedfishSystemLen)
		default:
			out.System = s
		}
	}

	if in.VerifyTLS != nil {
		out.VerifyTLS = *in.VerifyTLS
	}
	if in.CACert != nil {
		switch {
		case !out.VerifyTLS:
			v.addf("ca_cert and verify_tls: false contradict each other: give one")
		case len(*in.CACert) > maxRedfishCALen:
			v.addf("ca_cert is %d bytes; at most %d", len(*in.CACert), maxRedfishCALen)
		default:
			if _, err := redfish.ParseCertificates([]byte(*in.CACert)); err != nil {
				v.addf("ca_cert: %s (want the PEM of the BMC's certificate or of its CA)", strings.TrimPrefix(err.Error(), "redfish: "))
			} else {
				out.CACert = []byte(*in.CACert)
			}
		}
	}

	if len(in.Console) > 0 && string(in.Console) != "null" {
		con, problems := parseRedfishConsole(in.Console, host, out.User, out.Pass)
		for _, p := range problems {
			v.addf("console: %s", p)
		}
		out.Console = con
	}

	if err := v.err(); err != nil {
		return RedfishInfo{}, err
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// parseRedfishConsole validates the console object and builds the ipmi
// info of the SOL console (ParseIPMIInfo checks what IPMI allows, such as
// a password of at most 20 bytes).
func parseRedfishConsole(raw json.RawMessage, redfishHost, user, pass string) (*IPMIInfo, []string) {
	var c redfishConsoleJSON
	if err := DecodeStrict("console", raw, &c); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return nil, ve.Problems
		}
		return nil, []string{err.Error()}
	}
	switch {
	case c.Type == nil || *c.Type == "":
		return nil, []string{`type is missing (want "ipmi")`}
	case *c.Type != "ipmi":
		return nil, []string{fmt.Sprintf(`type %q is not supported (want "ipmi": SOL over IPMI on the same BMC)`, *c.Type)}
	}
	addr := redfishHost
	if c.Addr != nil {
		addr = *c.Addr
	}
	if addr == "" || user == "" || pass == "" {
		return nil, nil // the top-level problem is reported already
	}
	ipmiRaw, err := json.Marshal(map[string]any{"addr": addr, "user": user, "pass": pass, "cipher_suite": c.CipherSuite})
	if err != nil {
		return nil, []string{err.Error()}
	}
	if c.CipherSuite == nil {
		ipmiRaw, _ = json.Marshal(map[string]any{"addr": addr, "user": user, "pass": pass})
	}
	info, err := ParseIPMIInfo(ipmiRaw)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			// The ipmi problems name user and pass, which the console
			// shares with the node.
			return nil, ve.Problems
		}
		return nil, []string{err.Error()}
	}
	return &info, nil
}

// parseRedfishAddr accepts host[:port] or an https:// base URL and returns
// https://host:port (port defaulted to 443) and the host.
func parseRedfishAddr(s string) (base, host string, err error) {
	hostport := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return "", "", fmt.Errorf("not a URL: %v", err)
		case u.Scheme == "http":
			return "", "", errors.New("plain http is refused: Redfish would carry the password in clear; use https://")
		case u.Scheme != "https":
			return "", "", fmt.Errorf("scheme %q is not https", u.Scheme)
		case u.User != nil:
			return "", "", errors.New("must not hold credentials (give user and pass)")
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			return "", "", errors.New("must be https://host[:port] with nothing after the host (obmd finds /redfish/v1 itself)")
		case u.Host == "":
			return "", "", errors.New("names no host")
		}
		hostport = u.Host
		if u.Port() == "" {
			hostport = u.Hostname() // bracketless for an IPv6 literal
		}
	}
	hp, err := normalizeHostPort(hostport, DefaultRedfishPort)
	if err != nil {
		return "", "", err
	}
	h, _, _ := net.SplitHostPort(hp)
	return "https://" + hp, h, nil
}

// normalizeHostPort accepts a host, host:port, an IPv6 literal or
// [IPv6]:port and returns host:port with defaultPort when none is given.
func normalizeHostPort(s string, defaultPort int) (string, error) {
	host, port := s, strconv.Itoa(defaultPort)
	if ip := net.ParseIP(s); ip != nil {
		return net.JoinHostPort(ip.String(), port), nil // bare IPv4 or IPv6
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	} else if strings.ContainsAny(s, ":[]") {
		return "", fmt.Errorf("not a host or host:port")
	}
	if net.ParseIP(host) == nil && !isHostname(host) {
		return "", fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return net.JoinHostPort(host, port), nil
}

// LogValue is the info without Pass and the CA certificate.
func (i RedfishInfo) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("addr", i.BaseURL),
		slog.String("user", i.User),
		slog.Bool("verify_tls", i.VerifyTLS),
		slog.Bool("ca_cert_set", len(i.CACert) > 0),
	}
	if i.System != "" {
		attrs = append(attrs, slog.String("system", i.System))
	}
	if i.Console != nil {
		con := []any{slog.String("type", "ipmi"), slog.String("addr", i.Console.Addr)}
		if i.Console.CipherSuite != 0 {
			con = append(con, slog.Int("cipher_suite", int(i.Console.CipherSuite)))
		}
		attrs = append(attrs, slog.Group("console", con...))
	}
	return slog.GroupValue(attrs...)
}

// String is the info without Pass and the CA certificate.
func (i RedfishInfo) String() string {
	console := "none"
	if i.Console != nil {
		console = "ipmi:" + i.Console.Addr
	}
	return fmt.Sprintf("redfish{addr=%s user=%s system=%q verify_tls=%t ca_cert_set=%t console=%s}",
		i.BaseURL, i.User, i.System, i.VerifyTLS, len(i.CACert) > 0, console)
}

// GoString keeps %#v from printing the password.
func (i RedfishInfo) GoString() string { return i.String() }
