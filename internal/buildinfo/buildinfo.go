// Package buildinfo says which obmd this is: the version and revision
// stamped by `make build` (-ldflags "-X obmd/internal/buildinfo.version=...
// -X obmd/internal/buildinfo.revision=..."), and the VCS revision and Go
// version the Go toolchain records in every binary
// (runtime/debug.ReadBuildInfo). obmd -version, the startup log line and the
// obmd_build_info metric all read it from here, so they cannot disagree.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// version and revision are set at link time by `make build`; empty in a
// plain `go build`. The revision is stamped too because the toolchain
// records none when building with -buildvcs=false (some CI setups set it
// in GOFLAGS) or from a source tree without .git (a container build).
var version, revision string

// Info describes the running binary.
type Info struct {
	// Version is the stamped version (git describe), else the module
	// version the toolchain recorded ("(devel)" for a local build).
	Version string
	// Revision is the VCS commit the binary was built from, with
	// "-modified" appended when the work tree had uncommitted changes;
	// empty when the toolchain recorded none (go build -buildvcs=false,
	// or a build outside a repository).
	Revision string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

var (
	once sync.Once
	info Info
)

// Get returns the running binary's build information.
func Get() Info {
	once.Do(func() { info = read(version, revision, debug.ReadBuildInfo) })
	return info
}

// read prefers the toolchain's VCS revision (it knows whether the tree was
// modified) over the stamped one.
func read(stamped, stampedRevision string, readBuild func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: stamped, Revision: stampedRevision, GoVersion: runtime.Version()}
	bi, ok := readBuild()
	if !ok {
		if i.Version == "" {
			i.Version = "unknown"
		}
		return i
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	if i.Version == "" {
		i.Version = "unknown"
	}
	vcsRevision, modified := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRevision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if vcsRevision != "" {
		i.Revision = vcsRevision
		if modified {
			i.Revision += "-modified"
		}
	}
	return i
}

// String is the one line obmd -version prints.
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	return "obmd " + i.Version + " (revision " + rev + ", " + i.GoVersion + ")"
}
