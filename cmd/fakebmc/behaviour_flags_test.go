package main

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
	"obmd/rmcpplus"
)

func TestMisbehaviourFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want fakebmc.FaultSpread
	}{
		{"none", nil, fakebmc.FaultSpread{}},
		{"every BMC by default", []string{"-fault", "blackhole"},
			fakebmc.FaultSpread{Plans: []fakebmc.BehaviourPlan{{BlackHole: true}}, Fraction: 1, Seed: 1}},
		{"fraction and seed", []string{"-count", "100", "-fault", "tablefull,stalesol", "-fault-fraction", "0.1", "-seed", "9"},
			fakebmc.FaultSpread{Plans: []fakebmc.BehaviourPlan{{SessionTableFull: true}, {StaleSOL: true}}, Fraction: 0.1, Seed: 9}},
		{"reboot defaults", []string{"-fault", "reboot"},
			fakebmc.FaultSpread{Plans: []fakebmc.BehaviourPlan{{RebootEvery: 5 * time.Minute, RebootSilence: 30 * time.Second}}, Fraction: 1, Seed: 1}},
		{"reboot and slow, timed", []string{"-fault", "Reboot, slow", "-reboot-every", "2m", "-reboot-silence", "45s", "-slow-answers", "1500ms"},
			fakebmc.FaultSpread{Plans: []fakebmc.BehaviourPlan{{RebootEvery: 2 * time.Minute, RebootSilence: 45 * time.Second}, {SlowAnswers: 1500 * time.Millisecond}}, Fraction: 1, Seed: 1}},
		{"by number", []string{"-count", "20", "-fault", "slow", "-fault-bmcs", "0,3,10-12"},
			fakebmc.FaultSpread{Plans: []fakebmc.BehaviourPlan{{SlowAnswers: 2 * time.Second}}, BMCs: []int{0, 3, 10, 11, 12}, Seed: 1}},
		{"fraction 0 turns it off", []string{"-fault", "blackhole", "-fault-fraction", "0"}, fakebmc.FaultSpread{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, noEnv)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if !reflect.DeepEqual(o.misbehave, tc.want) {
				t.Fatalf("misbehaviour %+v\nwant           %+v", o.misbehave, tc.want)
			}
			if err := o.misbehave.Validate(o.count); err != nil {
				t.Fatalf("the flags gave an invalid spread: %v", err)
			}
		})
	}
}

func TestBadMisbehaviourFlagsExitTwoWithOneLine(t *testing.T) {
	cases := []badFlagCase{
		{"unknown kind", []string{"-fault", "flaky"}, `-fault: unknown misbehaviour "flaky" (known: reboot, stalesol, tablefull, blackhole, slow)`},
		{"kind twice", []string{"-fault", "slow,slow"}, "-fault lists slow twice"},
		{"fraction without fault", []string{"-fault-fraction", "0.5"}, "-fault-fraction needs -fault"},
		{"numbers without fault", []string{"-fault-bmcs", "1"}, "-fault-bmcs needs -fault"},
		{"fraction out of range", []string{"-fault", "slow", "-fault-fraction", "1.5"}, "-fault-fraction 1.5 is not between 0 and 1"},
		{"both choosers", []string{"-count", "4", "-fault", "slow", "-fault-fraction", "0.5", "-fault-bmcs", "1"}, "-fault-fraction and -fault-bmcs both choose"},
		{"BMC beyond count", []string{"-count", "4", "-fault", "slow", "-fault-bmcs", "2-4"}, "-fault-bmcs: BMC 4 does not exist (-count 4: BMCs 0 to 3)"},
		{"bad list", []string{"-fault", "slow", "-fault-bmcs", "one"}, `-fault-bmcs: "one" is not a BMC number or a range N-M`},
		{"backwards range", []string{"-count", "9", "-fault", "slow", "-fault-bmcs", "5-2"}, `"5-2" is not a BMC number or a range N-M`},
		{"listed twice", []string{"-count", "9", "-fault", "slow", "-fault-bmcs", "1-3,2"}, "BMC 2 is listed twice"},
		{"reboot timing without reboot", []string{"-fault", "slow", "-reboot-every", "1m"}, "-reboot-every is only used with -fault reboot"},
		{"slow timing without slow", []string{"-slow-answers", "1s"}, "-slow-answers is only used with -fault slow"},
		{"silence not shorter", []string{"-fault", "reboot", "-reboot-every", "20s"}, "-reboot-silence 30s is not shorter than -reboot-every 20s"},
		{"zero period", []string{"-fault", "reboot", "-reboot-every", "0s"}, "-reboot-every 0s is not positive"},
		{"negative slow", []string{"-fault", "slow", "-slow-answers", "-1s"}, "-slow-answers -1s is not positive"},
		{"bad duration", []string{"-fault", "slow", "-slow-answers", "lots"}, `invalid value "lots" for flag -slow-answers`},
	}
	checkBadFlags(t, cases)
}

func TestHelpDocumentsMisbehaviour(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"-help"}, noEnv, &stderr); code != 0 {
		t.Errorf("-help exit code %d, want 0", code)
	}
	for _, want := range []string{"-fault KIND", "-fault-fraction", "-fault-bmcs", "-reboot-every", "-reboot-silence",
		"-slow-answers", "reboot ", "stalesol ", "tablefull ", "blackhole ", "slow ", "insufficient resources", "0x80"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestServesMisbehavingBMCs runs two BMCs, the second with a full session
// table: the ready lines say which misbehaves, and only it refuses logins.
func TestServesMisbehavingBMCs(t *testing.T) {
	base := freePortRun(t, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:" + strconv.Itoa(base), "-count", "2",
			"-fault", "tablefull", "-fault-bmcs", "1"}, noEnv, &stderr)
	}()
	stderr.waitFor(t, "BMC ready", 2, done)
	var healthy, full string
	for _, l := range strings.Split(stderr.String(), "\n") {
		switch {
		case strings.Contains(l, "addr=127.0.0.1:"+strconv.Itoa(base)+" "):
			healthy = l
		case strings.Contains(l, "addr=127.0.0.1:"+strconv.Itoa(base+1)+" "):
			full = l
		}
	}
	if strings.Contains(healthy, "misbehaviour") || !strings.Contains(full, `misbehaviour="session table full"`) {
		t.Fatalf("ready lines do not say which BMC misbehaves:\n%s\n%s", healthy, full)
	}
	for i, want := range []string{"", "insufficient resources"} {
		s, err := rmcpplus.Dial(ctx, rmcpplus.ClientConfig{Addr: "127.0.0.1:" + strconv.Itoa(base+i),
			Username: "admin", Password: []byte("secret"), CipherSuite: 17, Timeout: time.Second})
		switch {
		case want == "" && err != nil:
			t.Errorf("BMC %d: Dial: %v", i, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("BMC %d: Dial: %v, want %q", i, err, want)
		}
		if err == nil {
			s.Close()
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
