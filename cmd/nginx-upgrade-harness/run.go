package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/shlex"
	"github.com/ory/dockertest/v3"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

const runUsage = `Usage: nginx-upgrade-harness run [flags]

Runs upgrade scenarios, each in its own container under sustained load,
and writes report.json, report.md and report.html to the output directory.
With no flags it runs the default suite — every scenario of the catalogue
(run --list names them) — against the default builds.

BUILD is one of (suites and channels are resolved when the run starts,
and the exact version and sha256 each resolved to are in the report):
  debian:SUITE                   the nginx a Debian suite serves today: bookworm,
                                 bookworm-security, trixie, … (default: --from
                                 debian:bookworm --to debian:bookworm-security)
  debian:VERSION                 Debian's nginx package at VERSION (from the
                                 cache once the archive has withdrawn it)
  source:stable|mainline[:FLAGS] the newest upstream tarball of that branch the
                                 Debian mirror serves, built with configure FLAGS
  source:VERSION[:FLAGS]         upstream tarball (or a local .tar.gz) built with configure FLAGS
  binary:PATH                    a local nginx executable
  image:REF                      /usr/sbin/nginx from a local image
With --lock FILE the first run writes what each spec resolved to (spec →
version → sha256) and later runs obey it: the very same binaries, from the
cache when the archive no longer serves them.

Examples:
  nginx-upgrade-harness run
  nginx-upgrade-harness run --scenario upgrade --to source:stable
  nginx-upgrade-harness run --lock nuh.lock   # CI: the same binaries on every re-run
  nginx-upgrade-harness run --scenario upgrade --config my.conf --rate 800 --method POST --keepalive=false
  nginx-upgrade-harness run --nginx-cmd "nginx -g 'daemon off;'"
  nginx-upgrade-harness run --config-dir /etc/nginx --mount /var/www:/var/www --add-host app.internal:127.0.0.3
  nginx-upgrade-harness run --repeat 5 --keepalive=true --baseline debian:bookworm --junit junit.xml

With --repeat N each scenario runs N times; with --baseline BUILD the same
scenarios, traffic and repeats also run against the baseline pair --from →
BUILD (interleaved with the candidate's), and the gate becomes "the
candidate --from → --to drops no more than the baseline": a one-sided exact
test on drops per 10,000 requests at α = 0.05, the counts divided by how
much more the runs vary than chance (see docs/baseline.md). Records:
DIR/candidate/K/SCENARIO/ and DIR/baseline/K/SCENARIO/; report.json's
top-level verdict is the gate.
  nginx-upgrade-harness run --scenario upgrade --traffic http2 --traffic websocket
  nginx-upgrade-harness run --scenario upgrade --targets targets.txt --traffic http1-keepalive --traffic http2

Traffic kinds (--traffic, repeatable; run --list describes them):
  http1 (default), http1-keepalive, http2, websocket, proxy, upload.
A kind the nginx.conf cannot serve is named before any scenario starts
(exit 2). The default nginx.conf serves them all.

Known losses: a loss nginx and the kernel are known to cause on a path
(reuseport's queue reset in a reload down to fewer workers, the keep-alive
close race) passes when it is all a scenario lost, and is reported beside
the verdict ("PASS (known loss)", with its count, class, phase, why and
remedy); a loss of another class, in another phase, or above its bound
fails as any. --strict fails them too. run --list names them.

Exit codes: 0 every scenario met its expectation; 1 a scenario ran and did
not; 2 bad input or the harness could not start; 3 the run finished but a
measurement is invalid (an error verdict: a premise did not hold) — retry
it on a quieter machine, never read it as a pass.
`

type runFlags struct {
	scenarios multiFlag
	faults    multiFlag
	list      bool
	markdown  bool // with list: the reference page
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
	lock      string // --lock FILE: the resolution of the builds, written or obeyed
	insecure  bool   // --insecure-archive: the archive's signatures not checked
	archive   string // --archive URI: where the Debian archive is

	repeat   int    // run only
	strict   bool   // run only: known losses fail too
	baseline string // run only
	junit    string // run only
	traffic  multiFlag

	// The user's own site (run only).
	configDir     string
	serverLog     bool
	mounts        multiFlag
	addHosts      multiFlag
	upstreamCmd   string
	targets       string // run only: --targets FILE
	targetsFormat string
	ca            string
}

