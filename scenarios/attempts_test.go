package scenarios_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// maxAttempts is the policy the suite tells CI users (docs/ci.md) and keeps
// itself: an error verdict — the measurement did not hold — is run again,
// at most twice, and a spec still error after that fails; a fail is never
// run again. Ginkgo's FlakeAttempts would retry a fail too, hence a loop of
// the spec's own: upgradetest's (Pair.Run) for the tables on it, this one
// for the specs that drive package scenarios themselves.
const maxAttempts = upgradetest.DefaultAttempts

// attemptsTimeout is a spec timeout that covers every attempt.
func attemptsTimeout(one time.Duration) SpecTimeout { return SpecTimeout(maxAttempts * one) }

// judged runs a scenario (run writes it under dir, named name) until its
// verdict is not error, at most maxAttempts times. An earlier attempt's
// record is kept aside, in dir/attempts/NAME-K, out of the report. Every
// attempt goes in the spec's report entry; the spec fails if the last is
// still error (its reasons are the premises that did not hold). It returns
// the last attempt's entry of report.json.
func judged(ctx SpecContext, dir, name string, run func() error) record.Scenario {
	var lines []string
	var s record.Scenario
	var runErr error
	for n := 1; n <= maxAttempts; n++ {
		start := time.Now()
		runErr = run()
		_, rerr := scenarios.Render(dir)
		Expect(rerr).NotTo(HaveOccurred())
		s = reportIn(dir, name)
		line := fmt.Sprintf("attempt %d: verdict=%s dropped=%d stall=%.0f ms in %s, took %s, reasons=%v",
			n, s.Verdict, s.Dropped, s.Stall.Ms, s.Stall.Phase, time.Since(start).Round(time.Second), s.Reasons)
		if runErr != nil {
			line += fmt.Sprintf(" (could not run: %v)", runErr)
		}
		lines = append(lines, line)
		progress("%s: %s", name, line)
		if s.Verdict != record.VerdictError || n == maxAttempts || ctx.Err() != nil {
			break
		}
		kept := filepath.Join(dir, "attempts", fmt.Sprintf("%s-%d", name, n))
		Expect(os.MkdirAll(filepath.Dir(kept), 0o755)).To(Succeed())
		Expect(os.RemoveAll(kept)).To(Succeed())
		Expect(os.Rename(filepath.Join(dir, name), kept)).To(Succeed())
	}
	AddReportEntry(name+" attempts", strings.Join(lines, "\n"))
	Expect(s.Verdict).NotTo(Equal(record.VerdictError),
		"still error after %d attempts: the measurement did not hold (%v)", len(lines), s.Reasons)
	Expect(runErr).NotTo(HaveOccurred(), "the scenario could not run")
	return s
}

// suiteJudged reads the report of a suite run into dir (scenarios.RunSuite
// of scs with p) and runs again, alone, each scenario whose verdict was
// error, at most maxAttempts-1 more times: the CI policy for a spec that
// runs a whole suite. The error attempt is kept aside (dir/attempts/NAME-K);
// every attempt goes in the spec's report entry. It returns each
// scenario's last entry; a fail is never run again.
func suiteJudged(ctx SpecContext, dir string, scs []scenarios.Scenario, p scenarios.Params, im scenarios.Images) []record.Scenario {
	r, err := record.ReadReport(filepath.Join(dir, "report.json"))
	Expect(err).NotTo(HaveOccurred())
	out := r.Scenarios
	for i, s := range out {
		if s.Verdict != record.VerdictError {
			continue
		}
		var sc *scenarios.Scenario
		for k := range scs {
			if scs[k].Name == s.Name {
				sc = &scs[k]
			}
		}
		Expect(sc).NotTo(BeNil(), "scenario %s of the report is not among those run", s.Name)
		lines := []string{fmt.Sprintf("attempt 1 (in the suite): verdict=error reasons=%v", s.Reasons)}
		for n := 2; n <= maxAttempts && s.Verdict == record.VerdictError && ctx.Err() == nil; n++ {
			kept := filepath.Join(dir, "attempts", fmt.Sprintf("%s-%d", s.Name, n-1))
			Expect(os.MkdirAll(filepath.Dir(kept), 0o755)).To(Succeed())
			Expect(os.RemoveAll(kept)).To(Succeed())
			Expect(os.Rename(filepath.Join(dir, s.Name), kept)).To(Succeed())
			start := time.Now()
			image := im.Good
			if sc.Broken {
				image = im.Broken
			}
			runErr := scenarios.Run(ctx, pool, *sc, p, image, dir, progress)
			_, rerr := scenarios.Render(dir)
			Expect(rerr).NotTo(HaveOccurred())
			s = reportIn(dir, s.Name)
			line := fmt.Sprintf("attempt %d: verdict=%s dropped=%d, took %s, reasons=%v", n, s.Verdict, s.Dropped, time.Since(start).Round(time.Second), s.Reasons)
			if runErr != nil {
				line += fmt.Sprintf(" (could not run: %v)", runErr)
			}
			lines = append(lines, line)
			progress("%s: %s", s.Name, line)
		}
		AddReportEntry(s.Name+" attempts", strings.Join(lines, "\n"))
		out[i] = s
	}
	return out
}

// matrixJudged runs a matrix (run writes it into the directory it is
// given) until no cell is error, at most maxAttempts times, each attempt
// in dir/attempt-N (a cell's error — a measurement whose premises did not
// hold — is the machine's, and CI runs it again; a fail cell never is).
// Every attempt goes in the spec's report entry. It returns the last
// attempt's report and directory.
func matrixJudged(ctx SpecContext, dir string, run func(out string) (*reports.MatrixReport, error)) (*reports.MatrixReport, string) {
	var lines []string
	var r *reports.MatrixReport
	var out string
	for n := 1; n <= maxAttempts; n++ {
		out = filepath.Join(dir, fmt.Sprintf("attempt-%d", n))
		start := time.Now()
		var err error
		r, err = run(out)
		Expect(err).NotTo(HaveOccurred())
		var errs []string
		for _, c := range r.Cells {
			if c.Verdict == record.VerdictError {
				errs = append(errs, fmt.Sprintf("%s: %v", c.ID, c.Reasons))
			}
		}
		lines = append(lines, fmt.Sprintf("attempt %d: %s, %d error cells, took %s %v", n, r.Verdict, len(errs), time.Since(start).Round(time.Second), errs))
		if len(errs) == 0 || ctx.Err() != nil {
			break
		}
	}
	AddReportEntry(filepath.Base(dir)+" attempts", strings.Join(lines, "\n"))
	return r, out
}
