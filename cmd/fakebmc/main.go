// Command fakebmc serves simulated IPMI v2.0 BMCs on UDP, for tests and
// demos: ipmitool -I lanplus and FreeIPMI's tools work against it
// unmodified. See package obmd/fakebmc for what is simulated.
//
//	fakebmc -addr 127.0.0.1:9623 -user admin -pass secret -count 10
//
// Some BMCs can misbehave as real ones do, chosen reproducibly from -seed:
//
//	fakebmc -count 100 -fault reboot,stalesol -fault-fraction 0.1 -reboot-every 2m
//
// With -redfish each BMC also serves Redfish over HTTPS on TCP at its
// port number (same machine, same credentials):
//
//	fakebmc -redfish -redfish-cert /tmp/bmc.pem -redfish-quirks etag-required
//
// The password may come from the FAKEBMC_PASS environment variable instead
// of -pass, to keep it out of the process list. Bad flags exit with status
// 2, a port already in use with 1, each with one line on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"obmd/fakebmc"
	"obmd/rmcpplus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// options are the command's flags after parsing.
type options struct {
	addr, user, pass string
	count            int
	console          string
	baud             int
	solAccept        int
	faults           fakebmc.FaultPlan
	powerOff         bool
	logLevel         slog.Level

	// Misbehaviour, as given; parseFlags turns it into misbehave.
	fault, faultBMCs           string
	faultFraction              float64
	rebootEvery, rebootSilence time.Duration
	slowAnswers                time.Duration
	misbehave                  fakebmc.FaultSpread

	quirkList     string         // -quirks, as given
	quirks        fakebmc.Quirks // parsed
	solStealEvery time.Duration

	redfish          bool                  // -redfish
	redfishCert      string                // -redfish-cert FILE
	redfishQuirkList string                // -redfish-quirks, as given
	redfishQuirks    fakebmc.RedfishQuirks // parsed

	suiteList string  // -cipher-suites, as given
	suites    []uint8 // parsed
}

// Defaults of the misbehaviour flags.
const (
	defaultRebootEvery = 5 * time.Minute
	defaultSlowAnswers = 2 * time.Second
)

const passEnv = "FAKEBMC_PASS"

