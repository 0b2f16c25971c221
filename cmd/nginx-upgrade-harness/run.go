package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/shlex"
	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

const runUsage = `Usage: nginx-upgrade-harness run [flags]

Runs upgrade scenarios, each in its own container under sustained load,
and writes report.json, report.md and report.html to the output directory.
With no flags it runs the default suite (upgrade, rollback, term-fallback,
kill-fallback, broken-build) against the default builds.

BUILD is one of:
  debian:VERSION                 Debian's nginx package at VERSION
  source:VERSION[:FLAGS]         upstream tarball (or a local .tar.gz) built with configure FLAGS
  binary:PATH                    a local nginx executable
  image:REF                      /usr/sbin/nginx from a local image

Examples:
  nginx-upgrade-harness run
  nginx-upgrade-harness run --scenario upgrade --from debian:1.22.1-9+deb12u9 --to source:1.26.3
  nginx-upgrade-harness run --scenario upgrade --config my.conf --rate 800 --method POST --keepalive=false
  nginx-upgrade-harness run --nginx-cmd "nginx -g 'daemon off;'"
  nginx-upgrade-harness run --scenario upgrade --traffic http2 --traffic websocket

Traffic kinds (--traffic, repeatable; run --list describes them):
  http1 (default), http1-keepalive, http2, websocket, proxy, upload.
A kind the nginx.conf cannot serve is named before any scenario starts
(exit 2). The default nginx.conf serves them all.

Exit codes: 0 every scenario met its expectation; 1 a scenario ran and did
not; 2 bad input or the harness could not start; 3 the run finished but a
measurement is invalid (an error verdict: a premise did not hold) — retry
it on a quieter machine, never read it as a pass.
`

type runFlags struct {
	scenarios multiFlag
	faults    multiFlag
	list      bool
	from, to  string
	broken    string
	config    string
	nginxCmd  string
	rate      int
	method    string
	keepalive bool
	slow      int
	out       string
	loadPath  string
	maxStall  time.Duration
	traffic   multiFlag
}

// register declares the flags run and compare share; the texts that differ
// between them are given.
func (f *runFlags) register(fs *flag.FlagSet, toHelp, brokenHelp, configHelp, slowHelp, loadPathHelp string) {
	fs.StringVar(&f.from, "from", harness.DefaultFrom, "the running (old) build")
	fs.StringVar(&f.to, "to", harness.DefaultTo, toHelp)
	fs.StringVar(&f.broken, "broken", scenarios.DefaultBroken, brokenHelp)
	fs.StringVar(&f.config, "config", "", configHelp)
	fs.StringVar(&f.nginxCmd, "nginx-cmd", harness.DefaultBinary, "the command line that starts nginx in the container, daemonised or in the foreground, e.g. \"nginx -g 'daemon off;'\" (split as a shell would, run without one)")
	fs.DurationVar(&f.maxStall, "max-stall", scenarios.DefaultMaxStall, "the longest a client may wait on a graceful path (a request, or a gap without any response); 0: no limit")
	fs.IntVar(&f.rate, "rate", scenarios.DefaultLoad.Rate, "requests per second, constant")
	fs.StringVar(&f.method, "method", scenarios.DefaultLoad.Method, "GET or POST")
	fs.BoolVar(&f.keepalive, "keepalive", scenarios.DefaultLoad.KeepAlive, "reuse connections (true) or a new connection per request (false)")
	fs.IntVar(&f.slow, "slow", scenarios.DefaultLoad.Slow, slowHelp)
	fs.StringVar(&f.out, "out", "", "report directory (default: a new directory under ./reports-out/)")
	fs.StringVar(&f.loadPath, "load-path", scenarios.LoadPathAuto, loadPathHelp)
	fs.Var(&f.traffic, "traffic", "traffic KIND, repeatable: several run together, --rate shared between the request kinds, each accounted on its own (default: http1, or http1-keepalive with --keepalive=true; known: "+
		strings.Join(scenarios.TrafficNames(), ", ")+"; run --list says what each is)")
}

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var f runFlags
	fs := newFlagSet("run", runUsage, stderr)
	fs.Var(&f.scenarios, "scenario", "scenario to run, repeatable (default: the default suite; known: "+strings.Join(scenarios.Names(), ", ")+")")
	fs.Var(&f.faults, "fault", "fault NAME[@STEP] to strike the chosen scenarios with, repeatable (without --scenario: every graceful scenario it applies to; run --list names them)")
	fs.BoolVar(&f.list, "list", false, "list the scenarios, faults and procedures, a line each, and exit")
	f.register(fs, "the new build",
		"a new build that cannot start with the configuration (broken-build scenario)",
		"the nginx.conf under test (default: the harness's own, see README); must listen on 8080 and serve /slow/big.bin for --slow",
		"long downloads in flight across the transitions",
		"how the load reaches nginx: netns (from inside the container's network namespace, no proxy; needs root), host (the port published on 127.0.0.1, through Docker's port proxy), auto (netns when possible)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.list {
		printList(os.Stdout)
		return nil
	}
	p, scs, err := f.params()
	if err != nil {
		return err
	}
	ss, err := openSession(ctx, stderr, f.out, "")
	if err != nil {
		return err
	}
	defer ss.close()
	out, pool, pr := ss.out, ss.pool, ss.con.Line
	p.Live = ss.con.Live()
	im, err := scenarios.PrepareImages(ctx, pool, scs, p, pr)
	if err != nil {
		return err
	}
	if err := scenarios.CheckConfig(ctx, pool, im, p); err != nil {
		return badInput{err}
	}
	r, err := scenarios.RunSuite(ctx, pool, scs, p, im, out, pr)
	if err != nil {
		return err
	}
	printSummary(stderr, r)
	if err := ss.done(ctx); err != nil {
		return err
	}
	return verdictErr(r)
}

