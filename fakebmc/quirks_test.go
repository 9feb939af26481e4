package fakebmc

import (
	"strings"
	"testing"
)

func TestParseQuirks(t *testing.T) {
	quirkHelp["test-quirk"] = "for this test"
	t.Cleanup(func() { delete(quirkHelp, "test-quirk") })

	qs, err := ParseQuirks(" test-quirk ,,")
	if err != nil || !qs.Has("test-quirk") || qs.String() != "test-quirk" {
		t.Fatalf("ParseQuirks = %v, %v", qs, err)
	}
	if qs, err := ParseQuirks(""); err != nil || len(qs) != 0 {
		t.Fatalf("empty list = %v, %v", qs, err)
	}
	_, err = ParseQuirks("test-quirk,nope,nada")
	if err == nil || !strings.Contains(err.Error(), `"nope", "nada"`) || !strings.Contains(err.Error(), "test-quirk") {
		t.Fatalf("unknown names: err = %v", err)
	}
}

func TestEveryQuirkHasHelp(t *testing.T) {
	for _, q := range KnownQuirks() {
		if h := QuirkHelp(q); h == "" || strings.Contains(h, "\n") {
			t.Errorf("quirk %s: help %q should be one line", q, h)
		}
	}
}

func TestQuirkSet(t *testing.T) {
	if qs := QuirkSet(); len(qs) != 0 || qs.Has("x") {
		t.Errorf("QuirkSet() = %v", qs)
	}
	if qs := QuirkSet("a", "b"); !qs.Has("a") || !qs.Has("b") || qs.Has("c") || qs.String() != "a,b" {
		t.Errorf("QuirkSet(a, b) = %v", qs)
	}
}
