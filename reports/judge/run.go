package judge

import (
	"fmt"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// Run fills the aggregates, the comparisons, the top-level verdict and
// its counts.
func Run(r *record.Report, plan *record.RunPlan) {
	planned := 1
	if plan != nil && plan.Repeat > 0 {
		planned = plan.Repeat
	}
	candAgg := analysis.Aggregates(r.Scenarios, record.PairCandidate, planned)
	r.Aggregates = candAgg
	if r.Baseline != nil {
		baseAgg := analysis.Aggregates(r.Baseline.Scenarios, record.PairBaseline, planned)
		r.Aggregates = append(r.Aggregates, baseAgg...)
		r.Gate = record.GateBaseline
		r.Comparisons = compare(r, plan, candAgg, baseAgg)
		verdicts := make([]string, len(r.Comparisons))
		for i, c := range r.Comparisons {
			verdicts[i] = c.Verdict
		}
		r.Verdict, r.Counts = Worst(verdicts)
		return
	}
	r.Gate = record.GateScenarios
	verdicts := make([]string, len(r.Scenarios))
	for i, s := range r.Scenarios {
		verdicts[i] = s.Verdict
	}
	if plan != nil {
		// A repeat that never ran is a gate that could not be judged.
		for _, a := range candAgg {
			for i := a.Runs; i < a.Planned; i++ {
				verdicts = append(verdicts, record.VerdictError)
			}
		}
	}
	r.Verdict, r.Counts = Worst(verdicts)
}

// Worst is the run's verdict over verdicts: fail if any failed (retrying
// will not help), else error if any is an error, else pass; error when
// there is nothing to judge.
func Worst(verdicts []string) (string, record.Counts) {
	var c record.Counts
	for _, v := range verdicts {
		switch v {
		case record.VerdictPass:
			c.Pass++
		case record.VerdictFail:
			c.Fail++
		default:
			c.Error++
		}
	}
	switch {
	case c.Fail > 0:
		return record.VerdictFail, c
	case c.Error > 0 || c.Pass == 0:
		return record.VerdictError, c
	}
	return record.VerdictPass, c
}

// compare judges each scenario of the candidate against the baseline: error
// if a run is missing or its measurement invalid; fail if a candidate run
// broke the path itself (a step not as expected, a final state wrong, a
// stall above the limit) or if the candidate drops significantly more than
// the baseline (one-sided exact test at Alpha); else pass. A positive
// control, or a scenario run on the candidate side only, is judged by its
// runs' own verdicts.
func compare(r *record.Report, plan *record.RunPlan, cand, base []record.Aggregate) []record.Comparison {
	alpha := Alpha
	if plan != nil && plan.Alpha > 0 {
		alpha = plan.Alpha
	}
	baseBy := map[string]*record.Aggregate{}
	for i := range base {
		baseBy[base[i].Scenario] = &base[i]
	}
	runsOf := func(runs []record.Scenario, name string) []record.Scenario {
		var out []record.Scenario
		for _, s := range runs {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	candidateOnly := map[string]bool{}
	if plan != nil {
		for _, n := range plan.CandidateOnly {
			candidateOnly[n] = true
		}
	}
	var out []record.Comparison
	for i := range cand {
		ca := &cand[i]
		c := record.Comparison{Scenario: ca.Scenario, Candidate: ca, Reasons: []string{}}
		cruns := runsOf(r.Scenarios, ca.Scenario)
		own := candidateOnly[ca.Scenario] || baseBy[ca.Scenario] == nil
		if ca.Runs < ca.Planned {
			c.Reasons = append(c.Reasons, fmt.Sprintf("only %d of %d candidate runs were recorded", ca.Runs, ca.Planned))
		}
		if own {
			c.Test = record.TestOwnVerdicts
			verdicts := []string{}
			for _, s := range cruns {
				verdicts = append(verdicts, s.Verdict)
				for _, why := range s.Reasons {
					c.Reasons = append(c.Reasons, fmt.Sprintf("run %d: %s", s.Repeat, why))
				}
			}
			if ca.Runs < ca.Planned {
				verdicts = append(verdicts, record.VerdictError)
			}
			c.Verdict, _ = Worst(verdicts)
			out = append(out, c)
			continue
		}
		ba := baseBy[ca.Scenario]
		c.Baseline = ba
		c.Test = record.TestExactRate
		control := len(cruns) > 0 && cruns[0].Expect == record.ExpectDrops
		if control {
			c.Test = record.TestFailRate
		}
		invalid := ca.Runs < ca.Planned
		if ba == nil || ba.Runs < ba.Planned {
			n := 0
			if ba != nil {
				n = ba.Runs
			}
			c.Reasons = append(c.Reasons, fmt.Sprintf("only %d of %d baseline runs were recorded", n, ca.Planned))
			invalid = true
		}
		for _, s := range append(cruns, runsOf(record.BaselineScenarios(r), ca.Scenario)...) {
			if s.Verdict == record.VerdictError {
				invalid = true
				c.Reasons = append(c.Reasons, fmt.Sprintf("%s run %d is invalid: %s", s.Pair, s.Repeat, strings.Join(s.Reasons, "; ")))
			}
		}
		if invalid {
			c.Verdict = record.VerdictError
			out = append(out, c)
			continue
		}
		if control {
			// A positive control must drop where its step drops; under
			// keep-alive the race of a graceful step may add drops
			// elsewhere, on the baseline as on the candidate, and fail runs
			// of both on their own: the gate is that the candidate fails
			// no more often.
			p := analysis.Round6(analysis.HypergeometricUpperTail(ca.Counts.Fail, ca.Runs, ba.Counts.Fail, ba.Runs))
			c.PValue, c.Alpha = &p, &alpha
			measured := fmt.Sprintf("%d of %d candidate runs failed their own verdict, %d of %d baseline runs (one-sided p = %s, α = %g)",
				ca.Counts.Fail, ca.Runs, ba.Counts.Fail, ba.Runs, words.FmtP(p), alpha)
			if p < alpha {
				c.Verdict = record.VerdictFail
				c.Reasons = append(c.Reasons, "the candidate fails the control significantly more often: "+measured)
			} else {
				c.Verdict = record.VerdictPass
				c.Reasons = append(c.Reasons, "no worse than the baseline: "+measured)
			}
			for _, s := range cruns {
				for _, why := range s.Reasons {
					c.Reasons = append(c.Reasons, fmt.Sprintf("candidate run %d: %s", s.Repeat, why))
				}
			}
			out = append(out, c)
			continue
		}
		var broke []string
		for _, s := range cruns {
			for _, why := range pathFailures(&s) {
				broke = append(broke, fmt.Sprintf("candidate run %d: %s", s.Repeat, why))
			}
		}
		phi, _ := analysis.Dispersion(analysis.RunCounts(ca.PerRun), analysis.RunCounts(ba.PerRun))
		phiR := analysis.Round3(phi)
		c.Dispersion = &phiR
		p := analysis.Round6(analysis.RateWorsePDispersed(ca.Dropped, ca.Requests, ba.Dropped, ba.Requests, phi))
		c.PValue, c.Alpha = &p, &alpha
		if ba.Dropped > 0 && ba.Requests > 0 && ca.Requests > 0 {
			ratio := analysis.Round3((float64(ca.Dropped) / float64(ca.Requests)) / (float64(ba.Dropped) / float64(ba.Requests)))
			c.RateRatio = &ratio
		}
		measured := fmt.Sprintf("candidate %s per 10,000 requests against baseline %s (one-sided p = %s, α = %g, dispersion %.2f)",
			words.RateWithCI(ca), words.RateWithCI(ba), words.FmtP(p), alpha, phi)
		switch {
		case len(broke) > 0:
			c.Verdict = record.VerdictFail
			c.Reasons = append(broke, c.Reasons...)
		case p < alpha:
			c.Verdict = record.VerdictFail
			c.Reasons = append(c.Reasons, "the candidate drops significantly more: "+measured)
		default:
			c.Verdict = record.VerdictPass
			c.Reasons = append(c.Reasons, "no worse than the baseline: "+measured)
		}
		out = append(out, c)
	}
	return out
}

// pathFailures are what breaks an upgrade path whatever the baseline does:
// a step that did not do what the scenario expects, a wrong final state, a
// stall above the limit.
func pathFailures(s *record.Scenario) []string {
	var out []string
	for _, st := range s.Steps {
		if !StepAsExpected(st) {
			out = append(out, fmt.Sprintf("step %s: %s", words.StepLabel(st), words.StepOutcome(st)))
		}
	}
	if s.Final != nil {
		for _, e := range s.Final.CheckErrors {
			out = append(out, "final state: "+e)
		}
	}
	stalls, _ := StallReasons(s) // a stall the observer was blind to is not the path's
	return append(out, stalls...)
}

// Thresholds states the limits a scenario's verdict applies, from its plan.
func Thresholds(m *record.Meta) record.Thresholds {
	t := record.Thresholds{MinRateFraction: MinRateFraction, MinRatePhaseMs: MinRatePhaseMs, SteadyMs: m.SteadyMs, ExpectDrops: m.ExpectDrops,
		SilentWindowMs: 100}
	if m.MaxStallMs > 0 {
		v := m.MaxStallMs
		t.MaxStallMs = &v
	}
	if m.Load.Rate > 0 {
		t.SilentWindowMs = max(100, analysis.Round3(3*1000/float64(m.Load.Rate)))
	}
	if m.Observer != nil {
		t.Observer = &record.ObserverLimits{WindowMs: m.Observer.WindowMs, MaxLateMs: analysis.ObserverMaxLateMs, MaxHiccupMs: analysis.ObserverMaxHiccupMs,
			MaxProbeMs: analysis.ObserverMaxProbeMs}
		if m.Heartbeat != nil {
			t.Observer.MaxNginxLateMs = analysis.NginxMaxLateMs
			t.Observer.MaxNginxRunqMs, t.Observer.NginxBusyFraction = analysis.NginxMaxRunqMs, analysis.NginxBusyFraction
		}
	}
	return t
}

// Alpha is the significance level of the baseline comparison.
const Alpha = 0.05