// register declares the flags run and compare share; the texts that differ
// between them are given.
func (f *runFlags) register(fs *flag.FlagSet, toHelp, brokenHelp, configHelp, slowHelp, loadPathHelp string) {
	fs.StringVar(&f.from, "from", image.DefaultFrom, "the running (old) `BUILD`")
	fs.StringVar(&f.to, "to", image.DefaultTo, toHelp)
	fs.StringVar(&f.broken, "broken", scenarios.DefaultBroken, brokenHelp)
	fs.StringVar(&f.config, "config", "", configHelp)
	fs.StringVar(&f.nginxCmd, "nginx-cmd", harness.DefaultBinary, "the `COMMAND` line that starts nginx in the container, daemonised or in the foreground, e.g. \"nginx -g 'daemon off;'\" (split as a shell would, run without one)")
	fs.DurationVar(&f.maxStall, "max-stall", scenarios.DefaultMaxStall, "the longest a client may wait on a graceful path (a request, or a gap without any response); 0: no limit")
	fs.IntVar(&f.rate, "rate", scenarios.DefaultLoad.Rate, "requests per second, constant (`N`); a phase below 80% of it is a failed premise: error, unless something was lost "+
		"(measured on 2 cores, GET keep-alive, while upgrade's steps ran: 4000 and 6000 held in every phase; 8000 starved the Docker exec of a step; 12000 fell to 4850)")
	fs.StringVar(&f.method, "method", scenarios.DefaultLoad.Method, "`GET|POST`")
	fs.BoolVar(&f.keepalive, "keepalive", scenarios.DefaultLoad.KeepAlive, "reuse connections (true) or a new connection per request (false)")
	fs.IntVar(&f.slow, "slow", scenarios.DefaultLoad.Slow, slowHelp)
	fs.StringVar(&f.out, "out", "", "report `DIR` (default: a new directory under ./reports-out/)")
	fs.StringVar(&f.loadPath, "load-path", scenarios.LoadPathAuto, loadPathHelp)
	fs.StringVar(&f.lock, "lock", "", "a lock `FILE`: written with what each build resolved to (spec → exact version → sha256) when absent, obeyed when present, so a later run uses the very same binaries")
	fs.StringVar(&f.archive, "archive", "", "the Debian archive the builds and images come from, the `URI` of a mirror's main archive (http://HOST/debian; its security archive: the same path with -security, or "+image.ArchiveSecurityEnv+"). "+
		"Default: "+image.ArchiveEnv+", else this host's Debian apt sources")
	fs.BoolVar(&f.insecure, "insecure-archive", false, "take the Debian suites' InRelease files without checking their signatures against Debian's archive keys, which the tool ships; every report then says so at the top. "+
		"Without it, a suite a build needs whose signature is bad or by another key is exit 2, with no fallback on the cache or --lock")
	fs.Var(&f.traffic, "traffic", "traffic KIND, repeatable: several run together, --rate shared between the request kinds, each accounted on its own (default: http1, or http1-keepalive with --keepalive=true; known: "+
		strings.Join(scenarios.TrafficNames(), ", ")+"; run --list says what each is)")
}

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var f runFlags
	fs := newFlagSet("run", runUsage, stderr)
	fs.Var(&f.scenarios, "scenario", "scenario `NAME` to run, repeatable (default: the default suite; known: "+strings.Join(scenarios.Names(), ", ")+")")
	fs.Var(&f.faults, "fault", "fault `NAME[@STEP]` to strike the chosen scenarios with, repeatable (without --scenario: every graceful scenario it applies to; run --list names them)")
	fs.BoolVar(&f.strict, "strict", false, "fail the known losses too (reuseport's queue reset, the keep-alive close race: run --list names them): zero drops whatever the cause")
	fs.BoolVar(&f.list, "list", false, "list the scenarios, faults and procedures, a line each, and exit")
	fs.BoolVar(&f.markdown, "markdown", false, "with --list: the reference page, docs/reference.md, as Markdown tables (make docs writes it)")
	f.register(fs, "the new `BUILD`",
		"a new `BUILD` that cannot start with the configuration (broken-build scenario)",
		"the nginx.conf under test, a `FILE` (default: the harness's own, docs/builds.md); must listen on 8080 and serve /slow/big.bin for --slow (a whole tree on its own ports: --config-dir)",
		"`N` long downloads in flight across the transitions",
		"how the load reaches nginx, `auto|netns|agent|host`: netns (from this process, inside the container's network namespace, no proxy; needs root and the engine's pid namespace), "+
			"agent (from a load agent: this tool's static binary in a helper container sharing nginx's network namespace, no proxy; needs only the engine — any user, pid namespace or remote engine), "+
			"host (the port published on the engine host's 127.0.0.1, through the engine's port proxy), auto (netns when possible, else agent when this binary is static, else host)")
	fs.IntVar(&f.repeat, "repeat", 1, "run each scenario `N` times; the report aggregates drops per 10,000 requests with a 95% confidence interval and the spread of stalls")
	fs.StringVar(&f.baseline, "baseline", "", "also run the baseline pair --from → `BUILD` (same scenarios, traffic, repeats); the gate: the candidate is not significantly worse")
	fs.StringVar(&f.configDir, "config-dir", "", "a configuration tree `DIR` (as /etc/nginx: nginx.conf, includes, certificates) placed at /etc/nginx in every container, unchanged; its listeners are read from nginx -T and published on 127.0.0.1 (docs/site.md)")
	fs.BoolVar(&f.serverLog, "server-log", false, "with --config-dir: add nginx's own record of every request (one include at the top of the http block, a JSON access log on a tmpfs, named in site.added), reconciled with the client's; without it the report says the second witness was absent")
	fs.Var(&f.mounts, "mount", "`SRC:DST` bind-mounted read-only into every container (document roots, certificates kept elsewhere), repeatable")
	fs.Var(&f.addHosts, "add-host", "`NAME:127.0.0.x` in the containers' /etc/hosts, repeatable: an upstream host name the configuration proxies to gets a stand-in backend there")
	fs.StringVar(&f.upstreamCmd, "upstream-cmd", "", "your own backend: a `COMMAND` line run in each container once nginx serves (split as a shell would, run without one; mount it with --mount), in place of the stand-in backends; its output and exit are kept in upstream.log")
	fs.StringVar(&f.junit, "junit", "", "also write a JUnit XML `FILE`: one test case per scenario and repeat (and per comparison with --baseline)")
	mf := registerMatrixFlags(fs)
	f.registerTargets(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if mf.active() {
		return runMatrix(ctx, stderr, fs, &f, mf, args)
	}
	if f.markdown && !f.list {
		return bad("--markdown goes with --list")
	}
	if f.list {
		if f.markdown {
			return writeReference(os.Stdout)
		}
		printList(os.Stdout)
		return nil
	}
	p, scs, err := f.params()
	if err != nil {
		return err
	}
	plan, pb, err := f.plan(p, scs)
	if err != nil {
		return err
	}
	return runPlanned(ctx, stderr, &f, p, pb, scs, plan, args)
}

