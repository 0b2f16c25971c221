package main

import (
	"errors"
	"flag"

	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// registerTargets declares --targets, --targets-format and --ca.
func (f *runFlags) registerTargets(fs *flag.FlagSet) {
	fs.StringVar(&f.targets, "targets", "", "a vegeta targets `FILE` (HTTP or JSON format): the request kinds send its requests round-robin instead of the harness's own; every URL's host is sent to nginx on the node's loopback, by the URL's port, with Host and TLS server name kept (docs/site.md)")
	fs.StringVar(&f.targetsFormat, "targets-format", "", "`http|json`: the format of --targets (vegeta's -format names; default: JSON when the first line is a JSON object)")
	fs.StringVar(&f.ca, "ca", "", "a PEM `FILE` of CA certificates: verify the https targets' certificates against it, for each URL's host name (default: not verified)")
}

// readTargets reads --targets (and --ca) before anything starts; nil
// without --targets.
func (f *runFlags) readTargets() (*scenarios.Targets, error) {
	if f.targets == "" {
		switch {
		case f.ca != "":
			return nil, errors.New("--ca: verifies the https targets of --targets, and there is no --targets")
		case f.targetsFormat != "":
			return nil, errors.New("--targets-format: there is no --targets")
		}
		return nil, nil
	}
	return scenarios.LoadTargets(f.targets, f.targetsFormat, f.ca)
}
