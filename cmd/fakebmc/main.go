// Command fakebmc serves simulated IPMI v2.0 BMCs on UDP, for tests and
// demos: ipmitool -I lanplus and FreeIPMI's tools work against it
// unmodified. See package obmd/fakebmc for what is simulated.
//
//	fakebmc -addr 127.0.0.1:9623 -user admin -pass secret -count 10
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
	"strings"
	"syscall"
	"time"

	"obmd/fakebmc"
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
	faults           fakebmc.FaultPlan
	powerOff         bool
	logLevel         slog.Level
}

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
	fs.Float64Var(&o.faults.Loss, "loss", 0, "probability (0..1) that a datagram is lost, each direction")
	fs.Float64Var(&o.faults.Dup, "dup", 0, "probability (0..1) that a datagram is duplicated")
	fs.Float64Var(&o.faults.Reorder, "reorder", 0, "probability (0..1) that a datagram is overtaken by later ones")
	fs.DurationVar(&o.faults.Delay, "delay", 0, "delay added to every datagram (e.g. 20ms)")
	fs.Int64Var(&o.faults.Seed, "seed", 1, "seed of the fault decisions (BMC i uses seed+i)")
	fs.BoolVar(&o.powerOff, "power-off", false, "start the machines powered off (default: on)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	return fs
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
	if err := o.faults.Validate(); err != nil {
		problems = append(problems, "-"+strings.ReplaceAll(err.Error(), "\n", "; -"))
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
	start := time.Now()
	fleet, err := fakebmc.StartFleet(ctx, fakebmc.FleetConfig{
		Addr:  o.addr,
		Count: o.count,
		BMC: fakebmc.BMCConfig{
			Users:   []fakebmc.User{{Name: o.user, Password: []byte(o.pass)}},
			Console: fakebmc.ConsoleMode(o.console),
			Baud:    baud,
			Faults:  o.faults,
			StartOn: !o.powerOff,
		},
		Logger: log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "fakebmc: %v\n", err)
		return 1
	}
	for i := range fleet.Len() {
		log.Info("BMC ready", "bmc", i, "addr", fleet.Addr(i), "user", o.user,
			"console", o.console, "baud", o.baud, "power_on", !o.powerOff,
			"loss", o.faults.Loss, "dup", o.faults.Dup, "reorder", o.faults.Reorder, "delay", o.faults.Delay)
	}
	log.Info("fakebmc serving", "bmcs", fleet.Len(), "startup", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	log.Info("fakebmc shutting down", "reason", context.Cause(ctx))
	_ = fleet.Close()
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fakebmc [flags]\n\nServes simulated IPMI v2.0 BMCs on UDP (RMCP+, cipher suites 1, 2, 3, 17).\nThe password may be given in $"+passEnv+" instead of -pass.\n\nflags:")
	fs := flagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}
