package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

var compareUsage = fmt.Sprintf(`Usage: nginx-upgrade-harness compare [--procedure NAME …] [flags]

Runs upgrade procedures side by side: each in a fresh container from the
same starting state, under the same load, once with the good new build
(--to) and once with a build that cannot start (--broken). It measures
while the procedure runs and for an audit window after, reads what the
procedure left (masters, serving binary, nginx.pid, whether nginx serves)
and writes one report (report.json, report.md, report.html) with a row per
procedure and build, plus a directory per row with the records, the
process table before and after, and the procedure's own output.

PROCEDURE is one of (the registry of harness/procedure):
%s
Default: %s.

Without --expect, compare is a measurement: exit 0 when every procedure
ran (whatever it did), 2 bad input or some procedure could not be run.

With --expect, every row is judged, and compare is a gate:
  --expect default   the good build must end upgraded with 0 dropped and no
                     stall over --max-stall; the broken build kept-old with
                     0 dropped and a non-zero exit from the procedure.
  --expect BUILD=OUTCOME[|OUTCOME…][+drops][+exit0][,…]
                     replaces the default for the builds it names, e.g.
                     good=restarted+drops (a packager who accepts a restart
                     and what it drops), broken=kept-old+exit0. OUTCOME is
                     upgraded, kept-old, restarted, down or two-masters.
A row that misses is fail with its reasons; a row whose premises did not
hold (the load kept its rate, every record complete) is error; under
--repeat N a row whose outcome varies is fail (flaky). Exit codes then
follow run: 0 every row passed, 1 a row failed, 2 bad input, 3 a row's
measurement is invalid (error) — retry it, never read it as a pass.

--init systemd runs script: and cmd: procedures with systemd as PID 1 and
nginx started by nginx.service (Debian's, or --unit FILE), as scripts that
talk to their init expect (systemctl kill --signal=SIGUSR2 nginx.service,
systemctl show -p PIDFile nginx.service). --repeat N runs each procedure
with each build N times and says per row how many runs ended in each
outcome; a script is told its run as NGINX_UPGRADE_RUN.

Examples:
  nginx-upgrade-harness compare
  nginx-upgrade-harness compare --procedure manual --procedure script:./upgrade.sh
  nginx-upgrade-harness compare --procedure 'cmd:"/usr/sbin/service" nginx upgrade' --procedure-timeout 30s
  nginx-upgrade-harness compare --procedure script:./upgrade.sh --expect default --junit junit.xml
  nginx-upgrade-harness compare --procedure script:./nginx-upgrade --init systemd --unit ./nginx.service --expect default
  nginx-upgrade-harness compare --procedure script:./racy.sh --repeat 5 --expect default
`, procedureLines(), strings.Join(procedure.Defaults(), ", "))

func compareCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var f runFlags
	var procs multiFlag
	var timeout, audit time.Duration
	fs := newFlagSet("compare", compareUsage, stderr)
	fs.Var(&procs, "procedure", "`PROCEDURE` to compare, repeatable (default: "+strings.Join(procedure.Defaults(), ", ")+")")
	fs.DurationVar(&timeout, "procedure-timeout", procedure.DefaultTimeout, "how long a procedure may run before it is killed (a `DURATION`)")
	fs.DurationVar(&audit, "audit", 3*time.Second, "how long the load goes on after a procedure ended (a `DURATION`)")
	var expect, junit, init, unit string
	var repeat int
	fs.StringVar(&expect, "expect", "", "judge every row: `default`, or BUILD=OUTCOME[|OUTCOME][+drops][+exit0][,…] (see above); without it compare only measures")
	fs.StringVar(&junit, "junit", "", "with --expect: also write a JUnit XML `FILE`, a test case per procedure and build")
	fs.StringVar(&init, "init", "", "run script: and cmd: procedures under `INIT`: docker-init (the default) or systemd")
	fs.StringVar(&unit, "unit", "", "with --init systemd: the nginx.service `FILE` nginx runs as (default: the one Debian's package ships)")
	fs.IntVar(&repeat, "repeat", 1, "run each procedure with each build `N` times (a racy procedure's outcomes, counted per row)")
	f.register(fs, "the good new `BUILD`",
		"a new `BUILD` that cannot start with the configuration",
		"the nginx.conf under test, a `FILE` (default: the harness's own, docs/builds.md)",
		"`N` long downloads in flight when the procedure starts",
		"how the load reaches nginx, `auto|netns|agent|host` (see run --help)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if timeout <= 0 {
		return bad("--procedure-timeout: got %s, want more than 0", timeout)
	}
	if audit < 0 {
		return bad("--audit: got %s, want 0 or more", audit)
	}
	specs := []string(procs)
	if len(specs) == 0 {
		specs = procedure.Defaults()
	}
	if repeat < 1 {
		return bad("--repeat: got %d, want 1 or more", repeat)
	}
	c := scenarios.Compare{Timeout: timeout, Audit: audit, Repeat: repeat}
	if expect != "" {
		e, err := reports.ParseCompareExpect(expect)
		if err != nil {
			return bad("%v", err)
		}
		c.Expect = e
	} else if junit != "" {
		return bad("--junit goes with --expect: without it compare has no verdict to write")
	}
	if err := checkJUnitDir(junit, f.out); err != nil {
		return err
	}
	if unit != "" {
		if init != procedure.InitSystemd {
			return bad("--unit goes with --init systemd")
		}
		b, err := os.ReadFile(unit)
		if err != nil {
			return bad("--unit: %v", err)
		}
		c.Unit, c.UnitName = b, unit
	}
	for _, s := range specs {
		p, err := procedure.Parse(s)
		if err != nil {
			return bad("--procedure: %v", err)
		}
		if init != "" {
			if err := p.SetInit(init); err != nil {
				return bad("%v", err)
			}
		}
		c.Procedures = append(c.Procedures, p)
	}
	p, _, err := f.params()
	if err != nil {
		return err
	}
	ss, err := openSession(ctx, stderr, f.out, "compare-", f.insecure, func(pr scenarios.Progress) error {
		return resolveBuilds(ctx, &f, pr, &p.From, &p.To, &p.Broken)
	})
	if err != nil {
		return err
	}
	defer ss.close()
	out, pool, pr := ss.out, ss.pool, ss.con.Line
	if c.NeedsSystemd() {
		// The engine says what its cgroups are: it may run elsewhere.
		if err := nginx.CheckSystemdHost(ctx, pool); err != nil {
			return badInput{err}
		}
	}
	im, err := scenarios.PrepareCompareImages(ctx, pool, p, pr)
	if err != nil {
		return err
	}
	if c.NeedsSystemd() {
		if im, err = scenarios.PrepareSystemdImages(ctx, pool, im, pr); err != nil {
			return err
		}
	}
	if err := scenarios.CheckConfig(ctx, pool, im, p); err != nil {
		return badInput{err}
	}
	r, err := scenarios.RunCompare(ctx, pool, c, p, im, out, pr)
	if err != nil {
		return err
	}
	printCompare(stderr, r)
	if err := ss.done(ctx); err != nil {
		return err
	}
	if c.Expect != nil {
		if junit != "" {
			if err := writeFileWith(junit, func(w io.Writer) error { return reports.WriteCompareJUnit(w, r) }); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "junit: %s\n", junit)
		}
		return verdictExit(r.Verdict)
	}
	var failed []string
	for _, row := range r.Procedures {
		if row.Outcome == reports.OutcomeFailed {
			failed = append(failed, row.Name+"/"+row.Build)
		}
	}
	if want := len(c.Procedures) * 2 * repeat; len(r.Procedures) < want {
		return fmt.Errorf("only %d of %d procedure runs were recorded", len(r.Procedures), want)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not run: %s (see report.md)", strings.Join(failed, ", "))
	}
	return nil
}

func printCompare(w io.Writer, r *reports.CompareReport) {
	rows := [][]string{{"PROCEDURE", "BUILD", "INIT", "OUTCOME", "DROPPED", "REQUESTS", "FAILED", "DURATION", "EXIT", "FINAL"}}
	var notes [][]string
	for _, p := range r.Procedures {
		name := p.Name
		if p.Repeat > 0 {
			name = fmt.Sprintf("%s #%d", p.Name, p.Repeat)
		}
		rows = append(rows, []string{name, p.Build, p.Init, p.Outcome, fmt.Sprint(p.Dropped), fmt.Sprint(p.Requests.Total),
			fmt.Sprint(p.Requests.Failed), fmt.Sprintf("%.0fms", p.DurationMs), fmt.Sprint(p.ExitCode),
			fmt.Sprintf("%d master(s), %s binary, pid file %d, serving %t", p.Final.Masters, p.Final.ServingBinary, p.Final.PIDFilePID, p.Final.Serving)})
		var n []string
		if p.Error != "" {
			n = append(n, "error: "+p.Error)
		}
		if v := p.Final.Systemd; v != nil {
			n = append(n, fmt.Sprintf("systemd: %s", v))
		}
		for _, wr := range p.Final.Wrong {
			n = append(n, "wrong: "+wr)
		}
		if p.Judged != "" {
			n = append(n, fmt.Sprintf("expected %s: %s", p.Expected, strings.ToUpper(p.Judged)))
			n = append(n, p.JudgedReasons...)
		}
		notes = append(notes, n)
	}
	printRows(w, rows, notes)
	if len(r.Summary) > 0 {
		rows := [][]string{{"PROCEDURE", "BUILD", "RUNS", "VERDICT", "OUTCOMES"}}
		var notes [][]string
		for _, s := range r.Summary {
			v := strings.ToUpper(s.Verdict)
			if v == "" {
				v = "—"
			}
			rows = append(rows, []string{s.Procedure, s.Build, fmt.Sprint(s.Runs), v, s.OutcomeWords()})
			notes = append(notes, s.Reasons)
		}
		printRows(w, rows, notes)
	}
	if r.Expect != nil {
		fmt.Fprintf(w, "\nverdict: %s (%s; --expect %s)\n", strings.ToUpper(r.Verdict), reports.CompareVerdictLine(r), r.Expect.Spec)
	}
}

// procedureLines is the registry's help, indented for the usage text.
func procedureLines() string {
	var b strings.Builder
	for _, l := range procedure.Help() {
		b.WriteString("  " + l + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// writeFileWith writes path with write, whole or not at all.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("--junit: %w", err)
	}
	return f.Close()
}
