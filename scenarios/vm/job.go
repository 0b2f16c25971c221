package vm

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Step is one command of a job: argv (no shell: each word is quoted into
// job.sh), run in the job's output directory, its output in NAME.log and
// its exit status in NAME.exit there. The job's own files are in ../in.
type Step struct {
	Name    string
	Argv    []string
	Timeout time.Duration
}

// InDir is where the guest puts the job's files, relative to the output
// directory the steps run in.
const InDir = "../in"

var stepName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Script is job.sh for steps: each one bounded by its timeout (coreutils
// timeout, then KILL), each start and end said on the console.
func Script(steps []Step) (string, error) {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# job.sh, written by the host (scenarios/vm): each step's words are quoted.
set -u
# A unit's environment has no HOME: the CLI keeps its cache under it.
export HOME=/root
cd "$1" || exit 1
say() { printf '\nnuh-vm: %s\n' "$*" > /dev/ttyS0; }
step() {
	name=$1 secs=$2
	shift 2
	say "step $name start"
	timeout -k 10 "$secs" "$@" > "$name.log" 2>&1
	rc=$?
	echo "$rc" > "$name.exit"
	# A step that failed shows its last lines on the console at once.
	[ "$rc" -eq 0 ] || tail -n 15 "$name.log" | sed "s/^/nuh-vm: $name | /" > /dev/ttyS0
	say "step $name end: exit $rc"
}
`)
	for _, s := range steps {
		if !stepName.MatchString(s.Name) {
			return "", fmt.Errorf("vm: step name %q: want lower-case letters, digits and dashes", s.Name)
		}
		if len(s.Argv) == 0 || s.Timeout <= 0 {
			return "", fmt.Errorf("vm: step %s: want a command and a timeout", s.Name)
		}
		words := []string{"step", s.Name, fmt.Sprint(int(s.Timeout.Seconds()))}
		for _, a := range s.Argv {
			words = append(words, quote(a))
		}
		b.WriteString(strings.Join(words, " ") + "\n")
	}
	return b.String(), nil
}

// quote makes s one word of sh that means s, whatever it holds.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// StepEnd matches the console line that ends step name; its exit status
// is the first group.
func StepEnd(name string) *regexp.Regexp {
	return regexp.MustCompile(`nuh-vm: step ` + regexp.QuoteMeta(name) + ` end: exit (\d+)`)
}

// GuestUp and JobDone match the guest's first and last console lines.
var (
	GuestUp = regexp.MustCompile(`nuh-vm: guest up: (.*)`)
	JobDone = regexp.MustCompile(`nuh-vm: job done: exit (\d+)`)
)
