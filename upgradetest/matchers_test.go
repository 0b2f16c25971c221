package upgradetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/onsi/gomega/types"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Hand-written judged scenarios: what the judge wrote for a clean pass, a
// pass with a known loss, a fail, an error, and a positive control.
func cleanPass() record.Scenario {
	return record.Scenario{Name: "upgrade", Expect: "zero-drops", Verdict: record.VerdictPass, Reasons: []string{},
		PlannedSteps: []record.PlannedStep{{Name: "install-new-binary"}, {Name: "spawn-new-master"}},
		Steps:        []record.Step{{Name: "install-new-binary", Verified: true}, {Name: "spawn-new-master", Signal: "USR2", Verified: true}},
		Phases:       []record.Phase{{Name: "steady"}, {Name: "both-sets"}},
		Final:        &record.Final{Masters: 1, ServingBinary: "new", Serving: true}}
}

func knownLossPass() record.Scenario {
	s := cleanPass()
	s.Name, s.Dropped, s.Drops = "reuseport", 3, []string{"3 in one-worker (reset: 3)"}
	s.Phases = append(s.Phases, record.Phase{Name: "one-worker", Dropped: 3, Failed: 3, ByClass: map[string]int{record.ClassReset: 3}})
	s.KnownLossSeen = []record.KnownLossSeen{{Name: "reuseport-queue-reset", Phase: "one-worker", Count: 3,
		ByClass: map[string]int{record.ClassReset: 3}, Why: "the retired workers' queues are reset"}}
	return s
}

func failed() record.Scenario {
	s := cleanPass()
	s.Verdict, s.Dropped = record.VerdictFail, 5
	s.Reasons = []string{"4 requests failed in both-sets (eof: 4)", "1 long download cut in both-sets"}
	s.Drops = []string{"5 in both-sets (eof: 4, 1 cut download)"}
	s.Phases[1] = record.Phase{Name: "both-sets", Dropped: 5, Failed: 4, SlowCut: 1, ByClass: map[string]int{record.ClassEOF: 4}}
	return s
}

func invalidRun() record.Scenario {
	s := cleanPass()
	s.Verdict = record.VerdictError
	s.Reasons = []string{"the load sent nothing in 2 windows while it should have: 100 ms–400 ms in steady"}
	return s
}

func stepFailed() record.Scenario {
	s := failed()
	s.Steps[1] = record.Step{Name: "spawn-new-master", Signal: "USR2", Error: "no new master within 10s"}
	s.Final = &record.Final{Masters: 2, ServingBinary: "unknown", Serving: true,
		CheckErrors: []string{"want one master at the end, saw 2"}, Wrong: []string{"nginx.pid.oldbin left behind"}}
	return s
}

func control() record.Scenario {
	return record.Scenario{Name: "kill-fallback", Expect: "drops", Verdict: record.VerdictPass, Reasons: []string{},
		Dropped: 4, Phases: []record.Phase{{Name: "steady"}, {Name: "after-kill", Dropped: 4, SlowCut: 4}},
		Steps: []record.Step{{Name: "kill-workers", Signal: "KILL", Verified: true}},
		Final: &record.Final{Masters: 1, ServingBinary: "old", Serving: true}}
}

