package fakebmc

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Quirk is one documented way a real BMC bends IPMI v2.0 (the rows of
// BMC-QUIRKS.md), reproduced so that clients can be tested against it.
// Unlike a Behaviour (which a share of a fleet takes, one each), a quirk
// set applies to every BMC of a fleet and combines with Behaviours and
// network faults.
//
// Each quirk is declared, with its one-line help, by registerQuirk in the
// file that implements it (quirks_session.go for the session layer,
// quirks_sol.go for Serial over LAN).
type Quirk string

// Quirks is a set of quirks.
type Quirks map[Quirk]bool

// QuirkSet is the set of qs (no quirk: the empty set).
func QuirkSet(qs ...Quirk) Quirks {
	set := make(Quirks, len(qs))
	for _, q := range qs {
		set[q] = true
	}
	return set
}

// Has reports whether q is in the set.
func (qs Quirks) Has(q Quirk) bool { return qs[q] }

// String lists the set, sorted, comma-separated.
func (qs Quirks) String() string {
	names := make([]string, 0, len(qs))
	for q, on := range qs {
		if on {
			names = append(names, string(q))
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// quirkHelp maps every known quirk to its one-line description.
var quirkHelp = map[Quirk]string{}

// registerQuirk declares a quirk; it panics on a duplicate (a programming
// error caught by any test).
func registerQuirk(q Quirk, help string) Quirk {
	if _, dup := quirkHelp[q]; dup {
		panic("fakebmc: quirk " + string(q) + " registered twice")
	}
	quirkHelp[q] = help
	return q
}

// KnownQuirks lists every quirk name, sorted.
func KnownQuirks() []Quirk {
	out := make([]Quirk, 0, len(quirkHelp))
	for q := range quirkHelp {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// QuirkHelp is the one-line description of q ("" if unknown).
func QuirkHelp(q Quirk) string { return quirkHelp[q] }

// ParseQuirks parses a comma-separated list of quirk names, reporting
// every unknown name at once. An empty list is the empty set.
func ParseQuirks(list string) (Quirks, error) {
	qs := Quirks{}
	var unknown []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ok := quirkHelp[Quirk(name)]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		qs[Quirk(name)] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown quirk %s (known: %s)", strings.Join(unknown, ", "), quirkList())
	}
	return qs, nil
}

func quirkList() string {
	var names []string
	for _, q := range KnownQuirks() {
		names = append(names, string(q))
	}
	return strings.Join(names, ", ")
}