// session is what run and compare share: the report directory, the
// console, and the Docker pool, with the leftovers of runs provably gone
// swept first, this run's reaper held throughout, and this run's own
// containers swept at the end. What needs no engine (before: the builds'
// resolution) is checked before Docker is reached.
type session struct {
	out    string
	con    *console
	pool   *dockertest.Pool
	lease  *harness.Lease
	stderr io.Writer
	// removeIfEmpty takes back the report directory this run made, when the
	// run stopped before writing anything in it.
	removeIfEmpty func()
}

// makeReportDir creates the report directory out (and its missing
// parents) and returns what removes the ones it created, if they are
// still empty: a run that stops before it starts (exit 2) leaves no empty
// directory behind, and a directory that holds anything is never touched.
func makeReportDir(out string) (removeIfEmpty func(), err error) {
	var made []string
	for d := filepath.Clean(out); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, bad("--out %s: %v", out, err)
	}
	return func() {
		for _, d := range made { // deepest first; os.Remove removes only an empty directory
			if os.Remove(d) != nil {
				return
			}
		}
	}, nil
}

func openSession(ctx context.Context, stderr io.Writer, out, prefix string, insecure bool, before func(scenarios.Progress) error) (*session, error) {
	if out == "" {
		out = filepath.Join("reports-out", prefix+time.Now().Format("2006-01-02T15-04-05"))
	}
	removeIfEmpty, err := makeReportDir(out)
	if err != nil {
		return nil, err
	}
	ss := &session{out: out, con: newConsole(stderr), stderr: stderr, removeIfEmpty: removeIfEmpty}
	sayInsecure(ss.con, insecure)
	reportDirOnExit(ctx, out)
	// What the run needs, checked before anything is built: a Debian
	// archive (named, reachable and signed: the builds' resolution), the
	// engine, and a way to the base image.
	if err := image.CheckArchive(); err != nil {
		// Neither the flag, the variable nor this host's apt sources name
		// the archive: Debian's own image on the engine may.
		pool, cerr := harness.Connect()
		if !errors.Is(err, image.ErrNoArchive) || cerr != nil {
			removeIfEmpty()
			return nil, bad("%v", err)
		}
		if err := image.UseEngineSources(ctx, pool); err != nil {
			removeIfEmpty()
			return nil, bad("%v", err)
		}
		ss.con.Line("the Debian archive: the apt sources inside the engine's debian:%s (no --archive, %s, nor apt sources on this host)", image.Release, image.ArchiveEnv)
	}
	if err := before(ss.con.Line); err != nil {
		return nil, err
	}
	pool, err := harness.Connect()
	if err != nil {
		removeIfEmpty()
		return nil, err
	}
	ss.pool = pool
	if n, err := harness.Prune(ctx, pool); err == nil && n > 0 {
		ss.con.Line("removed %d container(s) left behind by an earlier run", n)
	}
	ss.lease = holdReaper(ctx, pool, ss.con.Line)
	return ss, nil
}

