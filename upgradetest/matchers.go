package upgradetest

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/onsi/gomega/types"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// The matchers take a *Result or Result (from Pair.Run), or a
// record.Scenario or *record.Scenario (an entry of any report.json).

// PassVerdict succeeds when the judge's verdict is pass; it fails listing
// the judge's reasons.
func PassVerdict() types.GomegaMatcher { return HaveVerdict(record.VerdictPass) }

// HaveVerdict succeeds when the judge's verdict is v (record.VerdictPass,
// VerdictFail or VerdictError); it fails listing the judge's reasons.
func HaveVerdict(v string) types.GomegaMatcher {
	return &matcher{claim: "to have the verdict " + v, check: func(s *record.Scenario) (bool, []string, error) {
		switch v {
		case record.VerdictPass, record.VerdictFail, record.VerdictError:
		default:
			return false, nil, fmt.Errorf("HaveVerdict(%q): want %s, %s or %s", v, record.VerdictPass, record.VerdictFail, record.VerdictError)
		}
		return s.Verdict == v, nil, nil
	}}
}

// DropNothing succeeds when nothing was dropped, a known loss included (a
// pass with a known loss is not a clean one); use DropOnlyKnownLosses to
// excuse those. It refuses an error verdict: a measurement whose premises
// did not hold cannot show that nothing was lost.
func DropNothing() types.GomegaMatcher {
	return &matcher{claim: "to drop nothing", valid: true, unproven: "that nothing was dropped", check: func(s *record.Scenario) (bool, []string, error) {
		return s.Dropped == 0, dropWords(s), nil
	}}
}

// DropOnlyKnownLosses succeeds when every drop is a loss the judge found
// to be one the scenario declares known (reuseport's queue reset, the
// keep-alive close race: record.KnownLossSeen), so none beyond them. It
// refuses an error verdict, as DropNothing.
func DropOnlyKnownLosses() types.GomegaMatcher {
	return &matcher{claim: "to drop nothing beyond its known losses", valid: true, unproven: "that nothing beyond the known losses was dropped", check: func(s *record.Scenario) (bool, []string, error) {
		known := 0
		for _, k := range s.KnownLossSeen {
			known += k.Count
		}
		seen := append(dropWords(s), fmt.Sprintf("of which the judge found %d known losses", known))
		return s.Dropped == known, seen, nil
	}}
}

// HaveLost succeeds when the record lost requests of class in phase: a
// failure class (record.ClassReset, ClassEOF, …), record.CauseRetried (a
// request the client replayed after the server closed under it),
// record.CauseSlowCut (a long download cut), or "" for any drop; phase ""
// is any phase. A loss stands whatever the verdict, but an error verdict
// cannot show that nothing was lost: HaveLost then errs rather than say no.
func HaveLost(class, phase string) types.GomegaMatcher {
	what := "requests"
	if class != "" {
		what = class + " losses"
	}
	where := "in any phase"
	if phase != "" {
		where = "in " + phase
	}
	return &matcher{claim: "to have lost " + what + " " + where, check: func(s *record.Scenario) (bool, []string, error) {
		if class != "" && !slices.Contains(lossClasses, class) {
			return false, nil, fmt.Errorf("HaveLost(%q, …): not a class of loss (want one of %s, or \"\" for any)", class, strings.Join(lossClasses, ", "))
		}
		var names []string
		n, found := 0, phase == ""
		for _, p := range s.Phases {
			names = append(names, p.Name)
			if phase != "" && p.Name != phase {
				continue
			}
			found = true
			switch class {
			case "":
				n += p.Dropped
			case record.CauseRetried:
				n += p.Retried
			case record.CauseSlowCut:
				n += p.SlowCut
			default:
				n += p.ByClass[class]
			}
		}
		if !found {
			return false, []string{fmt.Sprintf("no phase %s in the record (phases: %s)", phase, strings.Join(names, ", "))}, nil
		}
		if n == 0 && s.Verdict == record.VerdictError {
			return false, nil, invalid(s, "nothing was lost "+where)
		}
		return n > 0, append([]string{fmt.Sprintf("lost %d %s %s", n, what, where)}, dropWords(s)...), nil
	}}
}

// lossClasses are what HaveLost can be asked about.
var lossClasses = []string{record.ClassRefused, record.ClassReset, record.ClassEOF, record.ClassTimeout,
	record.ClassStatus5xx, record.ClassStatusOther, record.ClassStatus3xx, record.ClassWrongBody,
	record.ClassStreamReset, record.ClassGoAway, record.ClassOther, record.CauseRetried, record.CauseSlowCut}