func TestMatchers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       types.GomegaMatcher
		actual  any
		want    bool
		message []string // in the failure message (of To when want is false, of NotTo when true)
		errs    []string // Match errs, and says this
	}{
		{name: "pass passes", m: PassVerdict(), actual: cleanPass(), want: true,
			message: []string{"expected not scenario upgrade to have the verdict pass", "verdict pass"}},
		{name: "fail does not pass, the reasons printed", m: PassVerdict(), actual: failed(), want: false,
			message: []string{"verdict fail, the judge's reasons:", "  - 4 requests failed in both-sets (eof: 4)", "  - 1 long download cut in both-sets"}},
		{name: "a known loss is a pass, and printed", m: PassVerdict(), actual: knownLossPass(), want: true,
			message: []string{"known loss:", "the retired workers' queues are reset"}},
		{name: "error is not a pass", m: PassVerdict(), actual: invalidRun(), want: false,
			message: []string{"verdict error", "the load sent nothing in 2 windows"}},
		{name: "fail verdict asked for", m: HaveVerdict(record.VerdictFail), actual: failed(), want: true},
		{name: "no such verdict", m: HaveVerdict("passed"), actual: cleanPass(), errs: []string{`HaveVerdict("passed")`}},

		{name: "nothing dropped", m: DropNothing(), actual: cleanPass(), want: true},
		{name: "drops seen", m: DropNothing(), actual: failed(), want: false,
			message: []string{"to drop nothing", "dropped 5", "5 in both-sets (eof: 4, 1 cut download)", "verdict fail"}},
		{name: "a known loss is a drop", m: DropNothing(), actual: knownLossPass(), want: false, message: []string{"dropped 3"}},
		{name: "an invalid run shows nothing dropped of nothing", m: DropNothing(), actual: invalidRun(),
			errs: []string{"verdict error: the measurement did not hold, so it cannot show that nothing was dropped", "the load sent nothing"}},

		{name: "only known losses", m: DropOnlyKnownLosses(), actual: knownLossPass(), want: true},
		{name: "nothing at all is only known losses", m: DropOnlyKnownLosses(), actual: cleanPass(), want: true},
		{name: "losses beyond the known", m: DropOnlyKnownLosses(), actual: failed(), want: false,
			message: []string{"dropped 5", "of which the judge found 0 known losses"}},
		{name: "known losses need a valid run", m: DropOnlyKnownLosses(), actual: invalidRun(), errs: []string{"verdict error"}},

		{name: "lost eof in both-sets", m: HaveLost(record.ClassEOF, "both-sets"), actual: failed(), want: true,
			message: []string{"lost 4 eof losses in both-sets"}},
		{name: "lost a download", m: HaveLost(record.CauseSlowCut, ""), actual: failed(), want: true},
		{name: "no reset there", m: HaveLost(record.ClassReset, "both-sets"), actual: failed(), want: false,
			message: []string{"to have lost reset losses in both-sets", "lost 0 reset losses in both-sets"}},
		{name: "control's drops where its step acts", m: HaveLost("", "after-kill"), actual: control(), want: true},
		{name: "none outside", m: HaveLost("", "steady"), actual: control(), want: false},
		{name: "no such phase", m: HaveLost("", "after-term"), actual: control(), want: false,
			message: []string{"no phase after-term in the record (phases: steady, after-kill)"}},
		{name: "no such class", m: HaveLost("econnreset", ""), actual: control(), errs: []string{`HaveLost("econnreset", …): not a class of loss`}},
		{name: "an invalid run cannot show nothing lost", m: HaveLost("", ""), actual: invalidRun(), errs: []string{"cannot show nothing was lost in any phase"}},
		{name: "an invalid run still shows what it lost", m: HaveLost(record.ClassEOF, ""), actual: func() record.Scenario {
			s := failed()
			s.Verdict = record.VerdictError
			return s
		}(), want: true},

		{name: "every step", m: CompleteEveryStep(), actual: cleanPass(), want: true},
		{name: "a step not verified", m: CompleteEveryStep(), actual: stepFailed(), want: false,
			message: []string{"spawn-new-master: not verified: no new master within 10s", "install-new-binary: verified"}},
		{name: "a step missing", m: CompleteEveryStep(), actual: func() record.Scenario {
			s := cleanPass()
			s.Steps = s.Steps[:1]
			return s
		}(), want: false, message: []string{"1 of 2 planned steps ran"}},
		{name: "a step that fails as planned", m: CompleteEveryStep(), actual: func() record.Scenario {
			s := cleanPass()
			s.Steps[1] = record.Step{Name: "spawn-new-master", Expected: record.ExpectFail, Error: "new master exited"}
			return s
		}(), want: true},
		{name: "a step verified that must fail", m: CompleteEveryStep(), actual: func() record.Scenario {
			s := cleanPass()
			s.Steps[1].Expected = record.ExpectFail
			return s
		}(), want: false, message: []string{"spawn-new-master: verified, but planned to fail"}},

		{name: "serving the new binary", m: EndServing("new"), actual: cleanPass(), want: true},
		{name: "not the old one", m: EndServing("old"), actual: cleanPass(), want: false,
			message: []string{"to end serving the old binary", "1 master(s), the new binary, serving: true"}},
		{name: "two masters, checks failed", m: EndServing("new"), actual: stepFailed(), want: false,
			message: []string{"final-state check: want one master at the end, saw 2", "amiss: nginx.pid.oldbin left behind"}},
		{name: "no final state", m: EndServing("new"), actual: record.Scenario{Name: "upgrade", Verdict: record.VerdictError}, want: false,
			message: []string{"no final state in the record"}},
		{name: "no such binary", m: EndServing("newest"), actual: cleanPass(), errs: []string{`EndServing("newest"): want old or new`}},

		{name: "a Result", m: PassVerdict(), actual: &Result{Scenario: failed(), Dir: "/tmp/r", CouldNotRun: errors.New("container gone"),
			Attempts: []Attempt{{Verdict: "error"}, {Verdict: "fail"}}}, want: false,
			message: []string{"after 2 attempts:", "attempt 1: verdict=error", "could not run: container gone", "report: /tmp/r/report.md"}},
		{name: "a nil Result", m: PassVerdict(), actual: (*Result)(nil), errs: []string{"nil *upgradetest.Result"}},
		{name: "something else", m: PassVerdict(), actual: "pass", errs: []string{"want an upgradetest.Result or a record.Scenario, got string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.Match(tc.actual)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Match = %t, nil; want an error", got)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\nlacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tc.want {
				t.Errorf("Match = %t, want %t\n%s", got, tc.want, tc.m.FailureMessage(tc.actual))
			}
			msg := tc.m.FailureMessage(tc.actual)
			if tc.want {
				msg = tc.m.NegatedFailureMessage(tc.actual)
			}
			for _, w := range tc.message {
				if !strings.Contains(msg, w) {
					t.Errorf("failure message\n%s\nlacks %q", msg, w)
				}
			}
		})
	}
}

// Every Result shape works, by value and by pointer.
func TestMatchersTakeEveryShape(t *testing.T) {
	s := cleanPass()
	for _, a := range []any{s, &s, Result{Scenario: s}, &Result{Scenario: s}} {
		if ok, err := PassVerdict().Match(a); !ok || err != nil {
			t.Errorf("PassVerdict().Match(%T) = %t, %v", a, ok, err)
		}
	}
}