// holdReaper starts this run's reaper on pool's engine; where none can be
// had it says why in one line, and the run's own clean-up on exit and
// interruption is then all there is.
func holdReaper(ctx context.Context, pool *dockertest.Pool, pr func(string, ...any)) *harness.Lease {
	lease, err := harness.HoldLease(ctx, pool, harness.LeaseLog(pr))
	if err != nil {
		pr("%s: run %s removes its containers itself on exit and interruption; after a hard kill, `nginx-upgrade-harness prune --run %s` does",
			oneLine(err.Error()), harness.RunID(), harness.RunID())
		return nil
	}
	return lease
}

// close removes what this process left (a scenario removes its own
// container; this is the safety net), under deadlines, and names on stderr
// what could not be removed.
func (ss *session) close() {
	defer ss.removeIfEmpty()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout/2)
	defer cancel()
	if _, err := harness.PruneOwn(ctx, ss.pool); err != nil {
		fmt.Fprintf(ss.stderr, "nginx-upgrade-harness: %s; remove them with `nginx-upgrade-harness prune --run %s`\n", oneLine(err.Error()), harness.RunID())
	}
	if err := ss.lease.Close(); err != nil {
		fmt.Fprintf(ss.stderr, "nginx-upgrade-harness: %s\n", oneLine(err.Error()))
	}
}

// done names the report and turns an interruption into the run's error.
func (ss *session) done(ctx context.Context) error {
	printReportPath(ss.stderr, ss.out, "also report.json, report.html")
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the report holds what was measured until then")
	}
	return nil
}

