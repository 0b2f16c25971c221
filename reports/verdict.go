package reports

import (
	"fmt"
	"sort"
	"strings"
)

// MinRateFraction is the share of the configured rate every phase of at
// least MinRatePhaseMs must achieve for a verdict to count: a load that
// stalled through a transition proves nothing about it.
const (
	MinRateFraction = 0.8
	MinRatePhaseMs  = 1000
)

// Judge gives a scenario's verdict and its reasons, from its record alone
// (so a verdict can be recomputed from report.json). Premises come first:
// if the scenario could not run, its record is incomplete, a step did not
// do what the scenario expects of it, or the load did not keep its rate, the
// verdict is error — nothing can be concluded. Then the expectation:
// zero-drops passes iff nothing was dropped; drops (a positive control of
// the detector) passes iff something was. Failed final-state checks fail
// either.
func Judge(s *Scenario) (verdict string, reasons []string) {
	premises := premiseReasons(s)
	if len(premises) > 0 {
		return VerdictError, premises
	}
	var fails []string
	for _, st := range s.Steps {
		if st.Expected == ExpectFail && st.Verified {
			fails = append(fails, fmt.Sprintf("step %s verified but the scenario expects it to fail", stepLabel(st)))
		}
	}
	if s.Final != nil {
		for _, e := range s.Final.CheckErrors {
			fails = append(fails, "final state: "+e)
		}
	}
	switch s.Expect {
	case ExpectZeroDrops:
		fails = append(fails, dropReasons(s)...)
	case ExpectDrops:
		if s.Dropped == 0 {
			fails = append(fails, "positive control saw no drops: the detector is broken")
		}
	}
	if len(fails) > 0 {
		return VerdictFail, fails
	}
	return VerdictPass, []string{}
}

func premiseReasons(s *Scenario) []string {
	if s.Error != "" {
		// What is missing from its record follows from it.
		return []string{"could not run: " + s.Error}
	}
	out := append([]string(nil), s.Problems...)
	switch s.Expect {
	case ExpectZeroDrops, ExpectDrops:
	case "":
		if len(s.Problems) == 0 { // a missing meta.json says it already
			out = append(out, "no expectation (meta.json expect is empty)")
		}
	default:
		out = append(out, fmt.Sprintf("unknown expectation %q (want %q or %q)", s.Expect, ExpectZeroDrops, ExpectDrops))
	}
	if s.Requests.Total == 0 {
		out = append(out, "no results: the load sent no request")
	}
	for _, st := range s.Steps {
		if st.Expected != ExpectFail && !st.Verified {
			r := fmt.Sprintf("step %s not verified", stepLabel(st))
			if st.Error != "" {
				r += ": " + st.Error
			}
			out = append(out, r)
		}
	}
	if s.Requests.Total > 0 {
		for _, st := range s.Steps {
			if st.SentMs > s.LoadEndMs {
				out = append(out, fmt.Sprintf("the load stopped at %s, before step %s was sent at %s",
					fmtMs(s.LoadEndMs), st.Name, fmtMs(st.SentMs)))
			}
		}
		if s.Load.Rate > 0 {
			want := float64(s.Load.Rate)
			for _, p := range s.Phases {
				if p.LoadMs >= MinRatePhaseMs && p.Rate < MinRateFraction*want {
					out = append(out, fmt.Sprintf("the load did not keep its rate in %s: %.0f req/s over %s, below %.0f%% of %d req/s",
						p.Name, p.Rate, fmtMs(p.LoadMs), MinRateFraction*100, s.Load.Rate))
				}
			}
		}
	}
	return out
}

// dropReasons says what was lost, phase by phase.
func dropReasons(s *Scenario) []string {
	out := []string{}
	for _, p := range s.Phases {
		if p.Failed > 0 {
			out = append(out, fmt.Sprintf("%s failed in %s (%s)", plural(p.Failed, "request"), p.Name, classSummary(p.ByClass)))
		}
		if p.Retried > 0 {
			out = append(out, fmt.Sprintf("%s retried by the client after the server closed the connection under them in %s",
				plural(p.Retried, "request"), p.Name))
		}
		if p.SlowCut > 0 {
			out = append(out, fmt.Sprintf("%s cut in %s", plural(p.SlowCut, "long download"), p.Name))
		}
	}
	return out
}

// classSummary writes "eof: 3, reset: 1", the largest first.
func classSummary(byClass map[string]int) string {
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		if byClass[classes[i]] != byClass[classes[j]] {
			return byClass[classes[i]] > byClass[classes[j]]
		}
		return classes[i] < classes[j]
	})
	parts := make([]string, len(classes))
	for i, c := range classes {
		parts[i] = fmt.Sprintf("%s: %d", c, byClass[c])
	}
	return strings.Join(parts, ", ")
}

func stepLabel(st Step) string {
	switch {
	case st.Signal != "" && st.PID != 0:
		return fmt.Sprintf("%s (%s to %d)", st.Name, st.Signal, st.PID)
	case st.Signal != "":
		return fmt.Sprintf("%s (%s)", st.Name, st.Signal)
	}
	return st.Name
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtMs writes a run-clock offset for people: "2001 ms", "12.5 s".
func fmtMs(ms float64) string {
	if ms >= 10000 || ms <= -10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
