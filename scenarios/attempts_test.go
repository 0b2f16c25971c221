package scenarios_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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