func (f *runFlags) params() (scenarios.Params, []scenarios.Scenario, error) {
	var p scenarios.Params
	// The heartbeat in nginx's container is this very program, when it is
	// a static build (`make build`); `go run`'s is not, and the run says so.
	if exe, err := os.Executable(); err == nil {
		p.Heartbeat = exe
	}
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
		if err := knownSteps(scs, chosen); err != nil {
			return p, nil, err
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
		dst        *image.Build
	}{{"--from", f.from, &p.From}, {"--to", f.to, &p.To}, {"--broken", f.broken, &p.Broken}} {
		if *b.dst, err = image.ParseBuild(b.spec); err != nil {
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
	if err := f.site(&p); err != nil {
		return p, nil, err
	}
	// Split as a shell would (quotes kept together: -g 'daemon off;'), but
	// run without one.
	if p.Command, err = shlex.Split(f.nginxCmd); err != nil || len(p.Command) == 0 {
		return p, nil, bad("--nginx-cmd: got %q, want a command line that starts nginx, e.g. \"nginx -g 'daemon off;'\"", f.nginxCmd)
	}
	if f.maxStall < 0 {
		return p, nil, bad("--max-stall: got %s, want 0 (no limit) or more", f.maxStall)
	}
	p.MaxStall = f.maxStall
	p.Strict = f.strict
	p.InsecureArchive = f.insecure
	if err := image.UseArchive(f.archive); err != nil {
		return p, nil, bad("--archive: %v", err)
	}
	if f.maxStall == 0 {
		p.MaxStall = -1
	}
	if !slices.Contains(scenarios.LoadPaths, f.loadPath) {
		return p, nil, bad("--load-path: got %q, want %s", f.loadPath, strings.Join(scenarios.LoadPaths, ", "))
	}
	p.LoadPath = f.loadPath
	p.Load = scenarios.Load{Rate: f.rate, Method: strings.ToUpper(f.method), KeepAlive: f.keepalive, Slow: f.slow}
	if p.Load.Traffic, err = scenarios.ParseTraffic(f.traffic); err != nil {
		return p, nil, bad("--traffic: %v", err)
	}
	if p.Load.Targets, err = f.readTargets(); err != nil {
		return p, nil, bad("%v", err)
	}
	if err := p.Load.Validate(); err != nil {
		return p, nil, bad("%v", err)
	}
	return p, scs, nil
}

// knownSteps refuses a fault whose @STEP no chosen graceful scenario has, so
// the message names the step rather than the suite it was tried on.
func knownSteps(scs []scenarios.Scenario, chosen []fault.Chosen) error {
	var steps []string
	for _, sc := range scs {
		if sc.Kind != "graceful" {
			continue
		}
		for _, m := range sc.Moves {
			if !slices.Contains(steps, m.Step.Name) {
				steps = append(steps, m.Step.Name)
			}
		}
	}
	for _, c := range chosen {
		if len(steps) > 0 && !slices.Contains(steps, c.Step) {
			return bad("--fault %s@%s: unknown step %q (the chosen scenarios' steps: %s)", c.Name(), c.Step, c.Step, strings.Join(steps, ", "))
		}
	}
	return nil
}

// verdictErr turns the verdicts into the run's error: any fail is a fail
// (exit 1: retrying will not help), else any error is an invalid
// measurement (exit 3: retry on a quieter machine), else nil.
func verdictErr(r *record.Report) error { return verdictExit(r.Verdict) }

// verdictExit is the run's error for an overall verdict v.
func verdictExit(v string) error {
	switch v {
	case record.VerdictPass:
		return nil
	case record.VerdictFail:
		return errFailed
	}
	return errInvalid
}

// site reads --config-dir, --mount and --add-host into p.Site.
func (f *runFlags) site(p *scenarios.Params) error {
	if f.configDir == "" {
		if len(f.mounts) > 0 || len(f.addHosts) > 0 || f.upstreamCmd != "" || f.serverLog {
			return bad("--mount, --add-host, --upstream-cmd and --server-log go with --config-dir DIR")
		}
		return nil
	}
	if f.config != "" {
		return bad("--config and --config-dir: give one (a tree's nginx.conf is DIR/nginx.conf)")
	}
	tree, err := nginx.ReadTree(f.configDir)
	if err != nil {
		return bad("--config-dir: %v", err)
	}
	s := &scenarios.Site{Tree: tree}
	if f.serverLog {
		if s.Tree, err = nginx.WithServerLog(tree); err != nil {
			return bad("%v", err)
		}
		s.ServerLog = true
	}
	for _, m := range f.mounts {
		mt, err := nginx.ParseMount(m)
		if err != nil {
			return bad("--mount %v", err)
		}
		s.Mounts = append(s.Mounts, mt)
	}
	for _, h := range f.addHosts {
		hl, err := scenarios.ParseAddHost(h)
		if err != nil {
			return bad("--add-host %v", err)
		}
		s.Hosts = append(s.Hosts, hl)
	}
	if f.upstreamCmd != "" {
		argv, err := shlex.Split(f.upstreamCmd)
		if err != nil || len(argv) == 0 {
			return bad("--upstream-cmd: got %q, want a command line, e.g. \"/srv/app/server --listen 127.0.0.3:9000\"", f.upstreamCmd)
		}
		s.UpstreamCmd = argv
	}
	p.Site = s
	return nil
}

// sayInsecure makes the console's first line say that the archive's
// signatures are not checked, when they are not.
func sayInsecure(con *console, insecure bool) {
	if insecure {
		con.Line("warning: %s", words.InsecureArchiveNote)
	}
}
