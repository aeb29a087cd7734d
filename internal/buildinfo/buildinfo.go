// Package buildinfo says which build of whirl is running: the module
// version, the VCS revision it was built from and the Go release, as the
// Go toolchain stamped them into the binary.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info describes a build. Fields the toolchain did not stamp are "unknown"
// (a build with -buildvcs=false, or `go run`, has no revision).
type Info struct {
	// Version is the module version: a tag for `go install ...@v1.2.3`,
	// "(devel)" for a build from a checkout.
	Version string
	// Revision is the VCS commit, with "+dirty" when the tree had local
	// changes; Time is its commit time (RFC 3339).
	Revision, Time string
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	i := Info{Version: "unknown", Revision: "unknown", Time: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && i.Revision != "unknown" {
		i.Revision += "+dirty"
	}
	return i
}

// String is the build on one line: "v1.2.3 (revision abc…, 2026-01-02T…), go1.26.0".
func (i Info) String() string {
	return fmt.Sprintf("%s (revision %s, %s), %s %s/%s", i.Version, i.Revision, i.Time, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}