// CompleteEveryStep succeeds when every planned step ran and ended as the
// scenario plans: verified, or refused by nginx where the scenario expects
// it to fail (whether it failed for the expected cause is the verdict's).
func CompleteEveryStep() types.GomegaMatcher {
	return &matcher{claim: "to complete every step as planned", check: func(s *record.Scenario) (bool, []string, error) {
		ok := len(s.Steps) > 0 && (len(s.PlannedSteps) == 0 || len(s.Steps) == len(s.PlannedSteps))
		seen := []string{fmt.Sprintf("%d of %d planned steps ran", len(s.Steps), len(s.PlannedSteps))}
		for _, st := range s.Steps {
			expectFail := st.Expected == record.ExpectFail
			line := st.Name + ": "
			switch {
			case st.Verified && !expectFail:
				line += "verified"
			case !st.Verified && expectFail:
				line += "failed, as planned: " + st.Error
			case st.Verified:
				line += "verified, but planned to fail"
				ok = false
			default:
				line += "not verified: " + st.Error
				ok = false
			}
			seen = append(seen, line)
		}
		return ok, seen, nil
	}}
}

// EndServing succeeds when the run ended on one master running the binary
// ("old" or "new") and serving, with every final-state check the run made
// passed (no .oldbin left, no orphan, nginx.pid right).
func EndServing(binary string) types.GomegaMatcher {
	return &matcher{claim: "to end serving the " + binary + " binary", check: func(s *record.Scenario) (bool, []string, error) {
		if binary != "old" && binary != "new" {
			return false, nil, fmt.Errorf("EndServing(%q): want old or new", binary)
		}
		f := s.Final
		if f == nil {
			return false, []string{"no final state in the record"}, nil
		}
		seen := []string{fmt.Sprintf("%d master(s), the %s binary, serving: %t", f.Masters, f.ServingBinary, f.Serving)}
		for _, e := range f.CheckErrors {
			seen = append(seen, "final-state check: "+e)
		}
		for _, w := range f.Wrong {
			seen = append(seen, "amiss: "+w)
		}
		return f.Masters == 1 && f.ServingBinary == binary && f.Serving && len(f.CheckErrors) == 0, seen, nil
	}}
}

// matcher is one claim about a judged scenario, with what was seen and the
// judge's words for the failure message.
type matcher struct {
	claim string
	valid bool // the claim needs a verdict other than error
	// unproven says what an error verdict cannot show, for a valid claim.
	unproven string
	check    func(s *record.Scenario) (ok bool, seen []string, err error)
}

func (m *matcher) Match(actual any) (bool, error) {
	s, _, err := judgedOf(actual)
	if err != nil {
		return false, err
	}
	if m.valid && s.Verdict == record.VerdictError {
		return false, invalid(s, m.unproven)
	}
	ok, _, err := m.check(s)
	return ok, err
}

func (m *matcher) FailureMessage(actual any) string { return m.message(actual, "expected") }

func (m *matcher) NegatedFailureMessage(actual any) string { return m.message(actual, "expected not") }

func (m *matcher) message(actual any, expected string) string {
	s, r, err := judgedOf(actual)
	if err != nil {
		return err.Error()
	}
	_, seen, _ := m.check(s)
	var b strings.Builder
	fmt.Fprintf(&b, "%s scenario %s %s\n", expected, s.Name, m.claim)
	for _, l := range seen {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	b.WriteString(judgeWords(s, r))
	return b.String()
}

// invalid is the error of a claim an error verdict cannot support.
func invalid(s *record.Scenario, claim string) error {
	return fmt.Errorf("scenario %s: verdict error: the measurement did not hold, so it cannot show %s\n%s", s.Name, claim, judgeWords(s, nil))
}

// judgeWords are the verdict and the judge's reasons, the known losses
// it found, why the run could not run, and where the report is.
func judgeWords(s *record.Scenario, r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict %s", s.Verdict)
	if len(s.Reasons) == 0 {
		b.WriteString(", no reasons given\n")
	} else {
		b.WriteString(", the judge's reasons:\n")
		for _, l := range s.Reasons {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	for _, l := range words.KnownLossLines(s) {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	if r != nil {
		if len(r.Attempts) > 1 {
			fmt.Fprintf(&b, "after %d attempts:\n", len(r.Attempts))
			for _, l := range r.AttemptLines() {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
		if r.CouldNotRun != nil {
			fmt.Fprintf(&b, "could not run: %v\n", r.CouldNotRun)
		}
		if r.Dir != "" {
			fmt.Fprintf(&b, "report: %s\n", filepath.Join(r.Dir, record.ReportMarkdown))
		}
	}
	return b.String()
}

// dropWords are what was dropped, in the judge's words, phase by phase.
func dropWords(s *record.Scenario) []string {
	out := []string{fmt.Sprintf("dropped %d", s.Dropped)}
	for _, d := range s.Drops {
		out = append(out, "  "+d)
	}
	return out
}

// judgedOf is the judged scenario a matcher was given.
func judgedOf(actual any) (*record.Scenario, *Result, error) {
	switch a := actual.(type) {
	case *Result:
		if a == nil {
			return nil, nil, fmt.Errorf("got a nil *upgradetest.Result: the run returned none (see its error)")
		}
		return &a.Scenario, a, nil
	case Result:
		return &a.Scenario, &a, nil
	case *record.Scenario:
		if a == nil {
			return nil, nil, fmt.Errorf("got a nil *record.Scenario")
		}
		return a, nil, nil
	case record.Scenario:
		return &a, nil, nil
	}
	return nil, nil, fmt.Errorf("want an upgradetest.Result or a record.Scenario, got %T", actual)
}
