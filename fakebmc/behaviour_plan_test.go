package fakebmc

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseBehaviour(t *testing.T) {
	cases := []struct {
		in   string
		want Behaviour
		err  string
	}{
		{"reboot", Reboot, ""},
		{"stalesol", StaleSOL, ""},
		{"tablefull", SessionTableFull, ""},
		{"blackhole", BlackHole, ""},
		{"slow", SlowAnswers, ""},
		{"BlackHole", BlackHole, ""},
		{"black-hole", "", `unknown misbehaviour "black-hole" (known: reboot, stalesol, tablefull, blackhole, slow)`},
		{"", "", `unknown misbehaviour ""`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBehaviour(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseBehaviour(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseBehaviour(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestBehaviourPlanValidate(t *testing.T) {
	cases := []struct {
		name string
		plan BehaviourPlan
		want []string // substrings of the error; none: valid
	}{
		{"zero", BehaviourPlan{}, nil},
		{"everything", BehaviourPlan{RebootEvery: time.Minute, RebootSilence: 10 * time.Second, StaleSOL: true,
			SessionTableFull: true, BlackHole: true, SlowAnswers: time.Second}, nil},
		{"default silence fits", BehaviourPlan{RebootEvery: time.Minute}, nil},
		{"default silence too long", BehaviourPlan{RebootEvery: 20 * time.Second},
			[]string{"reboot silence 30s is not shorter than the reboot period 20s"}},
		{"silence equals period", BehaviourPlan{RebootEvery: time.Minute, RebootSilence: time.Minute},
			[]string{"reboot silence 1m0s is not shorter"}},
		{"negatives", BehaviourPlan{RebootEvery: -1, RebootSilence: -time.Second, SlowAnswers: -time.Millisecond},
			[]string{"reboot period -1ns is negative", "reboot silence -1s is negative", "slow answers delay -1ms is negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.plan.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted the plan")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestBehaviourPlanString(t *testing.T) {
	cases := []struct {
		plan BehaviourPlan
		want string
	}{
		{BehaviourPlan{}, "none"},
		{BehaviourPlan{RebootEvery: 5 * time.Minute}, "reboot every 5m0s (silent 30s)"},
		{BehaviourPlan{StaleSOL: true, SlowAnswers: 2 * time.Second}, "stale SOL, slow answers 2s"},
		{BehaviourPlan{SessionTableFull: true, BlackHole: true}, "session table full, black hole"},
	}
	for _, tc := range cases {
		if got := tc.plan.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.plan, got, tc.want)
		}
	}
}

func TestFaultSpreadValidate(t *testing.T) {
	one := []BehaviourPlan{{BlackHole: true}}
	cases := []struct {
		name   string
		spread FaultSpread
		want   string // "" for valid
	}{
		{"zero", FaultSpread{}, ""},
		{"fraction", FaultSpread{Plans: one, Fraction: 0.1}, ""},
		{"numbers", FaultSpread{Plans: one, BMCs: []int{0, 9}}, ""},
		{"fraction above one", FaultSpread{Plans: one, Fraction: 1.5}, "misbehaving fraction 1.5 is not between 0 and 1"},
		{"NaN fraction", FaultSpread{Plans: one, Fraction: math.NaN()}, "not between 0 and 1"},
		{"both", FaultSpread{Plans: one, Fraction: 0.5, BMCs: []int{1}}, "both by fraction and by number"},
		{"number out of range", FaultSpread{Plans: one, BMCs: []int{10}}, "misbehaving BMC 10 does not exist (the fleet has BMCs 0 to 9)"},
		{"negative number", FaultSpread{Plans: one, BMCs: []int{-1}}, "misbehaving BMC -1 does not exist"},
		{"number twice", FaultSpread{Plans: one, BMCs: []int{3, 3}}, "misbehaving BMC 3 chosen twice"},
		{"nothing to do", FaultSpread{Fraction: 0.5}, "chosen but no misbehaviour given"},
		{"nobody chosen", FaultSpread{Plans: one}, "no BMC chosen"},
		{"bad plan", FaultSpread{Plans: []BehaviourPlan{{SlowAnswers: -1}}, Fraction: 1}, "slow answers delay -1ns is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spread.Validate(10)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// chosenBMCs lists the BMCs Assign gave a plan, and each one's plan.
func chosenBMCs(assigned []int) (bmcs, plans []int) {
	for i, p := range assigned {
		if p >= 0 {
			bmcs = append(bmcs, i)
			plans = append(plans, p)
		}
	}
	return bmcs, plans
}

func TestFaultSpreadAssign(t *testing.T) {
	two := []BehaviourPlan{{BlackHole: true}, {SlowAnswers: time.Second}}
	cases := []struct {
		name      string
		spread    FaultSpread
		count     int
		wantCount int
		wantBMCs  []int // nil: any
	}{
		{"a tenth of 1000", FaultSpread{Plans: two, Fraction: 0.1, Seed: 1}, 1000, 100, nil},
		{"rounded", FaultSpread{Plans: two, Fraction: 0.25, Seed: 1}, 10, 3, nil}, // 2.5 rounds to 3
		{"at least one", FaultSpread{Plans: two, Fraction: 0.01, Seed: 1}, 10, 1, nil},
		{"everyone", FaultSpread{Plans: two, Fraction: 1, Seed: 1}, 7, 7, []int{0, 1, 2, 3, 4, 5, 6}},
		{"by number", FaultSpread{Plans: two, BMCs: []int{8, 2, 5}}, 10, 3, []int{2, 5, 8}},
		{"nobody", FaultSpread{}, 10, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.spread.Assign(tc.count)
			if len(got) != tc.count {
				t.Fatalf("%d assignments for %d BMCs", len(got), tc.count)
			}
			bmcs, plans := chosenBMCs(got)
			if len(bmcs) != tc.wantCount {
				t.Fatalf("%d BMCs chosen (%v), want %d", len(bmcs), bmcs, tc.wantCount)
			}
			if tc.wantBMCs != nil && !slices.Equal(bmcs, tc.wantBMCs) {
				t.Fatalf("chose %v, want %v", bmcs, tc.wantBMCs)
			}
			// The chosen BMCs, in port order, take the plans in turn.
			for k, p := range plans {
				if p != k%len(tc.spread.Plans) {
					t.Fatalf("chosen BMC %d (#%d) got plan %d, want %d", bmcs[k], k, p, k%len(tc.spread.Plans))
				}
			}
			if !slices.Equal(got, tc.spread.Assign(tc.count)) {
				t.Fatal("Assign is not reproducible")
			}
		})
	}
}

func TestFaultSpreadSeedChoosesWhich(t *testing.T) {
	spread := func(seed int64) FaultSpread {
		return FaultSpread{Plans: []BehaviourPlan{{BlackHole: true}}, Fraction: 0.1, Seed: seed}
	}
	a, _ := chosenBMCs(spread(1).Assign(1000))
	b, _ := chosenBMCs(spread(2).Assign(1000))
	if slices.Equal(a, b) {
		t.Fatal("seeds 1 and 2 chose the same BMCs")
	}
	// Spread over the fleet, not bunched at the start.
	if a[len(a)-1] < 500 || a[0] > 500 {
		t.Fatalf("seed 1 chose BMCs %d to %d of 1000", a[0], a[len(a)-1])
	}
}
