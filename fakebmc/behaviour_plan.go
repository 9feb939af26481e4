package fakebmc

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Misbehaving BMCs. FaultPlan breaks the network between a client and a
// BMC; a BehaviourPlan breaks the BMC itself, in the ways real BMCs fail
// in a machine room. Each way is named after what it reproduces, and each
// can be set per BMC (BMCConfig.Behaviour, or the BMC's methods at run
// time) or for a reproducible share of a fleet (FleetConfig.Misbehave).

// Behaviour names one way a real BMC misbehaves.
type Behaviour string

// The behaviours fakebmc reproduces.
const (
	// Reboot: the BMC's firmware restarts (watchdog, firmware update,
	// "mc reset cold"). Every session ends, an active SOL payload
	// included, the BMC answers nothing for a while, then serves again
	// with an empty session table. The host machine keeps its power
	// state and boot flags: only the BMC restarted.
	Reboot Behaviour = "reboot"
	// StaleSOL: the SOL payload is held by a session whose client
	// vanished without deactivating it (an ipmitool killed with SIGKILL,
	// a crashed console server). Activate Payload answers 0x80 "already
	// active" until someone sends Deactivate Payload or the BMC's idle
	// timeout ends the forgotten session.
	StaleSOL Behaviour = "stalesol"
	// SessionTableFull: every session slot is taken, as when other tools
	// hold them all. Open Session is refused with RMCP+ status 0x01
	// "insufficient resources to create a session"; sessions already
	// established go on working.
	SessionTableFull Behaviour = "tablefull"
	// BlackHole: the BMC answers nothing at all (hung firmware, a dead
	// NIC, a wrong address): every datagram to it is dropped.
	BlackHole Behaviour = "blackhole"
	// SlowAnswers: every datagram the BMC sends leaves late and in order,
	// as from a BMC whose CPU is busy. Unlike FaultPlan.Delay, which
	// delays both directions on the wire, requests arrive at once.
	SlowAnswers Behaviour = "slow"
)

// Behaviours lists every behaviour, in the order the help text gives them.
func Behaviours() []Behaviour {
	return []Behaviour{Reboot, StaleSOL, SessionTableFull, BlackHole, SlowAnswers}
}

