package manager

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeStrictRejectsDuplicateKeys(t *testing.T) {
	type inner struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	type outer struct {
		Force *bool   `json:"force"`
		Info  inner   `json:"info"`
		List  []inner `json:"list"`
	}
	cases := []struct {
		body string
		dup  string // "" = accepted
	}{
		{`{"force": true, "info": {"a": 1, "b": 2}, "list": [{"a": 1}, {"a": 2}]}`, ""},
		{`{"force": true, "force": false}`, `duplicate key "force"`},
		{`{"force": true, "Force": false}`, `duplicate key "Force"`},
		{`{"info": {"a": 1, "a": 2}}`, `duplicate key "a" in info`},
		{`{"list": [{"a": 1, "b": 1, "a": 3}]}`, `duplicate key "a" in list`},
		{`{"info": {"a": 1}, "force": true, "info": {"b": 1}}`, `duplicate key "info"`},
		{`{"info": {"a": {"x": 1, "x": 2}}}`, `duplicate key "x" in a`},
	}
	for _, tc := range cases {
		var v outer
		err := DecodeStrict("test body", []byte(tc.body), &v)
		switch {
		case tc.dup == "" && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case tc.dup != "" && (err == nil || !strings.Contains(err.Error(), tc.dup) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: err = %v, want an ErrInvalid saying %s", tc.body, err, tc.dup)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	f.Add([]byte(`{"a": 1, "b": {"c": [1, {"d": 2, "d": 3}]}}`))
	f.Add([]byte(`[{"a":1},{"a":1}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		duplicateKey(data) // must not panic on any input
	})
}

func TestValidateNodeID(t *testing.T) {
	good := []string{"node-1", "a", "rack 3 slot 4", "nœud-é", "x.y", "...", strings.Repeat("n", MaxNodeIDLen)}
	bad := []string{"", ".", "..", " ", " lead", "trail ", "a/b", "tab\there", "nl\n", "rlo\u202eevil", "lri\u2066x", "zwsp\u200bx",
		"nbsp\u00a0x", "bom\ufeff", "bad utf8 \xff", strings.Repeat("n", MaxNodeIDLen+1)}
	for _, id := range good {
		if err := validateNodeID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := validateNodeID(id); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted (err %v)", id, err)
		}
	}
}
