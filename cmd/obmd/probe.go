package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"obmd/bmc"
	"obmd/ipmi"
	"obmd/manager"
	"obmd/rmcpplus"
	"obmd/sol"
)

// obmd probe: what a BMC offers and what obmd would choose, for an
// operator before registering a node. It opens one session the way the
// ipmi driver does (same negotiation policy, no quirk configured), reads
// the power state, and with -console checks that SOL streams.

func init() { registerSubcommand("probe", runProbe) }

// probePassEnv holds the BMC password: never a flag, so that it stays out
// of the process list.
const probePassEnv = "OBMD_BMC_PASS"

type probeOptions struct {
	addr, user, privilege string
	suite                 int
	console               time.Duration
	timeout               time.Duration
}

func probeFlags(o *probeOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("obmd probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "", "the BMC's `HOST[:PORT]` (port 623 by default)")
	fs.StringVar(&o.user, "user", "", "IPMI user `NAME`; the password comes from $"+probePassEnv)
	fs.StringVar(&o.privilege, "privilege", "administrator", "session privilege: administrator or operator")
	fs.IntVar(&o.suite, "cipher-suite", 0, "pin this RMCP+ cipher suite `N` (default: negotiate one with encryption, 17 then 3)")
	fs.DurationVar(&o.console, "console", 0, "also activate SOL and count the console bytes received in this `DURATION` (e.g. 5s)")
	fs.DurationVar(&o.timeout, "timeout", rmcpplus.DefaultTimeout, "wait per attempt; a silent BMC fails after 4 attempts")
	return fs
}

func probeUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s=... obmd probe -addr HOST[:PORT] -user USER [-privilege operator] [-cipher-suite N] [-console 5s]\n\n", probePassEnv)
	fmt.Fprintln(w, "Opens one IPMI session as obmd would, with no quirk configured, and prints the channel's")
	fmt.Fprintln(w, "authentication capabilities, the cipher suites offered and chosen, the BMC deviations")
	fmt.Fprintln(w, "detected, the power state and, with -console, whether Serial over LAN streams.")
	fmt.Fprintln(w, "\nflags:")
	fs := probeFlags(&probeOptions{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// runProbe is "obmd probe": 0 when the BMC answered, 1 when it did not or
// refused, 2 for bad flags or a missing password.
func runProbe(args []string, env commandEnv) int {
	var o probeOptions
	fs := probeFlags(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			probeUsage(env.Stdout)
			return 0
		}
		fmt.Fprintf(env.Stderr, "obmd probe: %v (see obmd probe -h)\n", err)
		return 2
	}
	info, err := o.nodeInfo(env.Getenv(probePassEnv), fs.NArg())
	if err != nil {
		fmt.Fprintf(env.Stderr, "obmd probe: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*o.timeout+o.console+10*time.Second)
	defer cancel()
	return probe(ctx, info, o, env.Stdout, env.Stderr)
}

// nodeInfo validates the flags by the rules a node registration follows,
// and reports every problem in one line, named by its flag.
func (o probeOptions) nodeInfo(pass string, extra int) (manager.IPMIInfo, error) {
	var problems []string
	if extra > 0 {
		problems = append(problems, "unexpected arguments after the flags")
	}
	if pass == "" {
		problems = append(problems, probePassEnv+" is not set: put the BMC password in it (it is never read from the command line)")
	}
	if o.console < 0 {
		problems = append(problems, fmt.Sprintf("-console %v is negative", o.console))
	}
	if o.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("-timeout %v is not positive", o.timeout))
	}
	raw := map[string]any{"addr": o.addr, "user": o.user, "pass": pass, "privilege": o.privilege}
	if o.suite != 0 {
		raw["cipher_suite"] = o.suite
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return manager.IPMIInfo{}, err
	}
	info, err := manager.ParseIPMIInfo(b)
	var ve *manager.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			if pass == "" && strings.HasPrefix(p, "pass ") {
				continue // said above
			}
			problems = append(problems, flagNamed(p))
		}
	} else if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return manager.IPMIInfo{}, errors.New(strings.Join(problems, "; "))
	}
	return info, nil
}

// flagNamed renames the registration field a problem starts with to the
// flag that sets it here.
func flagNamed(problem string) string {
	for field, name := range map[string]string{"addr": "-addr", "user": "-user", "pass": probePassEnv,
		"cipher_suite": "-cipher-suite", "privilege": "-privilege"} {
		if rest, ok := strings.CutPrefix(problem, field+" "); ok {
			return name + " " + rest
		}
	}
	return problem
}

