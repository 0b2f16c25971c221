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
	"sort"
	"strings"
)

// Exit codes (the CLI contract).
const (
	exitPass     = 0 // every scenario met its expectation
	exitFail     = 1 // some scenario did not
	exitBadInput = 2 // bad input, or the harness could not run
)

// errFailed marks a run that worked but whose verdicts were not all met.
var errFailed = errors.New("some scenario did not meet its expectation")

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

func commands() map[string]command {
	return map[string]command{
		"run":     {"run upgrade scenarios under load and write a report", runUsage, runCmd},
		"compare": {"run upgrade procedures side by side with a good and a broken build", compareUsage, compareCmd},
		"report":  {"re-render report.json, report.md and report.html from a run directory", reportUsage, reportCmd},
		"prune":   {"remove containers the harness left behind (by label)", pruneUsage, pruneCmd},
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
	fmt.Fprintf(w, "\nRun 'nginx-upgrade-harness COMMAND --help' for a command's flags.\n")
	fmt.Fprintf(w, "Exit codes: 0 every scenario met its expectation, 1 some did not, 2 bad input or the harness could not run.\n")
}

func main() { os.Exit(realMain(os.Args[1:], os.Stderr)) }

func realMain(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitPass
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nginx-upgrade-harness: unknown command %q (want run, compare, report or prune)\n", args[0])
		return exitBadInput
	}
	// The first Ctrl-C (or SIGTERM) cancels: the load stops, containers are
	// removed and the report of what was measured is still written. A
	// second one exits at once (see runInterruptible).
	return runInterruptible(stderr, func(ctx context.Context) int {
		return exitCode(cmd.run(ctx, args[1:], stderr), stderr)
	})
}

// exitCode maps a command's error to the exit code, printing its cause.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitPass
	case errors.Is(err, flag.ErrHelp):
		return exitPass
	case errors.Is(err, errFailed):
		return exitFail
	default:
		fmt.Fprintf(stderr, "nginx-upgrade-harness: %s\n", oneLine(err.Error()))
		return exitBadInput
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlagSet makes a flag set that prints its usage text on --help.
func newFlagSet(name, text string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, text)
		fmt.Fprintf(stderr, "\nFlags:\n")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags turns a flag error into a one-line bad input.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return flag.ErrHelp
	}
	if err != nil {
		return bad("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 && fs.Name() != "report" {
		return bad("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