// flagSet declares the command's flags into o.
func flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("fakebmc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:9623", "UDP `host:port` of the first BMC; BMC i listens on port+i")
	fs.StringVar(&o.user, "user", "admin", "user name (administrator privilege)")
	fs.StringVar(&o.pass, "pass", "", "password (default \"secret\", or $"+passEnv+")")
	fs.IntVar(&o.count, "count", 1, "number of BMCs, on consecutive ports")
	fs.StringVar(&o.console, "console", "counter", "console output: counter (lines 0\\n1\\n2\\n...; with no SOL client attached the output is dropped, as on a real serial port, and the count goes on) or echo (typed bytes come back)")
	fs.IntVar(&o.baud, "baud", fakebmc.DefaultBaud, "counter console speed in bits/s (10 bits per character); 0 = as fast as SOL takes it")
	fs.IntVar(&o.solAccept, "sol-accept", 0, "accept at most `N` characters (1..255) of each SOL packet a client types, answering a partial accept for the rest, as BMCs with a small serial buffer do; 0 = accept whole packets")
	fs.Float64Var(&o.faults.Loss, "loss", 0, "probability (0..1) that a datagram is lost, each direction")
	fs.Float64Var(&o.faults.Dup, "dup", 0, "probability (0..1) that a datagram is duplicated")
	fs.Float64Var(&o.faults.Reorder, "reorder", 0, "probability (0..1) that a datagram is overtaken by later ones")
	fs.DurationVar(&o.faults.Delay, "delay", 0, "delay added to every datagram (e.g. 20ms)")
	fs.Int64Var(&o.faults.Seed, "seed", 1, "seed of the fault decisions (BMC i uses seed+i) and of the BMCs -fault-fraction chooses")
	fs.BoolVar(&o.powerOff, "power-off", false, "start the machines powered off (default: on)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.StringVar(&o.fault, "fault", "", "misbehaviours for the chosen BMCs, a comma-separated list of `KIND`: "+behaviourNames()+" (see below); with several, the chosen BMCs take them in turn")
	fs.Float64Var(&o.faultFraction, "fault-fraction", 1, "share (0..1) of the BMCs that misbehave with -fault; which ones depends on -seed")
	fs.StringVar(&o.faultBMCs, "fault-bmcs", "", "instead of -fault-fraction, exactly these BMC numbers misbehave (0-based `LIST`, e.g. 0,3,10-19)")
	fs.DurationVar(&o.rebootEvery, "reboot-every", defaultRebootEvery, "-fault reboot: time between two reboots of a BMC (the first comes at a -seed-drawn point of the period)")
	fs.DurationVar(&o.rebootSilence, "reboot-silence", fakebmc.DefaultRebootSilence, "-fault reboot: how long each reboot keeps the BMC silent")
	fs.DurationVar(&o.slowAnswers, "slow-answers", defaultSlowAnswers, "-fault slow: how late every datagram a slow BMC sends leaves")
	fs.StringVar(&o.suiteList, "cipher-suites", defaultCipherSuites, "comma-separated `LIST` of the RMCP+ cipher suites every BMC offers, from "+suiteNames()+" (suites 1, 2 and 15, 16 have no encryption)")
	fs.StringVar(&o.quirkList, "quirks", "", "comma-separated `LIST` of real BMCs' protocol deviations every BMC reproduces (see below); combines with -fault and the network faults")
	fs.BoolVar(&o.redfish, "redfish", false, "every BMC also serves Redfish over HTTPS on TCP at its port number, backed by the same machine (same user and password)")
	fs.StringVar(&o.redfishCert, "redfish-cert", "", "with -redfish, write the services' self-signed certificate (PEM) to `FILE`, for clients to pin (curl --cacert, obmd's ca_cert)")
	fs.StringVar(&o.redfishQuirkList, "redfish-quirks", "", "with -redfish, comma-separated `LIST` of real Redfish services' deviations every BMC reproduces (see below)")
	fs.DurationVar(&o.solStealEvery, "sol-steal-every", fakebmc.DefaultSOLStealEvery, "-quirks sol-steal: time between two silent steals of an active SOL instance")
	return fs
}

// defaultCipherSuites are the suites a BMC offers unless -cipher-suites
// says otherwise: those ipmitool and FreeIPMI use most.
const defaultCipherSuites = "1,2,3,17"

// offerableSuites are the cipher suites a fakebmc can offer: rmcpplus's,
// but suite 0 (no authentication at all).
func offerableSuites() []uint8 {
	return slices.DeleteFunc(rmcpplus.SupportedCipherSuites(), func(id uint8) bool { return id == 0 })
}

func suiteNames() string {
	var names []string
	for _, id := range offerableSuites() {
		names = append(names, strconv.Itoa(int(id)))
	}
	return strings.Join(names, ", ")
}

// parseCipherSuites parses -cipher-suites: suite IDs, each once.
func parseCipherSuites(list string) ([]uint8, error) {
	var out []uint8
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		n, err := strconv.Atoi(item)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%q is not a cipher suite number", item)
		case n < 0 || n > 255 || !slices.Contains(offerableSuites(), uint8(n)):
			return nil, fmt.Errorf("cipher suite %d is not supported (supported: %s)", n, suiteNames())
		case slices.Contains(out, uint8(n)):
			return nil, fmt.Errorf("cipher suite %d is listed twice", n)
		}
		out = append(out, uint8(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cipher suite given (supported: %s)", suiteNames())
	}
	return out, nil
}

func behaviourNames() string {
	var names []string
	for _, b := range fakebmc.Behaviours() {
		names = append(names, string(b))
	}
	return strings.Join(names, ", ")
}

