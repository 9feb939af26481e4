package main

import (
	"strings"
	"testing"
	"time"

	"obmd/fakebmc"
)

func TestSOLStealEveryFlag(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want time.Duration
	}{
		{"default", []string{"-quirks", "sol-steal"}, fakebmc.DefaultSOLStealEvery},
		{"given", []string{"-quirks", "sol-steal,cts-aux", "-sol-steal-every", "10s"}, 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if !o.quirks.Has(fakebmc.QuirkSOLSteal) || o.solStealEvery != tc.want {
				t.Fatalf("quirks %v, steal every %v; want sol-steal every %v", o.quirks, o.solStealEvery, tc.want)
			}
		})
	}
	checkBadFlags(t, []badFlagCase{
		{"without the quirk", []string{"-sol-steal-every", "5s"}, "-sol-steal-every is only used with -quirks sol-steal"},
		{"zero", []string{"-quirks", "sol-steal", "-sol-steal-every", "0s"}, "-sol-steal-every 0s is not positive"},
		{"negative", []string{"-quirks", "sol-steal", "-sol-steal-every", "-1m"}, "-sol-steal-every -1m0s is not positive"},
	})
}

func TestHelpListsSOLQuirks(t *testing.T) {
	var stderr syncBuffer
	if code := run(t.Context(), []string{"-help"}, noEnv, &stderr); code != 0 {
		t.Fatalf("-help exit code %d", code)
	}
	out := stderr.String()
	for _, q := range []fakebmc.Quirk{fakebmc.QuirkSOLPortSwapped, fakebmc.QuirkSOLPort623, fakebmc.QuirkSOLPortBogus,
		fakebmc.QuirkSOLSize1, fakebmc.QuirkActivationStatusLies, fakebmc.QuirkCTSAux, fakebmc.QuirkSOLStrictSeq,
		fakebmc.QuirkSOLSteal, fakebmc.QuirkDeactivateIgnored, fakebmc.QuirkSOLSeqRestart} {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), string(q)+" ") {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, fakebmc.QuirkHelp(q)) {
			t.Errorf("help has no line for %s with its description:\n%s", q, out)
		}
	}
	if !strings.Contains(out, "-sol-steal-every") {
		t.Error("help lacks -sol-steal-every")
	}
}
