package fault

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// The fault logic against the simulated nginx: what each signal-based fault
// does to the upgrade's step list, as measured live (see README).

func upgradeSteps() []nginx.Step {
	return []nginx.Step{nginx.InstallBinary("install-new-binary", harness.NewBinaryStage), nginx.SpawnNewMaster(),
		nginx.StopOldWorkers(), nginx.QuitOldMaster(time.Second)}
}

// runWithFault plays the upgrade's steps on a simulation, injecting f after
// its step; it heals when HealAfter passed (polling) or at the end, and
// returns the step results.
func runWithFault(t *testing.T, f Fault) (*nginx.Sim, []nginx.StepResult) {
	t.Helper()
	sim := nginx.NewSim(2)
	d := nginx.NewDriver(sim).WithPoll(time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []nginx.StepResult
	var healAt time.Time
	healed := false
	for _, st := range upgradeSteps() {
		if st.Timeout == 0 || st.Timeout > time.Second {
			st.Timeout = time.Second
		}
		if !healAt.IsZero() && !healed {
			// Heal from a goroutine at its time, as the runner does.
			go func(at time.Time) {
				time.Sleep(time.Until(at))
				f.Heal(ctx, sim)
			}(healAt)
			healed = true
		}
		r := d.Run(ctx, st)
		out = append(out, r)
		if !r.OK {
			break
		}
		if st.Name == f.At() {
			if _, err := f.Inject(ctx, sim); err != nil {
				t.Fatalf("inject %s: %v", f.Name(), err)
			}
			if f.HealAfter() > 0 {
				healAt = time.Now().Add(f.HealAfter() / 10) // the simulation needs no real wait
			}
		}
	}
	if !healed {
		f.Heal(ctx, sim)
	}
	return sim, out
}

// checkExpectation holds a run on the simulation to the fault's expectation.
func checkExpectation(t *testing.T, f Fault, sim *nginx.Sim, rs []nginx.StepResult) {
	t.Helper()
	e := f.Expect("upgrade")
	last := rs[len(rs)-1]
	if e.FailStep == "" {
		if !last.OK || len(rs) != len(upgradeSteps()) {
			t.Fatalf("%s: want every step verified, %s: %s", f.Name(), last.Name, last.Err)
		}
	} else {
		if last.OK || last.Name != e.FailStep {
			t.Fatalf("%s: want %s to fail, last step %s ok=%t", f.Name(), e.FailStep, last.Name, last.OK)
		}
		if !regexp.MustCompile(e.FailCause).MatchString(last.Err + strings.Join(last.LogLines, "\n")) {
			t.Fatalf("%s: %s failed with %q, want /%s/", f.Name(), last.Name, last.Err, e.FailCause)
		}
	}
	snap, _ := sim.Snapshot(context.Background())
	var live []proc.Process
	for _, m := range snap.Masters() {
		live = append(live, m)
	}
	if len(live) == 0 {
		t.Fatalf("%s: no master left: %s", f.Name(), snap)
	}
	orphans := 0
	for _, p := range snap.Procs {
		if p.Role != proc.RoleMaster && !snap.IsMaster(p.PPID) {
			orphans++
		}
	}
	if (orphans > 0) != e.Orphans {
		t.Errorf("%s: %d orphans, expectation says orphans=%t: %s", f.Name(), orphans, e.Orphans, snap)
	}
	serving := snap.Masters()[len(snap.Masters())-1]
	if e.FailStep == "" && serving.Binary != e.Final {
		t.Errorf("%s: the %s binary serves, want %s: %s", f.Name(), serving.Binary, e.Final, snap)
	}
}

func TestSignalFaultsOnTheSimulation(t *testing.T) {
	for _, name := range []string{"kill-new-worker", "kill-new-master", "kill-old-master", "stop-old-master", "repeat-usr2", "freeze"} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse(name)
			if err != nil {
				t.Fatal(err)
			}
			sim, rs := runWithFault(t, c.Fault)
			checkExpectation(t, c.Fault, sim, rs)
		})
	}
}

func TestParseAndApplies(t *testing.T) {
	c, err := Parse("kill-old-master@stop-old-workers")
	if err != nil || c.Step != "stop-old-workers" || c.Name() != "kill-old-master" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	if _, err := Parse("kill-everything"); err == nil || !strings.Contains(err.Error(), `unknown fault "kill-everything" (known: broken-config-on-disk,`) {
		t.Fatalf("unknown fault: %v", err)
	}
	if err := Applies(c.Fault, "spawn-new-master", []string{"kill-workers"}); err == nil ||
		!strings.Contains(err.Error(), "does not have (its steps: kill-workers)") {
		t.Fatalf("Applies: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range Catalogue() {
		if seen[f.Name()] || f.What() == "" || f.At() == "" {
			t.Errorf("fault %q: duplicate, or no description or moment", f.Name())
		}
		seen[f.Name()] = true
	}
	if len(seen) != 13 {
		t.Errorf("%d faults in the catalogue, want the 12 of the design and kill-old-worker", len(seen))
	}
}