// parseMisbehaviour checks the misbehaviour flags (set names the flags
// given) and fills o.misbehave; it returns the problems found.
func parseMisbehaviour(o *options, set map[string]bool) []string {
	var problems []string
	var kinds []fakebmc.Behaviour
	if o.fault != "" {
		for _, name := range strings.Split(o.fault, ",") {
			k, err := fakebmc.ParseBehaviour(strings.TrimSpace(name))
			switch {
			case err != nil:
				problems = append(problems, "-fault: "+err.Error())
			case slices.Contains(kinds, k):
				problems = append(problems, fmt.Sprintf("-fault lists %s twice", k))
			default:
				kinds = append(kinds, k)
			}
		}
	}
	for _, f := range []string{"fault-fraction", "fault-bmcs"} {
		if set[f] && o.fault == "" {
			problems = append(problems, "-"+f+" needs -fault")
		}
	}
	if set["fault-fraction"] && set["fault-bmcs"] {
		problems = append(problems, "-fault-fraction and -fault-bmcs both choose the misbehaving BMCs: give one")
	}
	if !(o.faultFraction >= 0 && o.faultFraction <= 1) { // also rejects NaN
		problems = append(problems, fmt.Sprintf("-fault-fraction %v is not between 0 and 1", o.faultFraction))
	}
	var bmcs []int
	if o.faultBMCs != "" {
		var err error
		if bmcs, err = parseBMCList(o.faultBMCs, o.count); err != nil {
			problems = append(problems, "-fault-bmcs: "+err.Error())
		}
	}
	for _, p := range []struct {
		flags []string
		kind  fakebmc.Behaviour
	}{{[]string{"reboot-every", "reboot-silence"}, fakebmc.Reboot}, {[]string{"slow-answers"}, fakebmc.SlowAnswers}} {
		for _, f := range p.flags {
			if set[f] && !slices.Contains(kinds, p.kind) {
				problems = append(problems, fmt.Sprintf("-%s is only used with -fault %s", f, p.kind))
			}
		}
	}
	if slices.Contains(kinds, fakebmc.Reboot) {
		switch {
		case o.rebootEvery <= 0:
			problems = append(problems, fmt.Sprintf("-reboot-every %v is not positive", o.rebootEvery))
		case o.rebootSilence <= 0:
			problems = append(problems, fmt.Sprintf("-reboot-silence %v is not positive", o.rebootSilence))
		case o.rebootSilence >= o.rebootEvery:
			problems = append(problems, fmt.Sprintf("-reboot-silence %v is not shorter than -reboot-every %v", o.rebootSilence, o.rebootEvery))
		}
	}
	if slices.Contains(kinds, fakebmc.SlowAnswers) && o.slowAnswers <= 0 {
		problems = append(problems, fmt.Sprintf("-slow-answers %v is not positive", o.slowAnswers))
	}
	if len(problems) > 0 || len(kinds) == 0 || (len(bmcs) == 0 && o.faultFraction == 0) {
		return problems // -fault-fraction 0: nobody misbehaves
	}
	spread := fakebmc.FaultSpread{BMCs: bmcs, Seed: o.faults.Seed}
	if len(bmcs) == 0 {
		spread.Fraction = o.faultFraction
	}
	for _, k := range kinds {
		var p fakebmc.BehaviourPlan
		switch k {
		case fakebmc.Reboot:
			p.RebootEvery, p.RebootSilence = o.rebootEvery, o.rebootSilence
		case fakebmc.StaleSOL:
			p.StaleSOL = true
		case fakebmc.SessionTableFull:
			p.SessionTableFull = true
		case fakebmc.BlackHole:
			p.BlackHole = true
		case fakebmc.SlowAnswers:
			p.SlowAnswers = o.slowAnswers
		}
		spread.Plans = append(spread.Plans, p)
	}
	o.misbehave = spread
	return nil
}