// session is what run and compare share: the report directory, the
// console, and the Docker pool, with the leftovers of dead runs swept first
// and this process's own containers swept at the end.
type session struct {
	out    string
	con    *console
	pool   *dockertest.Pool
	stderr io.Writer
}

func openSession(ctx context.Context, stderr io.Writer, out, prefix string) (*session, error) {
	if out == "" {
		out = filepath.Join("reports-out", prefix+time.Now().Format("2006-01-02T15-04-05"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, bad("--out %s: %v", out, err)
	}
	ss := &session{out: out, con: newConsole(stderr), stderr: stderr}
	pool, err := harness.Connect()
	if err != nil {
		return nil, err
	}
	ss.pool = pool
	if n, err := harness.Prune(ctx, pool); err == nil && n > 0 {
		ss.con.Line("removed %d container(s) left behind by an earlier run", n)
	}
	return ss, nil
}

func (ss *session) close() { harness.PruneOwn(context.Background(), ss.pool) }

// done names the report and turns an interruption into the run's error.
func (ss *session) done(ctx context.Context) error {
	fmt.Fprintf(ss.stderr, "report: %s (also report.json, report.html)\n", filepath.Join(ss.out, "report.md"))
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the report holds what was measured until then")
	}
	return nil
}

func (f *runFlags) params() (scenarios.Params, []scenarios.Scenario, error) {
	var p scenarios.Params
	scs, err := scenarios.Lookup(f.scenarios)
	if err != nil {
		return p, nil, badInput{err}
	}
	if len(f.faults) > 0 {
		var chosen []fault.Chosen
		for _, spec := range f.faults {
			c, err := fault.Parse(spec)
			if err != nil {
				return p, nil, bad("--fault: %v", err)
			}
			if err := fault.Available(c.Fault); err != nil {
				return p, nil, bad("--fault %s: %v", c.Name(), err)
			}
			chosen = append(chosen, c)
		}
		var faulted []scenarios.Scenario
		for _, sc := range scs {
			fsc, err := scenarios.WithFaults(sc, chosen)
			if err != nil {
				if len(f.scenarios) == 0 {
					continue // the default suite: only where the faults apply
				}
				return p, nil, bad("--fault: %v", err)
			}
			faulted = append(faulted, fsc)
		}
		if len(faulted) == 0 {
			return p, nil, bad("--fault %s: applies to no scenario of the default suite", strings.Join(f.faults, " "))
		}
		scs = faulted
	}
	for _, b := range []struct {
		name, spec string
		dst        *harness.Build
	}{{"--from", f.from, &p.From}, {"--to", f.to, &p.To}, {"--broken", f.broken, &p.Broken}} {
		if *b.dst, err = harness.ParseBuild(b.spec); err != nil {
			return p, nil, bad("%s: %v", b.name, err)
		}
	}
	if f.config != "" {
		conf, err := os.ReadFile(f.config)
		if err != nil {
			return p, nil, bad("--config: %v", err)
		}
		p.Config = conf
	}
	// Split as a shell would (quotes kept together: -g 'daemon off;'), but
	// run without one.
	if p.Command, err = shlex.Split(f.nginxCmd); err != nil || len(p.Command) == 0 {
		return p, nil, bad("--nginx-cmd %q: want a command line that starts nginx, e.g. \"nginx -g 'daemon off;'\"", f.nginxCmd)
	}
	if f.maxStall < 0 {
		return p, nil, bad("--max-stall %s: must not be negative (0: no limit)", f.maxStall)
	}
	p.MaxStall = f.maxStall
	if f.maxStall == 0 {
		p.MaxStall = -1
	}
	switch f.loadPath {
	case scenarios.LoadPathAuto, scenarios.LoadPathNetns, scenarios.LoadPathHost:
		p.LoadPath = f.loadPath
	default:
		return p, nil, bad("--load-path %q: want auto, netns or host", f.loadPath)
	}
	p.Load = scenarios.Load{Rate: f.rate, Method: strings.ToUpper(f.method), KeepAlive: f.keepalive, Slow: f.slow}
	if p.Load.Traffic, err = scenarios.ParseTraffic(f.traffic); err != nil {
		return p, nil, bad("--traffic: %v", err)
	}
	if err := p.Load.Validate(); err != nil {
		return p, nil, bad("%v", err)
	}
	return p, scs, nil
}

// verdictErr turns the verdicts into the run's error: any fail is a fail
// (exit 1: retrying will not help), else any error is an invalid
// measurement (exit 3: retry on a quieter machine), else nil.
func verdictErr(r *reports.Report) error {
	if len(r.Scenarios) == 0 {
		return errInvalid
	}
	invalid := false
	for _, s := range r.Scenarios {
		switch s.Verdict {
		case reports.VerdictPass:
		case reports.VerdictFail:
			return errFailed
		default:
			invalid = true
		}
	}
	if invalid {
		return errInvalid
	}
	return nil
}

func printSummary(w io.Writer, r *reports.Report) {
	fmt.Fprintf(w, "\n%-16s %-11s %-8s %8s %9s %7s %9s  %s\n", "SCENARIO", "EXPECT", "VERDICT", "DROPPED", "REQUESTS", "FAILED", "SLOW CUT", "STEPS")
	for _, s := range r.Scenarios {
		ok := 0 // steps whose outcome is what the scenario expects of them
		for _, st := range s.Steps {
			if st.Verified == (st.Expected != "fail") {
				ok++
			}
		}
		fmt.Fprintf(w, "%-16s %-11s %-8s %8d %9d %7d %9d  %d/%d as expected\n", s.Name, s.Expect, strings.ToUpper(s.Verdict),
			s.Dropped, s.Requests.Total, s.Requests.Failed, s.Slow.Cut, ok, len(s.Steps))
		for _, reason := range s.Reasons {
			fmt.Fprintf(w, "    - %s\n", reason)
		}
	}
}

// console prints progress on stderr: a time-stamped line per step, phase and
// load summary — plain lines, the same in a terminal and in a CI log — and,
// on a terminal only, a status line of the load redrawn in place.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	start    time.Time
	terminal bool
	drawn    bool // a status line is on screen
}

func newConsole(w io.Writer) *console {
	c := &console{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			c.terminal = true
		}
	}
	return c
}

// Line prints one progress line (it replaces the status line, if any).
func (c *console) Line(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drawn {
		fmt.Fprint(c.w, "\r\033[K")
		c.drawn = false
	}
	fmt.Fprintf(c.w, "[%6.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

// Live redraws the status line; nil when stderr is not a terminal.
func (c *console) Live() func(string) {
	if !c.terminal {
		return nil
	}
	return func(line string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		fmt.Fprintf(c.w, "\r\033[K[%6.1fs] %s", time.Since(c.start).Seconds(), line)
		c.drawn = true
	}
}
