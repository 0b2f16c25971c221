package scenarios

import (
	"encoding/json"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
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
	keepAlive := Params{Load: DefaultLoad, Strict: true}
	keepAlive.Load.KeepAlive = true // the close race declared: known losses in the plan
	for _, run := range []Params{p, keepAlive} {
		p := run
		for _, sc := range append(scs, faulted) {
			meta := p.newMeta(sc.Name, sc.Expect, p.To, p.Load.plan(), loadgen.NewClock())
			p.planScenario(&meta, sc)
			plan := p.Plan(sc)
			meta.PlanDigest = plan.Digest
			// As report reads them: run.json's plan and meta.json from disk.
			var read record.ScenarioPlan
			var readMeta record.Meta
			roundTrip(t, plan, &read)
			roundTrip(t, meta, &readMeta)
			if probs := record.CheckPlan(&read, readMeta, nil); len(probs) > 0 {
				t.Errorf("%s: %q", sc.Name, probs)
			}
			if plan.Digest == "" || len(plan.PlannedSteps) != len(sc.Moves) || plan.Expect != sc.Expect {
				t.Errorf("%s: plan %+v", sc.Name, plan)
			}
		}
	}
	if got := p.Plan(faulted); len(got.Faults) != 1 || got.Faults[0] != "kill-old-master@spawn-new-master" {
		t.Errorf("faulted plan names faults %q", got.Faults)
	}
}

func roundTrip(t *testing.T, v, into any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
}

// A compare run's plan (compare.json) and its meta.json agree, with and
// without --expect.
func TestComparePlanAgreesWithMeta(t *testing.T) {
	p := Params{Load: DefaultLoad}
	e, err := reports.ParseCompareExpect("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range procedure.Defaults() {
		proc, err := procedure.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []Compare{{}, {Expect: e}} {
			for _, b := range []string{reports.BuildGood, reports.BuildBroken} {
				name := proc.Name() + "-" + b
				// As RunProcedure writes meta.json.
				meta := p.newMeta(name, compareExpect, p.To, p.Load.plan(), loadgen.NewClock())
				meta.SteadyMs = float64(p.steady().Milliseconds())
				meta.PlanDigest = p.comparePlan(name, proc, b, c).Digest
				plan := p.comparePlan(name, proc, b, c)
				var read record.ScenarioPlan
				var readMeta record.Meta
				roundTrip(t, plan, &read)
				roundTrip(t, meta, &readMeta)
				if probs := record.CheckPlan(&read, readMeta, nil); len(probs) > 0 {
					t.Errorf("%s: %q", name, probs)
				}
				if (c.Expect != nil) != (plan.Row.Expect != nil) {
					t.Errorf("%s: row %+v", name, plan.Row)
				}
			}
		}
	}
}
