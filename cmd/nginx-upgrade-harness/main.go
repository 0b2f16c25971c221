// Command nginx-upgrade-harness runs nginx binary-upgrade scenarios under
// load in containers and reports whether any client connection was lost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
)

// Exit codes (the CLI contract).
const (
	exitPass     = 0 // every scenario met its expectation
	exitFail     = 1 // a scenario ran and did not
	exitBadInput = 2 // bad input, or the harness could not start
	exitInvalid  = 3 // the run finished but its measurement is invalid (an error verdict): retry, never read as a pass
)

// errFailed marks a run that worked but whose verdicts were not all met.
var errFailed = errors.New("some scenario did not meet its expectation")

// errInvalid marks a run in which no scenario failed but some measurement
// was invalid (a premise did not hold: an error verdict).
var errInvalid = errors.New("some scenario's measurement is invalid")

// badInput is a one-line cause for exit code 2.
type badInput struct{ err error }

func (b badInput) Error() string { return b.err.Error() }
func (b badInput) Unwrap() error { return b.err }

func bad(format string, args ...any) error { return badInput{fmt.Errorf(format, args...)} }

type command struct {
	summary string
	usage   string
	run     func(ctx context.Context, args []string, stderr io.Writer) error
}

// helpRequested is --help on a subcommand: its usage goes to stdout and the
// exit code is 0.
type helpRequested struct{ fs *flag.FlagSet }

func (h helpRequested) Error() string { return "help requested" }
func (h helpRequested) Unwrap() error { return flag.ErrHelp }

func commands() map[string]command {
	return map[string]command{
		"run":     {"run upgrade scenarios under load and write a report", runUsage, runCmd},
		"compare": {"run upgrade procedures side by side with a good and a broken build", compareUsage, compareCmd},
		"report":  {"re-render report.json, report.md and report.html from a run directory", reportUsage, reportCmd},
		"prune":   {"remove containers the harness left behind (by label)", pruneUsage, pruneCmd},
		"version": {"print the tool's version and commit", versionUsage, versionCmd},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "nginx-upgrade-harness — proves (or disproves) that an nginx in-place binary upgrade loses no connection.\n\n")
	fmt.Fprintf(w, "Usage: nginx-upgrade-harness COMMAND [flags]\n\nCommands:\n")
	cmds := commands()
	var names []string
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'nginx-upgrade-harness COMMAND --help' for a command's flags; --version prints the version.\n")
	fmt.Fprintf(w, "Exit codes: 0 every scenario met its expectation, 1 a scenario ran and did not,\n"+
		"2 bad input or the harness could not start, 3 the run finished but a measurement is invalid (an error verdict).\n")
}

func main() { os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr)) }

// realMain runs one command: help asked for goes to stdout, everything else
// (progress, summaries, errors) to stderr.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitBadInput
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitPass
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	if args[0] == harness.ReaperCommand {
		// Hidden: what a run's reaper container runs (harness.HoldLease).
		return harness.ReaperMain(args[1:], os.Stdin, stdout, stderr)
	}
	if args[0] == loadgen.HeartbeatCommand {
		// Hidden: what runs in nginx's container as its heartbeat
		// (scenarios: the trial starts it).
		return loadgen.HeartbeatMain(args[1:], stdout, stderr)
	}
	if args[0] == agent.Command {
		// Hidden: what a load agent's container runs (harness.StartAgent),
		// in nginx's network namespace.
		return agent.Main(args[1:], os.Stdin, stdout, stderr)
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nginx-upgrade-harness: unknown command %q (want compare, prune, report, run or version; see --help)\n", args[0])
		return exitBadInput
	}
	progress := stderr
	if args[0] == "version" {
		progress = stdout // what version prints is its answer, not progress; its errors still go to stderr
	}
	// The first Ctrl-C (or SIGTERM) cancels: the load stops, containers are
	// removed and the report of what was measured is still written. A
	// second one exits at once (see runInterruptible).
	return runInterruptible(stderr, func(ctx context.Context) int {
		return exitCode(cmd, cmd.run(ctx, args[1:], progress), stdout, stderr)
	})
}

