package scenarios

import (
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// The plan run.json records for a scenario and the meta.json its run
// writes agree, digest and all, for every catalogue scenario and with a
// fault that changes the expectation: the check of a record against its
// plan finds nothing in a record nobody changed.
func TestPlanAgreesWithMeta(t *testing.T) {
	p := Params{Load: DefaultLoad}
	scs := Catalogue()
	upgrade, err := Lookup([]string{"upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fault.Parse("kill-old-master")
	if err != nil {
		t.Fatal(err)
	}
	faulted, err := WithFaults(upgrade[0], []fault.Chosen{c})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range append(scs, faulted) {
		meta := p.newMeta(sc.Name, sc.Expect, p.To, p.Load.plan(), loadgen.NewClock())
		p.planScenario(&meta, sc)
		plan := p.Plan(sc)
		meta.PlanDigest = plan.Digest
		if probs := record.CheckPlan(&plan, meta, nil); len(probs) > 0 {
			t.Errorf("%s: %q", sc.Name, probs)
		}
		if plan.Digest == "" || len(plan.PlannedSteps) != len(sc.Moves) || plan.Expect != sc.Expect {
			t.Errorf("%s: plan %+v", sc.Name, plan)
		}
	}
	if got := p.Plan(faulted); len(got.Faults) != 1 || got.Faults[0] != "kill-old-master@spawn-new-master" {
		t.Errorf("faulted plan names faults %q", got.Faults)
	}
}
