package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

const versionUsage = `Usage: nginx-upgrade-harness version

Prints the tool's version and the commit it was built from (also:
nginx-upgrade-harness --version). report.json records the same in its
provenance.

Exit codes: 0.
`

// Set by the Makefile: -ldflags "-X main.version=… -X main.commit=…". When
// they are not set, the module version and the VCS revision Go embedded at
// build time are used.
var (
	version = ""
	commit  = ""
)

// buildVersion is the tool's version and commit, from the linker flags or,
// failing them, from Go's embedded build information ("unknown" when
// neither has it, e.g. under go test).
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	modified := false
	if info, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if ver == "" {
		ver = "devel"
	}
	if rev == "" {
		rev = "unknown"
	} else if modified && commit == "" {
		rev += "-dirty"
	}
	return ver, rev
}

func versionCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("version", versionUsage, stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ver, rev := buildVersion()
	fmt.Fprintf(stdout, "nginx-upgrade-harness %s (commit %s)\n", ver, rev)
	return nil
}
