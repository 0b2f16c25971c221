package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// What a scenario was meant to do is written once, in run.json, with a
// digest (issue 30, item 1): meta.json is not believed on its own word. The
// real run's record is given the plan a run of today writes (from its own
// meta.json, sealed, its digest in meta.json), then one fact of meta.json,
// events.jsonl or run.json is changed: each is error naming the field.

// planRealRun writes into the copy's run.json the plan of its scenario as
// meta.json states it, and the plan's digest into meta.json: the record a
// run of today would have written.
func planRealRun(t *testing.T, runDir, dir string) {
	t.Helper()
	var m record.Meta
	if err := record.ReadJSON(filepath.Join(dir, record.MetaFile), &m); err != nil {
		t.Fatal(err)
	}
	plan := record.PlanOf(m)
	plan.Source = record.PlanCatalogue
	plan = plan.Sealed()
	var run record.RunPlan
	if err := record.ReadJSON(filepath.Join(runDir, record.PlanFile), &run); err != nil {
		t.Fatal(err)
	}
	run.Plans = []record.ScenarioPlan{plan}
	data, err := json.Marshal(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(runDir, record.PlanFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	editMeta(t, dir, func(m map[string]any) { m["plan_digest"] = plan.Digest })
}

// reportOf builds the run as `report DIR` does, and returns its scenario.
func reportOf(t *testing.T, runDir string) record.Scenario {
	t.Helper()
	r, err := BuildRun(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 1 {
		t.Fatalf("%d scenarios", len(r.Scenarios))
	}
	return r.Scenarios[0]
}

// The final state is judged in the checker from final.json's processes
// and what the scenario must end on (meta.json final_want, as a run of
// today writes it), not from the check_errors the runner left there.
func TestDoctoredFinalState(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(f map[string]any)
		want string
	}{
		{"two masters, .oldbin left behind, an orphan", func(f map[string]any) {
			f["masters"] = 2
			f["oldbin_present"] = true
			procs := f["processes"].([]any)
			procs = append(procs,
				map[string]any{"pid": 44, "ppid": 1, "role": "master", "state": "S", "binary": "old"},
				map[string]any{"pid": 45, "ppid": 44, "role": "worker-shutting-down", "state": "S", "binary": "old"},
				map[string]any{"pid": 46, "ppid": 43, "role": "worker", "state": "S", "binary": "old"})
			f["processes"] = procs
		}, "want one master at the end"},
		{"the old binary serving", func(f map[string]any) {
			for _, p := range f["processes"].([]any) {
				p.(map[string]any)["binary"] = "old"
			}
			f["serving_binary"] = "old"
		}, "want the new binary serving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := copyRealRun(t)
			editMeta(t, dir, func(m map[string]any) { m["final_want"] = map[string]any{"binary": "new"} })
			path := filepath.Join(dir, record.FinalFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f := map[string]any{}
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			tc.edit(f)
			if data, err = json.Marshal(f); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			s := judged(t, dir)
			if s.Verdict != record.VerdictFail || len(naming(s.Reasons, tc.want)) == 0 {
				t.Fatalf("verdict %s, reasons %q: want fail, %q", s.Verdict, s.Reasons, tc.want)
			}
		})
	}
	// As written: the recomputed end is the runner's, a pass.
	t.Run("untouched", func(t *testing.T) {
		_, dir := copyRealRun(t)
		editMeta(t, dir, func(m map[string]any) { m["final_want"] = map[string]any{"binary": "new"} })
		if s := judged(t, dir); s.Verdict != record.VerdictPass {
			t.Fatalf("verdict %s, reasons %q", s.Verdict, s.Reasons)
		}
	})
}

func TestDoctoredPlan(t *testing.T) {
	t.Run("planned and untouched: pass", func(t *testing.T) {
		runDir, dir := copyRealRun(t)
		planRealRun(t, runDir, dir)
		if s := reportOf(t, runDir); s.Verdict != record.VerdictPass || len(naming(s.Notes, "run.json")) != 0 {
			t.Fatalf("verdict %s, reasons %q, notes %q: want pass, no note of a missing plan", s.Verdict, s.Reasons, s.Notes)
		}
	})
	// A record of an older version (run.json without plans, as the real
	// run's): judged as before, with a note naming the checks not made.
	t.Run("older record: no plan", func(t *testing.T) {
		runDir, _ := copyRealRun(t)
		s := reportOf(t, runDir)
		if s.Verdict != record.VerdictPass || len(naming(s.Notes, "run.json holds no plan")) != 1 {
			t.Fatalf("verdict %s, notes %q: want pass with one note that the plan could not be checked", s.Verdict, s.Notes)
		}
	})
	for _, tc := range []struct {
		name, field string
		edit        func(t *testing.T, runDir, dir string)
	}{
		{"a positive control's expectation on upgrade", "expect", func(t *testing.T, _, dir string) {
			editMeta(t, dir, func(m map[string]any) {
				m["expect"] = "drops"
				m["expect_drops"] = map[string]any{"phase": "both-sets", "classes": []string{"reset"}, "optional": true}
			})
		}},
		{"no stall limit", "max_stall_ms", func(t *testing.T, _, dir string) {
			editMeta(t, dir, func(m map[string]any) { m["max_stall_ms"] = 0 })
		}},
		{"a load rate of 0", "load.rate", func(t *testing.T, _, dir string) {
			editMeta(t, dir, func(m map[string]any) { m["load"].(map[string]any)["rate"] = 0 })
		}},
		{"planned steps gone", "planned_steps", func(t *testing.T, _, dir string) {
			editMeta(t, dir, func(m map[string]any) { delete(m, "planned_steps") })
		}},
		{"a step event relabelled", "events.jsonl", func(t *testing.T, _, dir string) {
			editEvents(t, dir, func(e *record.Event) {
				if e.Name == "stop-old-workers" {
					e.Name = "reload-config"
				}
			})
		}},
		{"run.json's plan changed after it was written", "digest", func(t *testing.T, runDir, _ string) {
			path := filepath.Join(runDir, record.PlanFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data = []byte(strings.Replace(string(data), `"max_stall_ms":1000`, `"max_stall_ms":0`, 1))
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"another plan's digest in meta.json", "plan_digest", func(t *testing.T, _, dir string) {
			editMeta(t, dir, func(m map[string]any) { m["plan_digest"] = strings.Repeat("0", 64) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir, dir := copyRealRun(t)
			planRealRun(t, runDir, dir)
			tc.edit(t, runDir, dir)
			s := reportOf(t, runDir)
			if s.Verdict != record.VerdictError || len(naming(s.Reasons, tc.field)) == 0 {
				t.Fatalf("verdict %s, reasons %q: want error naming %s", s.Verdict, s.Reasons, tc.field)
			}
		})
	}
}
