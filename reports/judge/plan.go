package judge

import (
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Plan holds a scenario's record against what it was meant to do: the
// plan run.json holds for it (its digest, the digest meta.json names, the
// expectation, the steps and the thresholds), and its step events against
// those steps. A disagreement is a problem naming the field (the verdict
// is error: the record does not say what it was judged by). run is nil
// when the run directory holds no run.json. A run.json written before
// plans were is judged as before, with a note saying what could not be
// checked; the events are still held against meta.json's steps.
func Plan(s *record.Scenario, meta record.Meta, run *record.RunPlan) {
	name := meta.Scenario
	if name == "" {
		name = s.Name
	}
	var plan *record.ScenarioPlan
	switch {
	case run == nil:
	case len(run.Plans) == 0:
		s.AddNote("run.json holds no plan of its scenarios (a run written before plans were): meta.json's expect, planned_steps, " +
			"expect_drops, max_stall_ms, steady_ms, load.rate, known_losses, strict and final_want could not be held against a plan written before the run")
	default:
		if plan = run.PlanFor(name); plan == nil {
			var planned []string
			for _, p := range run.Plans {
				planned = append(planned, p.Scenario)
			}
			s.AddProblem("run.json plans no scenario %s (it plans %s): nothing says what this record was meant to do", name, strings.Join(planned, ", "))
			return
		}
	}
	for _, p := range record.CheckPlan(plan, meta, s.Steps) {
		s.AddProblem("%s", p)
	}
}
