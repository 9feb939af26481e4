package cluster

import (
	"fmt"
	"testing"
)

func TestOwnerOfSpreadsAndMovesLittle(t *testing.T) {
	t.Parallel()
	members := []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"}
	const n = 3000
	count := map[string]int{}
	before := make([]string, n)
	for i := range n {
		before[i] = OwnerOf(fmt.Sprintf("node-%d", i), members)
		count[before[i]]++
	}
	for _, m := range members {
		// Each member's share is binomial(3000, 1/3): sd ~26, so ±150 is
		// over 5 sd.
		if c := count[m]; c < n/3-150 || c > n/3+150 {
			t.Errorf("%s owns %d of %d nodes, want about %d", m, c, n, n/3)
		}
	}
	// The order of the list does not matter.
	rev := []string{members[2], members[0], members[1]}
	for i := range 50 {
		if got := OwnerOf(fmt.Sprintf("node-%d", i), rev); got != before[i] {
			t.Fatalf("node-%d: owner %s with the list reordered, %s before", i, got, before[i])
		}
	}
	// A member leaving moves its nodes only; coming back moves exactly those back.
	left := members[:2]
	for i := range n {
		id := fmt.Sprintf("node-%d", i)
		got := OwnerOf(id, left)
		if before[i] != members[2] && got != before[i] {
			t.Fatalf("%s moved from %s to %s although its owner stayed", id, before[i], got)
		}
		if got == members[2] {
			t.Fatalf("%s given to the departed member", id)
		}
	}
	if got := OwnerOf("x", nil); got != "" {
		t.Errorf("owner with no members = %q, want none", got)
	}
}
