package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func defineVersion(*flag.FlagSet) runner {
	return func(a *app, _ context.Context, _ []string) error {
		fmt.Fprint(a.stdout, buildDescription())
		return nil
	}
}

// buildDescription is what `whirl version` prints: the module version, the
// VCS revision and the Go release, as the toolchain stamped them ("unknown"
// for what it did not: a build with -buildvcs=false has no revision). The
// client needs no ffmpeg, so none is looked for.
func buildDescription() string {
	version, revision, at, modified := "unknown", "unknown", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified && revision != "unknown" {
		revision += "+dirty"
	}
	return fmt.Sprintf("whirl %s\nrevision: %s (%s)\ngo: %s %s/%s\n", version, revision, at, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
