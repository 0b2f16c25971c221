package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// testMatrix is a four-cell matrix: two builds × two traffic kinds.
func testMatrix() *MatrixPlan {
	p := &MatrixPlan{Schema: record.Schema, File: "m.yaml", Digest: "d1", Load: record.Load{Rate: 100, Method: "GET"}, Excluded: []string{}}
	for i, c := range []struct{ to, traffic string }{{"b1", "http1"}, {"b1", "http2"}, {"b2", "http1"}, {"b2", "http2"}} {
		p.Cells = append(p.Cells, MatrixCell{Index: i, ID: c.to + "_" + c.traffic, Key: "to#" + c.to + " " + c.traffic,
			From: "a", To: c.to, Config: "default", Traffic: []string{c.traffic}, Faults: []string{}, Scenarios: []string{"upgrade"}})
	}
	return p
}

// writeCell writes cell id's records under dir: a clean upgrade, or one
// that lost drops requests.
func writeCell(t *testing.T, dir, id string, drops int) {
	t.Helper()
	f := upgradeFixture()
	for i := range drops {
		f.results = append(f.results, failedWith(4100+float64(i)*10+5, 0, "EOF"))
	}
	writeFixture(t, CellDir(dir, id), "upgrade", f)
}

// writeShard writes shard i of n of testMatrix into dir with the given drops
// per cell id.
func writeShard(t *testing.T, dir string, shard *Shard, drops map[string]int) {
	t.Helper()
	p := testMatrix()
	p.Shard, p.Run = shard, []string{}
	for _, c := range p.Cells {
		if shard.Owns(c.Index) {
			p.Run = append(p.Run, c.ID)
			writeCell(t, dir, c.ID, drops[c.ID])
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteMatrixPlan(dir, p); err != nil {
		t.Fatal(err)
	}
}

func TestShardsPartitionTheMatrix(t *testing.T) {
	for n := 1; n <= 5; n++ {
		seen := map[int]int{}
		for i := 1; i <= n; i++ {
			s := &Shard{Index: i, Count: n}
			for c := 0; c < 11; c++ {
				if s.Owns(c) {
					seen[c]++
				}
			}
		}
		for c := 0; c < 11; c++ {
			if seen[c] != 1 {
				t.Errorf("%d shards: cell %d is run by %d shards, want exactly 1", n, c, seen[c])
			}
		}
	}
}

func TestMatrixReportRecomputesEachCell(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, dir, nil, map[string]int{"b2_http1": 3})
	// The cell b2_http2 never ran: no folder.
	if err := os.RemoveAll(CellDir(dir, "b2_http2")); err != nil {
		t.Fatal(err)
	}
	r, err := RenderMatrix(dir, MatrixOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b1_http1": record.VerdictPass, "b1_http2": record.VerdictPass, "b2_http1": record.VerdictFail, "b2_http2": record.VerdictError}
	if len(r.Cells) != 4 {
		t.Fatalf("got %d cells, want 4", len(r.Cells))
	}
	for _, c := range r.Cells {
		if c.Verdict != want[c.ID] {
			t.Errorf("cell %s: verdict %s, want %s (%v)", c.ID, c.Verdict, want[c.ID], c.Reasons)
		}
	}
	if r.Cells[2].Dropped != 3 {
		t.Errorf("b2_http1 dropped %d, want 3", r.Cells[2].Dropped)
	}
	if r.Cells[3].Error != NotRunInterrupted {
		t.Errorf("the cell that never ran says %q, want %q", r.Cells[3].Error, NotRunInterrupted)
	}
	if r.Verdict != record.VerdictFail || r.Counts != (record.Counts{Pass: 2, Fail: 1, Error: 1}) {
		t.Errorf("verdict %s %+v, want fail {2 1 1}", r.Verdict, r.Counts)
	}
	if r.Cells[0].StallMs == nil || r.Cells[0].Report != "cells/b1_http1/report.md" {
		t.Errorf("cell 0: stall %v report %q", r.Cells[0].StallMs, r.Cells[0].Report)
	}
	// The drill-down exists and the top-level table links it.
	if _, err := os.Stat(filepath.Join(dir, "cells", "b1_http1", record.ReportJSON)); err != nil {
		t.Errorf("the cell's own report was not written: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, record.ReportMarkdown))
	if !strings.Contains(string(md), "(cells/b1_http1/report.md)") {
		t.Errorf("report.md does not link the cell's report:\n%s", md)
	}
	html, _ := os.ReadFile(filepath.Join(dir, record.ReportHTML))
	if !strings.Contains(string(html), `href="cells/b1_http1/report.html"`) {
		t.Errorf("report.html does not link the cell's report")
	}
}

func TestMergeRecomputesAndAgreesWithOneRun(t *testing.T) {
	root := t.TempDir()
	drops := map[string]int{"b1_http2": 2}
	whole := filepath.Join(root, "whole")
	writeShard(t, whole, nil, drops)
	one, err := RenderMatrix(whole, MatrixOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := filepath.Join(root, "s1"), filepath.Join(root, "s2")
	writeShard(t, s1, &Shard{Index: 1, Count: 2}, drops)
	writeShard(t, s2, &Shard{Index: 2, Count: 2}, drops)
	if _, err := RenderMatrix(s1, MatrixOptions{Write: true}); err != nil {
		t.Fatal(err)
	}
	// Tamper with a stored verdict: shard 2 claims its failing cell passed,
	// in the cell's report.json and in the shard's own.
	for _, p := range []string{filepath.Join(CellDir(s2, "b1_http2"), record.ReportJSON), filepath.Join(s2, record.ReportJSON)} {
		if err := os.WriteFile(p, []byte(`{"schema":1,"verdict":"pass","cells":[{"id":"b1_http2","verdict":"pass"}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := MergeMatrix(filepath.Join(root, "merged"), []string{s1, s2})
	if err != nil {
		t.Fatal(err)
	}
	if len(merged.Cells) != len(one.Cells) {
		t.Fatalf("merged has %d cells, the single run %d", len(merged.Cells), len(one.Cells))
	}
	for i := range one.Cells {
		a, b := one.Cells[i], merged.Cells[i]
		if a.ID != b.ID || a.Verdict != b.Verdict || a.Dropped != b.Dropped {
			t.Errorf("cell %d: single run %s %s dropped %d, merged %s %s dropped %d", i, a.ID, a.Verdict, a.Dropped, b.ID, b.Verdict, b.Dropped)
		}
	}
	if merged.Cells[1].Verdict != record.VerdictFail {
		t.Errorf("the tampered verdict was copied: merged cell b1_http2 is %s, its records say fail", merged.Cells[1].Verdict)
	}
	if merged.Verdict != record.VerdictFail || merged.Matrix.Shard != nil || len(merged.Matrix.MergedFrom) != 2 {
		t.Errorf("merged: verdict %s shard %v from %v", merged.Verdict, merged.Matrix.Shard, merged.Matrix.MergedFrom)
	}
}

func TestMergeNamesMissingCellsAndRefusesOtherMatrices(t *testing.T) {
	root := t.TempDir()
	s1 := filepath.Join(root, "s1")
	writeShard(t, s1, &Shard{Index: 1, Count: 2}, nil)
	merged, err := MergeMatrix(filepath.Join(root, "merged"), []string{s1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range merged.Cells {
		if c.Index%2 == 1 && (c.Verdict != record.VerdictError || c.Error != NotRunByShard) {
			t.Errorf("cell %s no shard ran: %s %q, want error %q", c.ID, c.Verdict, c.Error, NotRunByShard)
		}
	}
	if merged.Verdict != record.VerdictError {
		t.Errorf("verdict %s, want error: half the matrix did not run", merged.Verdict)
	}

	other := filepath.Join(root, "other")
	writeShard(t, other, &Shard{Index: 2, Count: 2}, nil)
	p, _, _ := ReadMatrixPlan(other)
	p.Digest = "d2"
	if err := WriteMatrixPlan(other, p); err != nil {
		t.Fatal(err)
	}
	if _, err := MergeMatrix(filepath.Join(root, "m2"), []string{s1, other}); err == nil || !strings.Contains(err.Error(), "another matrix") {
		t.Errorf("shards of two matrices merged: %v", err)
	}
	if _, err := MergeMatrix(filepath.Join(root, "m3"), []string{s1, s1}); err == nil || !strings.Contains(err.Error(), "run by both") {
		t.Errorf("the same shard twice merged: %v", err)
	}
}

func TestTrendFlagsWhatGotWorse(t *testing.T) {
	root := t.TempDir()
	var dirs []string
	var runs []*MatrixReport
	for i, drops := range []map[string]int{{}, {}, {"b2_http1": 4}} {
		dir := filepath.Join(root, string(rune('a'+i)))
		writeShard(t, dir, nil, drops)
		r, err := BuildMatrix(dir, MatrixOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dirs, runs = append(dirs, dir), append(runs, r)
	}
	tr, err := BuildTrend(dirs, runs)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Worse != 1 {
		t.Errorf("worse %d, want 1", tr.Worse)
	}
	var b strings.Builder
	if err := WriteTrendMarkdown(&b, tr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "FAIL ▲, 4 ▲") {
		t.Errorf("the worse cell is not marked:\n%s", b.String())
	}
	if strings.Count(b.String(), "▲") != 2+1 { // the legend's, and the cell's two
		t.Errorf("want only the one cell marked:\n%s", b.String())
	}
	if _, err := BuildTrend(dirs[:1], runs[:1]); err == nil {
		t.Errorf("a trend of one run: want an error")
	}
}

// A cell whose new build rejects its configuration tree fails with nginx's
// line (no scenario ran); a scenario its tree cannot prove, recorded as not
// run, is named and does not make the cell an error — one that simply left
// no record still does.
func TestMatrixCellFindingAndNotRun(t *testing.T) {
	dir := t.TempDir()
	p := testMatrix()
	p.Cells[1].Scenarios = []string{"upgrade", "term-fallback"}
	p.Cells[3].Scenarios = []string{"upgrade", "term-fallback"}
	p.Cells = append(p.Cells, MatrixCell{Index: 4, ID: "b1_only", Key: "to#b1 http1 kill", From: "a", To: "b1", Config: "tree",
		Traffic: []string{"http1"}, Faults: []string{}, Scenarios: []string{"kill-fallback"}})
	p.Run = []string{}
	for _, c := range p.Cells {
		p.Run = append(p.Run, c.ID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteMatrixPlan(dir, p); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b1_http1", "b1_http2", "b2_http2"} {
		writeCell(t, dir, id, 0)
	}
	start := time.Now()
	finding := `broken build: the new build rejects the configuration tree the old build serves ([emerg] unknown directive "gzip" in /etc/nginx/nginx.conf:46); no scenario run`
	for _, rec := range []CellRecord{
		{ID: "b1_http1", Engine: "e"},
		{ID: "b1_http2", Engine: "e", NotRun: []string{"term-fallback: its positive control is measured on long downloads"}},
		{ID: "b2_http1", Engine: "e", Finding: finding},
		{ID: "b2_http2", Engine: "e"},
		{ID: "b1_only", Engine: "e", NotRun: []string{"kill-fallback: no long downloads"}},
	} {
		if err := os.MkdirAll(CellDir(dir, rec.ID), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := CellRecordEndWith(CellDir(dir, rec.ID), rec, start); err != nil {
			t.Fatal(err)
		}
	}
	r, err := RenderMatrix(dir, MatrixOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b1_http1": record.VerdictPass, "b1_http2": record.VerdictPass, "b2_http1": record.VerdictFail, "b2_http2": record.VerdictError, "b1_only": record.VerdictError}
	for _, c := range r.Cells {
		if c.Verdict != want[c.ID] {
			t.Errorf("cell %s: verdict %s, want %s (%v)", c.ID, c.Verdict, want[c.ID], c.Reasons)
		}
	}
	if got := r.Cells[4].Error; !strings.HasPrefix(got, "not run against this configuration: kill-fallback: no long downloads") {
		t.Errorf("a cell with nothing it could run says %q", got)
	}
	if got := r.Cells[2].Reasons; len(got) != 1 || got[0] != finding {
		t.Errorf("the finding cell's reasons are %q, want nginx's line", got)
	}
	if len(r.Cells[1].NotRun) != 1 {
		t.Errorf("the cell with a scenario not run names it: %v", r.Cells[1].NotRun)
	}
	md, _ := os.ReadFile(filepath.Join(dir, record.ReportMarkdown))
	for _, s := range []string{"## Not run against the cell's configuration", "`b1_http2`: term-fallback", `unknown directive "gzip"`} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q:\n%s", s, md)
		}
	}
}

// A matrix cell writes its own run.json (the plans of its scenarios); the
// matrix report holds each cell's records against it, as a run's report
// does: a meta.json changed after the plan was written is an error cell
// naming the field.
func TestMatrixCellHeldAgainstItsPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(m map[string]any)
		verdict string
		naming  string
	}{
		{"as planned", func(m map[string]any) {}, record.VerdictPass, ""},
		{"max_stall_ms raised after the plan", func(m map[string]any) { m["max_stall_ms"] = 1e9 }, record.VerdictError, "max_stall_ms"},
		{"expect changed after the plan", func(m map[string]any) { m["expect"] = record.ExpectDrops }, record.VerdictError, "expect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShard(t, dir, nil, nil)
			sdir := filepath.Join(CellDir(dir, "b1_http1"), "upgrade")
			var meta record.Meta
			if err := record.ReadJSON(filepath.Join(sdir, record.MetaFile), &meta); err != nil {
				t.Fatal(err)
			}
			plan := record.PlanOf(meta)
			plan.Scenario, plan.Source = "upgrade", record.PlanCatalogue
			plan = plan.Sealed()
			editMeta(t, sdir, func(m map[string]any) {
				m["scenario"], m["plan_digest"] = "upgrade", plan.Digest
				tc.edit(m)
			})
			data, _ := json.Marshal(record.RunPlan{Repeat: 1, Scenarios: []string{"upgrade"}, Plans: []record.ScenarioPlan{plan}})
			if err := os.WriteFile(filepath.Join(CellDir(dir, "b1_http1"), record.PlanFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := RenderMatrix(dir, MatrixOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := r.Cells[0]
			if c.ID != "b1_http1" || c.Verdict != tc.verdict || tc.naming != "" && !withReason(c.Reasons, record.PlanFile, tc.naming) {
				t.Fatalf("cell %s: verdict %s, reasons %q: want %s naming %s", c.ID, c.Verdict, c.Reasons, tc.verdict, tc.naming)
			}
		})
	}
}