// probe connects, reports and returns the exit status.
func probe(ctx context.Context, info manager.IPMIInfo, o probeOptions, stdout, stderr io.Writer) int {
	profile := rmcpplus.NewProfile()
	fmt.Fprintf(stdout, "BMC: %s, user %s, privilege %s\n", info.Addr, info.User, privilegeText(info.Privilege))
	c, err := bmc.Dial(ctx, bmc.Config{
		Addr: info.Addr, Username: info.User, Password: []byte(info.Pass),
		CipherSuite: info.CipherSuite, Privilege: info.Privilege, Profile: profile, Timeout: o.timeout,
	})
	if err != nil {
		if offered := profile.Offered(); offered != nil {
			fmt.Fprintf(stdout, "cipher suites offered: %s\n", suiteList(offered))
		}
		printDetected(stdout, profile.Detected())
		fmt.Fprintf(stderr, "obmd probe: %v\n", err)
		return 1
	}
	defer c.Close()
	n := c.Session().Negotiation()
	fmt.Fprintf(stdout, "authentication: %s\n", authCapsText(n.AuthCaps))
	switch {
	case !n.ListAsked:
		fmt.Fprintf(stdout, "cipher suites offered: not asked (-cipher-suite %d)\n", info.CipherSuite)
	case n.Offered == nil:
		fmt.Fprintln(stdout, "cipher suites offered: not listed (Get Channel Cipher Suites unanswered or refused)")
	default:
		fmt.Fprintf(stdout, "cipher suites offered: %s\n", suiteList(n.Offered))
	}
	suite, _ := rmcpplus.CipherSuiteByID(n.Suite)
	fmt.Fprintf(stdout, "cipher suite chosen: %d (%v, %v, %v)\n", n.Suite, suite.Auth, suite.Integrity, suite.Confidentiality)
	fmt.Fprintf(stdout, "session privilege: %s\n", privilegeText(n.Privilege))
	fmt.Fprintf(stdout, "handshakes: %d\n", n.Handshakes)
	printDetected(stdout, n.Detected)
	status := 0
	if on, err := c.PowerStatus(ctx); err != nil {
		fmt.Fprintf(stdout, "power: unknown (%v)\n", err)
		status = 1
	} else if on {
		fmt.Fprintln(stdout, "power: on")
	} else {
		fmt.Fprintln(stdout, "power: off")
	}
	if o.console > 0 {
		if err := probeConsole(ctx, c, o.console, stdout); err != nil {
			fmt.Fprintf(stdout, "console: no (%v)\n", err)
			status = 1
		}
	}
	return status
}

// probeConsole activates SOL on the session, counts the bytes the host
// prints for d, and deactivates it.
func probeConsole(ctx context.Context, c *bmc.Client, d time.Duration, stdout io.Writer) error {
	con, err := sol.Open(ctx, c.Session(), sol.ConsoleOptions{})
	if err != nil {
		return err
	}
	timer := time.AfterFunc(d, func() { con.Close() })
	defer timer.Stop()
	var total int
	buf := make([]byte, 4096)
	var readErr error
	for {
		n, err := con.Read(buf)
		total += n
		if err != nil {
			readErr = err
			break
		}
	}
	con.Close()
	if timer.Stop() {
		// The console ended before d: the BMC or the session stopped it.
		return fmt.Errorf("SOL ended after %d bytes: %v", total, readErr)
	}
	if total == 0 {
		fmt.Fprintf(stdout, "console: SOL active, but no byte in %v (is the host printing to its serial port?)\n", d)
		return nil
	}
	fmt.Fprintf(stdout, "console: SOL streams, %d bytes in %v\n", total, d)
	return nil
}

func printDetected(w io.Writer, ds []rmcpplus.Detection) {
	if len(ds) == 0 {
		fmt.Fprintln(w, "quirks detected: none")
		return
	}
	fmt.Fprintln(w, "quirks detected:")
	for _, d := range ds {
		fmt.Fprintf(w, "  %s: %s\n", d.Name, d.Evidence)
	}
}

func suiteList(ids []uint8) string {
	var s []string
	for _, id := range ids {
		s = append(s, strconv.Itoa(int(id)))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func privilegeText(p ipmi.PrivilegeLevel) string {
	switch p {
	case ipmi.PrivilegeOperator:
		return "operator"
	case ipmi.PrivilegeAdministrator:
		return "administrator"
	}
	return p.String()
}

// authCapsText summarises Get Channel Authentication Capabilities
// (IPMI v2.0 section 22.13, Table 22-15).
func authCapsText(a ipmi.GetChannelAuthCapabilitiesRsp) string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	var types []string
	for _, t := range []struct {
		bit  uint8
		name string
	}{{ipmi.AuthSupportNone, "none"}, {ipmi.AuthSupportMD2, "MD2"}, {ipmi.AuthSupportMD5, "MD5"},
		{ipmi.AuthSupportPassword, "password"}, {ipmi.AuthSupportOEM, "OEM"}} {
		if a.AuthTypes&t.bit != 0 {
			types = append(types, t.name)
		}
	}
	var users []string
	if a.NonNullUsers {
		users = append(users, "named")
	}
	if a.NullUsers {
		users = append(users, "null")
	}
	if a.AnonymousLogin {
		users = append(users, "anonymous")
	}
	return fmt.Sprintf("channel %d; IPMI v2.0 (RMCP+) %s; IPMI v1.5 %s, auth types %s; Kg set %s; users %s",
		a.Channel, yes(a.SupportsV20), yes(a.SupportsV15), orNone(types), yes(a.KgStatus), orNone(users))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
