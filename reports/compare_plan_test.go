package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// planCompare gives a hand-written compare record the plans a compare of
// today writes: each run's plan (from its meta.json, its row and what the
// expectation wants of its build) in compare.json, its digest in meta.json.
func planCompare(t *testing.T, dir string) {
	t.Helper()
	var rec CompareRecord
	if err := readJSONFile(filepath.Join(dir, CompareFile), &rec); err != nil {
		t.Fatal(err)
	}
	for i, run := range rec.Runs {
		sdir := filepath.Join(dir, run.Dir)
		var m record.Meta
		if err := record.ReadJSON(filepath.Join(sdir, record.MetaFile), &m); err != nil {
			t.Fatal(err)
		}
		plan := record.PlanOf(m)
		plan.Source, plan.Row = record.PlanCompare, RowPlanOf(run.Procedure, run.Spec, run.Build, rec.Expect)
		plan = plan.Sealed()
		rec.Runs[i].Plan = &plan
		editMeta(t, sdir, func(m map[string]any) { m["plan_digest"] = plan.Digest })
	}
	writeCompareRecord(t, dir, rec)
}

func writeCompareRecord(t *testing.T, dir string, rec CompareRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CompareFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A compare row's expectation is written once, in compare.json's plan of
// each run: an expectation changed afterwards (here one that would let a
// procedure that took nginx down pass) is error naming the plan, and so
// is a run's meta.json that is not its plan's.
func TestComparePlan(t *testing.T) {
	down := func(f *fixture) { f.final.Masters, f.final.Serving, f.final.ServingBinary = 0, false, "none" }
	build := func(t *testing.T, edit func(dir string, rec *CompareRecord)) *CompareReport {
		e, err := ParseCompareExpect("default")
		if err != nil {
			t.Fatal(err)
		}
		dir := writeCompare(t, e, 1, []compareRun{{BuildGood, 0, down}, {BuildBroken, 1, nil}})
		planCompare(t, dir)
		if edit != nil {
			var rec CompareRecord
			if err := readJSONFile(filepath.Join(dir, CompareFile), &rec); err != nil {
				t.Fatal(err)
			}
			edit(dir, &rec)
			writeCompareRecord(t, dir, rec)
		}
		c, err := BuildCompare(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("as planned: the procedure that took nginx down fails", func(t *testing.T) {
		if c := build(t, nil); c.Verdict != record.VerdictFail {
			t.Fatalf("verdict %s", c.Verdict)
		}
	})
	t.Run("the expectation changed after the run: error", func(t *testing.T) {
		c := build(t, func(_ string, rec *CompareRecord) {
			be := rec.Expect.Builds[BuildGood]
			be.Outcomes = append(be.Outcomes, OutcomeDown)
			rec.Expect.Builds[BuildGood] = be
		})
		if c.Verdict != record.VerdictError || !withReason(rowReasons(c), "compare.json's plan") {
			t.Fatalf("verdict %s, reasons %q: want error naming compare.json's plan", c.Verdict, rowReasons(c))
		}
	})
	t.Run("a run's meta.json not its plan's: error", func(t *testing.T) {
		c := build(t, func(dir string, rec *CompareRecord) {
			editMeta(t, filepath.Join(dir, rec.Runs[1].Dir), func(m map[string]any) { m["steady_ms"] = 0 }) // the broken build's, which passed
		})
		row := c.Procedures[1]
		if row.Judged != record.VerdictError || !withReason(row.JudgedReasons, "steady_ms", "compare.json") {
			t.Fatalf("the broken build's row: %s, reasons %q: want error naming steady_ms and compare.json", row.Judged, row.JudgedReasons)
		}
	})
}

func rowReasons(c *CompareReport) []string {
	var out []string
	for _, p := range c.Procedures {
		out = append(out, p.JudgedReasons...)
	}
	for _, s := range c.Summary {
		out = append(out, s.Reasons...)
	}
	return out
}

// A worker that crashed during a procedure fails its row under --expect,
// though it ended as expected and lost nothing.
func TestCompareRowWithACrash(t *testing.T) {
	crash := func(f *fixture) {
		f.events[1].LogLines = []string{"2026/01/01 00:00:00 [alert] 12#12: worker process 57 exited on signal 11"}
	}
	e, err := ParseCompareExpect("default")
	if err != nil {
		t.Fatal(err)
	}
	c, err := BuildCompare(writeCompare(t, e, 1, []compareRun{{BuildGood, 0, crash}, {BuildBroken, 1, nil}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Verdict != record.VerdictFail || !withReason(rowReasons(c), "worker process 57", "signal 11") {
		t.Fatalf("verdict %s, reasons %q: want fail naming the crash", c.Verdict, rowReasons(c))
	}
}