// ParseBehaviour accepts a behaviour's name, in any case.
func ParseBehaviour(s string) (Behaviour, error) {
	for _, b := range Behaviours() {
		if strings.EqualFold(s, string(b)) {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown misbehaviour %q (known: %s)", s, behaviourNames())
}

func behaviourNames() string {
	var names []string
	for _, b := range Behaviours() {
		names = append(names, string(b))
	}
	return strings.Join(names, ", ")
}

// Defaults of a BehaviourPlan's durations.
const (
	// DefaultRebootSilence is how long a periodic reboot keeps the BMC
	// silent when BehaviourPlan.RebootSilence is zero: real BMCs take
	// from about 20 s to a few minutes.
	DefaultRebootSilence = 30 * time.Second
)

// BehaviourPlan is how one BMC misbehaves. The zero plan is a BMC that
// behaves.
type BehaviourPlan struct {
	// RebootEvery reboots the BMC (see Reboot) periodically; zero means
	// never. The first reboot comes after a share of the period drawn
	// from the BMC's fault seed, so a fleet's BMCs do not reboot in step.
	RebootEvery time.Duration
	// RebootSilence is how long each periodic reboot keeps the BMC
	// silent; zero means DefaultRebootSilence. It must be shorter than
	// RebootEvery.
	RebootSilence time.Duration
	// StaleSOL starts the BMC with its SOL payload held by a vanished
	// client (see StaleSOL and BMC.LeaveStaleSOL).
	StaleSOL bool
	// SessionTableFull refuses every Open Session with status 0x01.
	SessionTableFull bool
	// BlackHole drops every datagram.
	BlackHole bool
	// SlowAnswers delays every datagram the BMC sends; zero means none.
	SlowAnswers time.Duration
}

// Active reports whether the plan changes anything.
func (p BehaviourPlan) Active() bool { return p != BehaviourPlan{} }

// rebootSilence is the silence of a periodic reboot, default applied.
func (p BehaviourPlan) rebootSilence() time.Duration {
	if p.RebootSilence == 0 {
		return DefaultRebootSilence
	}
	return p.RebootSilence
}

// Validate reports every field out of range, in words.
func (p BehaviourPlan) Validate() error {
	var errs []error
	if p.RebootEvery < 0 {
		errs = append(errs, fmt.Errorf("reboot period %v is negative", p.RebootEvery))
	}
	if p.RebootSilence < 0 {
		errs = append(errs, fmt.Errorf("reboot silence %v is negative", p.RebootSilence))
	}
	if p.RebootEvery > 0 && p.RebootSilence >= 0 && p.rebootSilence() >= p.RebootEvery {
		errs = append(errs, fmt.Errorf("reboot silence %v is not shorter than the reboot period %v", p.rebootSilence(), p.RebootEvery))
	}
	if p.SlowAnswers < 0 {
		errs = append(errs, fmt.Errorf("slow answers delay %v is negative", p.SlowAnswers))
	}
	return errors.Join(errs...)
}

// String describes the plan for a log line, e.g. "reboot every 5m0s
// (silent 30s), slow answers 2s"; "none" for the zero plan.
func (p BehaviourPlan) String() string {
	var parts []string
	if p.RebootEvery > 0 {
		parts = append(parts, fmt.Sprintf("reboot every %v (silent %v)", p.RebootEvery, p.rebootSilence()))
	}
	if p.StaleSOL {
		parts = append(parts, "stale SOL")
	}
	if p.SessionTableFull {
		parts = append(parts, "session table full")
	}
	if p.BlackHole {
		parts = append(parts, "black hole")
	}
	if p.SlowAnswers > 0 {
		parts = append(parts, fmt.Sprintf("slow answers %v", p.SlowAnswers))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// FaultSpread makes a reproducible part of a fleet misbehave: it chooses
// BMCs, by number or as a share of the fleet, and gives each chosen BMC
// one of Plans, in turn. The zero FaultSpread chooses nobody.
type FaultSpread struct {
	// Plans are the misbehaviours handed out: the chosen BMCs, in port
	// order, take them in turn (the first chosen BMC Plans[0], the second
	// Plans[1], ...), so that "reboot and black hole for 10%" makes 5%
	// of each.
	Plans []BehaviourPlan
	// Fraction chooses round(Fraction × fleet size) BMCs, at least one
	// when Fraction > 0; 1 chooses every BMC.
	Fraction float64
	// BMCs chooses these BMC numbers (0-based) instead of a fraction.
	BMCs []int
	// Seed decides which BMCs a Fraction chooses: the same seed and fleet
	// size choose the same BMCs.
	Seed int64
}

// faultSpreadStream keeps the choice of BMCs independent of the other
// uses of a seed.
const faultSpreadStream = 0x73707264 // "sprd"

// Validate reports every problem with s for a fleet of count BMCs.
func (s FaultSpread) Validate(count int) error {
	var errs []error
	chooses := s.Fraction != 0 || len(s.BMCs) > 0
	switch {
	case !(s.Fraction >= 0 && s.Fraction <= 1): // also rejects NaN
		errs = append(errs, fmt.Errorf("misbehaving fraction %v is not between 0 and 1", s.Fraction))
	case s.Fraction > 0 && len(s.BMCs) > 0:
		errs = append(errs, errors.New("misbehaving BMCs chosen both by fraction and by number: give one"))
	}
	seen := make(map[int]bool, len(s.BMCs))
	for _, i := range s.BMCs {
		switch {
		case i < 0 || i >= count:
			errs = append(errs, fmt.Errorf("misbehaving BMC %d does not exist (the fleet has BMCs 0 to %d)", i, count-1))
		case seen[i]:
			errs = append(errs, fmt.Errorf("misbehaving BMC %d chosen twice", i))
		}
		seen[i] = true
	}
	switch {
	case chooses && len(s.Plans) == 0:
		errs = append(errs, errors.New("misbehaving BMCs chosen but no misbehaviour given"))
	case !chooses && len(s.Plans) > 0:
		errs = append(errs, errors.New("misbehaviour given but no BMC chosen: set a fraction or BMC numbers"))
	}
	for _, p := range s.Plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Assign returns, for each of count BMCs, the index in Plans of its
// misbehaviour, or -1 for a BMC that behaves. It is a pure function of s
// and count; s must be valid for count.
func (s FaultSpread) Assign(count int) []int {
	plan := make([]int, count)
	for i := range plan {
		plan[i] = -1
	}
	if len(s.Plans) == 0 {
		return plan
	}
	chosen := slices.Clone(s.BMCs)
	if len(chosen) == 0 && s.Fraction > 0 {
		n := min(max(int(math.Round(s.Fraction*float64(count))), 1), count)
		// A seeded permutation's first n: every subset of n is equally
		// likely, and the choice depends only on the seed and count.
		rng := rand.New(rand.NewPCG(uint64(s.Seed), faultSpreadStream))
		chosen = rng.Perm(count)[:n]
	}
	slices.Sort(chosen)
	for k, i := range chosen {
		if i >= 0 && i < count {
			plan[i] = k % len(s.Plans)
		}
	}
	return plan
}
