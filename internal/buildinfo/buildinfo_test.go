package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	t.Parallel()
	withSettings := func(mainVersion string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "obmd", Version: mainVersion}, Settings: settings}, true
		}
	}
	cases := []struct {
		name       string
		stamped    string
		stampedRev string
		read       func() (*debug.BuildInfo, bool)
		want       Info
	}{
		{"stamped wins over the module version", "v1.2.0-3-gabcdef", "0000", withSettings("(devel)",
			debug.BuildSetting{Key: "vcs.revision", Value: "abcdef0123"}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}),
			Info{Version: "v1.2.0-3-gabcdef", Revision: "abcdef0123", GoVersion: "go1.26.8"}},
		{"unstamped local build", "", "", withSettings("(devel)",
			debug.BuildSetting{Key: "vcs.revision", Value: "abcdef0123"}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			Info{Version: "(devel)", Revision: "abcdef0123-modified", GoVersion: "go1.26.8"}},
		{"no VCS information", "", "", withSettings(""),
			Info{Version: "unknown", GoVersion: "go1.26.8"}},
		{"-buildvcs=false: the stamped revision", "v1.2.0", "abcdef0123", withSettings("(devel)"),
			Info{Version: "v1.2.0", Revision: "abcdef0123", GoVersion: "go1.26.8"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := read(tc.stamped, tc.stampedRev, tc.read); got != tc.want {
				t.Errorf("read = %+v, want %+v", got, tc.want)
			}
		})
	}
	noInfo := read("", "", func() (*debug.BuildInfo, bool) { return nil, false })
	if noInfo.Version != "unknown" || noInfo.GoVersion == "" {
		t.Errorf("without build info: %+v", noInfo)
	}
	if s := (Info{Version: "v1", GoVersion: "go1.26.8"}).String(); s != "obmd v1 (revision unknown, go1.26.8)" {
		t.Errorf("String = %q", s)
	}
}