// parseBMCList parses "0,3,10-19" into BMC numbers below count.
func parseBMCList(list string, count int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		first, err1 := strconv.Atoi(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		switch {
		case err1 != nil || err2 != nil || first < 0 || last < first:
			return nil, fmt.Errorf("%q is not a BMC number or a range N-M", item)
		case last >= count:
			return nil, fmt.Errorf("BMC %d does not exist (-count %d: BMCs 0 to %d)", last, count, count-1)
		}
		for i := first; i <= last; i++ {
			if seen[i] {
				return nil, fmt.Errorf("BMC %d is listed twice", i)
			}
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}

// parseFlags parses and validates args, reporting every problem at once in
// one line.
func parseFlags(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	passSet := false
	fs.Visit(func(f *flag.Flag) { passSet = passSet || f.Name == "pass" })
	if !passSet {
		o.pass = "secret"
		if v := getenv(passEnv); v != "" {
			o.pass = v
		}
	}
	if o.user == "" || len(o.user) > 16 {
		problems = append(problems, "-user must be 1 to 16 characters")
	}
	if len(o.pass) > 20 {
		problems = append(problems, "password longer than 20 bytes")
	}
	if o.count < 1 || o.count > 65535 {
		problems = append(problems, fmt.Sprintf("-count %d is not between 1 and 65535", o.count))
	}
	if o.console != string(fakebmc.ConsoleCounter) && o.console != string(fakebmc.ConsoleEcho) {
		problems = append(problems, fmt.Sprintf("-console %q is not counter or echo", o.console))
	}
	if o.baud < 0 {
		problems = append(problems, fmt.Sprintf("-baud %d is negative", o.baud))
	}
	if o.solAccept < 0 || o.solAccept > 255 {
		problems = append(problems, fmt.Sprintf("-sol-accept %d is not between 0 and 255", o.solAccept))
	}
	if err := o.faults.Validate(); err != nil {
		problems = append(problems, "-"+strings.ReplaceAll(err.Error(), "\n", "; -"))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	problems = append(problems, parseMisbehaviour(o, set)...)
	if suites, err := parseCipherSuites(o.suiteList); err != nil {
		problems = append(problems, "-cipher-suites: "+err.Error())
	} else {
		o.suites = suites
	}
	if qs, err := fakebmc.ParseQuirks(o.quirkList); err != nil {
		problems = append(problems, "-quirks: "+err.Error())
	} else {
		o.quirks = qs
		switch {
		case set["sol-steal-every"] && !qs.Has(fakebmc.QuirkSOLSteal):
			problems = append(problems, "-sol-steal-every is only used with -quirks "+string(fakebmc.QuirkSOLSteal))
		case qs.Has(fakebmc.QuirkSOLSteal) && o.solStealEvery <= 0:
			problems = append(problems, fmt.Sprintf("-sol-steal-every %v is not positive", o.solStealEvery))
		}
	}
	for _, f := range []string{"redfish-cert", "redfish-quirks"} {
		if set[f] && !o.redfish {
			problems = append(problems, "-"+f+" needs -redfish")
		}
	}
	if set["redfish-cert"] && o.redfishCert == "" {
		problems = append(problems, "-redfish-cert needs a file name")
	}
	if qs, err := fakebmc.ParseRedfishQuirks(o.redfishQuirkList); err != nil {
		problems = append(problems, "-redfish-quirks: "+err.Error())
	} else {
		o.redfishQuirks = qs
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parseFlags(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(stderr)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fakebmc: %v (see fakebmc -h)\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	baud := o.baud
	if baud == 0 {
		baud = fakebmc.UnlimitedBaud
	}
	var redfish *fakebmc.RedfishConfig
	if o.redfish {
		redfish = &fakebmc.RedfishConfig{Quirks: o.redfishQuirks}
	}
	start := time.Now()
	fleet, err := fakebmc.StartFleet(ctx, fakebmc.FleetConfig{
		Addr:  o.addr,
		Count: o.count,
		BMC: fakebmc.BMCConfig{
			Users:         []fakebmc.User{{Name: o.user, Password: []byte(o.pass)}},
			CipherSuites:  o.suites,
			Console:       fakebmc.ConsoleMode(o.console),
			Baud:          baud,
			Faults:        o.faults,
			StartOn:       !o.powerOff,
			Quirks:        o.quirks,
			SOLAcceptMax:  o.solAccept,
			Redfish:       redfish,
			SOLStealEvery: o.solStealEvery,
		},
		Misbehave: o.misbehave,
		Logger:    log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "fakebmc: %v\n", err)
		return 1
	}
	if o.redfishCert != "" {
		if err := os.WriteFile(o.redfishCert, fleet.RedfishCertPEM(), 0o644); err != nil {
			fleet.Close()
			fmt.Fprintf(stderr, "fakebmc: -redfish-cert: %v\n", err)
			return 1
		}
	}
	for i := range fleet.Len() {
		attrs := []any{"bmc", i, "addr", fleet.Addr(i), "user", o.user, "cipher_suites", o.suiteList,
			"console", o.console, "baud", o.baud, "power_on", !o.powerOff,
			"loss", o.faults.Loss, "dup", o.faults.Dup, "reorder", o.faults.Reorder, "delay", o.faults.Delay}
		if p := fleet.BMC(i).Behaviour(); p.Active() {
			attrs = append(attrs, "misbehaviour", p.String())
		}
		if len(o.quirks) > 0 {
			attrs = append(attrs, "quirks", o.quirks.String())
		}
		if u := fleet.RedfishURL(i); u != "" {
			attrs = append(attrs, "redfish", u)
			if len(o.redfishQuirks) > 0 {
				attrs = append(attrs, "redfish_quirks", o.redfishQuirks.String())
			}
		}
		log.Info("BMC ready", attrs...)
	}
	log.Info("fakebmc serving", "bmcs", fleet.Len(), "startup", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	log.Info("fakebmc shutting down", "reason", context.Cause(ctx))
	_ = fleet.Close()
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fakebmc [flags]\n\nServes simulated IPMI v2.0 BMCs on UDP (RMCP+, cipher suites "+defaultCipherSuites+" unless -cipher-suites says\notherwise). The password may be given in $"+passEnv+" instead of -pass.\n\nflags:")
	fs := flagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Network faults (-loss, -dup, -reorder, -delay) hit every BMC's datagrams.
Misbehaving BMCs (-fault KIND[,KIND...]) fail as real BMCs do:
  reboot     the BMC's firmware reboots every -reboot-every: all sessions
             and SOL end without a word, the BMC answers nothing for
             -reboot-silence, then serves with an empty session table
             (the host's power state is not touched)
  stalesol   starts with SOL held by a client that vanished (as after a
             SIGKILLed ipmitool): Activate Payload answers 0x80 until
             someone sends Deactivate Payload or the session times out
  tablefull  every session slot taken: Open Session answers status 0x01
             "insufficient resources"; no new session opens
  blackhole  answers nothing at all
  slow       a busy BMC: every datagram it sends leaves -slow-answers late
-fault-fraction (default: every BMC) or -fault-bmcs chooses which BMCs;
with several kinds the chosen BMCs, in port order, take them in turn. The
same -seed and -count choose the same BMCs. Example: 10% of 100 BMCs, half
rebooting every 2 minutes and half with a stale SOL:
  fakebmc -count 100 -fault reboot,stalesol -fault-fraction 0.1 -reboot-every 2m
`)
	fmt.Fprintln(w, "\nRedfish (-redfish): each BMC also serves DMTF Redfish over HTTPS on TCP at its\nport number, with the same user and password and the same machine: service\nroot, SessionService, Systems/1 (PowerState, Boot override, Reset), tasks.\nQuirks (-redfish-quirks NAME[,NAME...]), deviations of real Redfish services:")
	for _, q := range fakebmc.KnownRedfishQuirks() {
		fmt.Fprintf(w, "  %-24s %s\n", q, fakebmc.RedfishQuirkHelp(q))
	}
	fmt.Fprintln(w, "Example: FAKEBMC_PASS=secret fakebmc -redfish -redfish-cert /tmp/bmc.pem\n  curl --cacert /tmp/bmc.pem -u admin:secret https://127.0.0.1:9623/redfish/v1/Systems/1")
	if qs := fakebmc.KnownQuirks(); len(qs) > 0 {
		fmt.Fprintln(w, "\nQuirks (-quirks NAME[,NAME...]), documented deviations of real BMCs, on every BMC:")
		for _, q := range qs {
			fmt.Fprintf(w, "  %-24s %s\n", q, fakebmc.QuirkHelp(q))
		}
	}
}