// exitCode maps a command's error to the exit code, printing its cause (or
// the help asked for).
func exitCode(cmd command, err error, stdout, stderr io.Writer) int {
	var help helpRequested
	switch {
	case err == nil:
		return exitPass
	case errors.As(err, &help):
		fmt.Fprint(stdout, cmd.usage)
		fmt.Fprintf(stdout, "\nFlags:\n")
		printFlags(stdout, help.fs)
		return exitPass
	case errors.Is(err, errFailed):
		return exitFail
	case errors.Is(err, errInvalid):
		return exitInvalid
	default:
		fmt.Fprintf(stderr, "nginx-upgrade-harness: %s\n", oneLine(err.Error()))
		return exitBadInput
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlagSet makes a flag set that prints nothing itself: --help and flag
// errors come back from parseFlags as errors, and realMain prints them once.
func newFlagSet(name, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printFlags lists a command's flags as they are typed (--name VALUE), each
// with its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		_, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  %s\n", flagSpelling(f))
		if f.DefValue != "" && f.DefValue != "[]" && !strings.Contains(text, "(default") {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		for _, l := range wrap(text, 72) {
			fmt.Fprintf(w, "        %s\n", l)
		}
	})
}

// flagSpelling is a flag as it is typed: --name VALUE, or --name=true|false.
func flagSpelling(f *flag.Flag) string {
	kind, _ := flag.UnquoteUsage(f)
	name := "--" + f.Name
	if isBool(f) {
		return name + "=true|false"
	}
	if kind != "" {
		if kind == strings.ToLower(kind) && !strings.Contains(kind, "|") {
			kind = strings.ToUpper(kind) // flag's own names: string, int, duration, value
		}
		name += " " + kind
	}
	return name
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// Go's flag package names a flag with one dash; the messages of this tool
// name it as it is typed, with two.
var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): (.*)$`)
	reNoArg     = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// parseFlags parses a command's flags: --help comes back as helpRequested
// (realMain prints the usage once, on stdout), a bad flag as one line of bad
// input naming the flag, with a hint.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return helpRequested{fs}
	}
	hint := fmt.Sprintf(" (see %s --help)", fs.Name())
	if err != nil {
		msg := err.Error()
		if m := reUndefined.FindStringSubmatch(msg); m != nil {
			return bad("unknown flag --%s%s", m[1], hint)
		}
		if m := reBadValue.FindStringSubmatch(msg); m != nil {
			if f := fs.Lookup(m[2]); f != nil && isInt(f) {
				return bad("--%s: got %s, want a whole number%s%s", m[2], m[1], intUnits[m[2]], hint)
			}
			return bad("--%s: invalid value %s: %s%s", m[2], m[1], m[3], hint)
		}
		if m := reNoArg.FindStringSubmatch(msg); m != nil {
			return bad("--%s: needs a value%s", m[1], hint)
		}
		return bad("%s%s", msg, hint)
	}
	if fs.NArg() > 0 && !strings.HasPrefix(fs.Name(), "report") {
		if f := boolBefore(fs, args); f != "" {
			return bad("--%s takes its value after an equals sign: --%s=%s, not --%s %s%s", f, f, fs.Arg(0), f, fs.Arg(0), hint)
		}
		return bad("%s: unexpected argument %q%s", fs.Name(), fs.Arg(0), hint)
	}
	return nil
}

// intUnits says what an integer flag counts, for the message that refuses
// a value that is not a whole number.
var intUnits = map[string]string{
	"rate":   " of requests per second",
	"slow":   " of long downloads",
	"repeat": " of runs per scenario",
}

func isInt(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(int)
	return ok
}

// boolBefore is the name of the true|false flag that the first stray
// argument follows, when that argument reads as its value (--keepalive
// true: Go's flag package takes a bool flag's value only after "="), or "".
func boolBefore(fs *flag.FlagSet, args []string) string {
	i := len(args) - fs.NArg() - 1
	if i < 0 || !strings.HasPrefix(args[i], "-") || strings.Contains(args[i], "=") {
		return ""
	}
	f := fs.Lookup(strings.TrimLeft(args[i], "-"))
	if f == nil || !isBool(f) {
		return ""
	}
	if _, err := strconv.ParseBool(fs.Arg(0)); err != nil {
		return ""
	}
	return f.Name
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
