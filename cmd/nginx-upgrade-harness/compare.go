package main

import (
	"context"
	"fmt"
	"io"
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

Exit codes: 0 every procedure ran (whatever it did: compare has no
expectation of its own), 2 bad input or some procedure could not be run.

Examples:
  nginx-upgrade-harness compare
  nginx-upgrade-harness compare --procedure manual --procedure script:./upgrade.sh
  nginx-upgrade-harness compare --procedure 'cmd:"/usr/sbin/service" nginx upgrade' --procedure-timeout 30s
`, procedureLines(), strings.Join(procedure.Defaults(), ", "))

func compareCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var f runFlags
	var procs multiFlag
	var timeout, audit time.Duration
	fs := newFlagSet("compare", compareUsage, stderr)
	fs.Var(&procs, "procedure", "`PROCEDURE` to compare, repeatable (default: "+strings.Join(procedure.Defaults(), ", ")+")")
	fs.DurationVar(&timeout, "procedure-timeout", procedure.DefaultTimeout, "how long a procedure may run before it is killed (a `DURATION`)")
	fs.DurationVar(&audit, "audit", 3*time.Second, "how long the load goes on after a procedure ended (a `DURATION`)")
	f.register(fs, "the good new `BUILD`",
		"a new `BUILD` that cannot start with the configuration",
		"the nginx.conf under test, a `FILE` (default: the harness's own, docs/builds.md)",
		"`N` long downloads in flight when the procedure starts",
		"how the load reaches nginx, `auto|netns|host` (see run --help)")
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
	c := scenarios.Compare{Timeout: timeout, Audit: audit}
	for _, s := range specs {
		p, err := procedure.Parse(s)
		if err != nil {
			return bad("--procedure: %v", err)
		}
		c.Procedures = append(c.Procedures, p)
	}
	p, _, err := f.params()
	if err != nil {
		return err
	}
	ss, err := openSession(ctx, stderr, f.out, "compare-")
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
	if err := resolveBuilds(ctx, f.lock, pr, &p.From, &p.To, &p.Broken); err != nil {
		return err
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
	var failed []string
	for _, row := range r.Procedures {
		if row.Outcome == reports.OutcomeFailed {
			failed = append(failed, row.Name+"/"+row.Build)
		}
	}
	if want := len(c.Procedures) * 2; len(r.Procedures) < want {
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
		rows = append(rows, []string{p.Name, p.Build, p.Init, p.Outcome, fmt.Sprint(p.Dropped), fmt.Sprint(p.Requests.Total),
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
		notes = append(notes, n)
	}
	printRows(w, rows, notes)
}

// procedureLines is the registry's help, indented for the usage text.
func procedureLines() string {
	var b strings.Builder
	for _, l := range procedure.Help() {
		b.WriteString("  " + l + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
