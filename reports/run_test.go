package reports

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// writeRepeat writes run k of pair with drops failed requests (EOF) in the
// draining phase; invalid omits its end marker (an error verdict).
func writeRepeat(t *testing.T, dir, pair string, k, drops int, invalid bool) {
	t.Helper()
	f := upgradeFixture()
	for i := range drops {
		f.results = append(f.results, failedWith(4100+float64(i)*10+5, 0, "EOF"))
	}
	if invalid {
		f.omit = []string{record.EndFile}
	}
	writeFixture(t, record.RepeatDir(dir, pair, k), "upgrade", f)
}

func writePlan(t *testing.T, dir string, p record.RunPlan) {
	t.Helper()
	data, _ := json.Marshal(p)
	if err := os.WriteFile(filepath.Join(dir, record.PlanFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func repeatRun(t *testing.T, cand, base []int, invalidBase int) *record.Report {
	t.Helper()
	dir := t.TempDir()
	writePlan(t, dir, record.RunPlan{Repeat: len(cand), From: "debian:1.22.1-9", To: "debian:1.22.1-10", Baseline: "debian:1.22.1-9",
		Scenarios: []string{"upgrade"}, Alpha: judge.Alpha})
	for k, d := range cand {
		writeRepeat(t, dir, record.PairCandidate, k+1, d, false)
	}
	for k, d := range base {
		writeRepeat(t, dir, record.PairBaseline, k+1, d, k+1 == invalidBase)
	}
	r, err := BuildRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	// report DIR rebuilds the same from the records: nothing is copied.
	if err := render.WriteAll(dir, r); err != nil {
		t.Fatal(err)
	}
	again, err := BuildRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Verdict != r.Verdict || len(again.Scenarios) != len(r.Scenarios) {
		t.Fatalf("rebuilt %s/%d, first %s/%d", again.Verdict, len(again.Scenarios), r.Verdict, len(r.Scenarios))
	}
	return r
}

// Keep-alive traffic loses a few requests on both pairs: as many on the
// candidate as on the baseline passes the gate, though every run fails on
// its own; many more fails it; a baseline run that is invalid makes the
// comparison an error.
func TestBaselineGate(t *testing.T) {
	r := repeatRun(t, []int{1, 0, 1}, []int{1, 1, 0}, 0)
	if r.Gate != record.GateBaseline || r.Verdict != record.VerdictPass || r.Counts != (record.Counts{Pass: 1}) {
		t.Fatalf("same drops: gate %s verdict %s counts %+v; comparisons %+v", r.Gate, r.Verdict, r.Counts, r.Comparisons)
	}
	if len(r.Scenarios) != 3 || r.Scenarios[2].Pair != record.PairCandidate || r.Scenarios[2].Repeat != 3 || len(r.Baseline.Scenarios) != 3 {
		t.Fatalf("runs: %d candidate (last %s #%d), baseline %+v", len(r.Scenarios), r.Scenarios[2].Pair, r.Scenarios[2].Repeat, r.Baseline)
	}
	c := r.Comparisons[0]
	if c.Test != record.TestExactRate || c.PValue == nil || *c.PValue < judge.Alpha || c.Candidate.Dropped != 2 || c.Baseline.Dropped != 2 {
		t.Fatalf("comparison %+v", c)
	}
	if a := c.Candidate; a.DropsPer10k == nil || a.CI95 == nil || a.CI95.Low > *a.DropsPer10k || a.CI95.High < *a.DropsPer10k || a.StallMs == nil {
		t.Fatalf("aggregate %+v", a)
	}

	r = repeatRun(t, []int{8, 9, 10}, []int{0, 1, 0}, 0)
	if r.Verdict != record.VerdictFail || !strings.Contains(strings.Join(r.Comparisons[0].Reasons, " "), "significantly more") {
		t.Fatalf("27 against 1: verdict %s, %q", r.Verdict, r.Comparisons[0].Reasons)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	var b strings.Builder
	if err := render.WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatalf("junit: %v\n%s", err, b.String())
	}
	if len(doc.Suites) != 3 || len(doc.Suites[0].Cases) != 3 || doc.Suites[0].Cases[1].Name != "upgrade #2" ||
		doc.Suites[2].Failures != 1 || doc.Suites[2].Cases[0].Failure == nil ||
		!strings.Contains(doc.Suites[2].Cases[0].Failure.Message, "significantly more") {
		t.Fatalf("junit:\n%s", b.String())
	}

	r = repeatRun(t, []int{0, 0}, []int{0, 0}, 2)
	if r.Verdict != record.VerdictError || !strings.Contains(strings.Join(r.Comparisons[0].Reasons, " "), "baseline run 2 is invalid") {
		t.Fatalf("invalid baseline run: verdict %s, %q", r.Verdict, r.Comparisons[0].Reasons)
	}
}

// Without a baseline the gate is every run's own verdict, and a planned
// repeat that never ran is an error.
func TestRepeatsWithoutBaseline(t *testing.T) {
	dir := t.TempDir()
	writePlan(t, dir, record.RunPlan{Repeat: 3, From: "a", To: "b", Scenarios: []string{"upgrade"}})
	writeRepeat(t, dir, record.PairCandidate, 1, 0, false)
	writeRepeat(t, dir, record.PairCandidate, 2, 0, false)
	r, err := BuildRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Gate != record.GateScenarios || r.Verdict != record.VerdictError || r.Counts != (record.Counts{Pass: 2, Error: 1}) {
		t.Fatalf("2 of 3 runs: gate %s verdict %s counts %+v", r.Gate, r.Verdict, r.Counts)
	}
	writeRepeat(t, dir, record.PairCandidate, 3, 1, false)
	if r, _ = BuildRun(dir); r.Verdict != record.VerdictFail || r.Counts != (record.Counts{Pass: 2, Fail: 1}) {
		t.Fatalf("a run dropped one: verdict %s counts %+v", r.Verdict, r.Counts)
	}
}

// report.json: the top-level gate fields, per-scenario builds and
// thresholds, and null where a value does not exist.
func TestReportJSONTopLevelAndNulls(t *testing.T) {
	dir := t.TempDir()
	f := upgradeFixture()
	f.events[2].Verified, f.events[2].VerifiedMs = false, 0
	writeFixture(t, dir, "upgrade", f)
	r, err := BuildRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.WriteAll(dir, r); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, record.ReportJSON))
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"verdict", "counts", "provenance", "gate", "aggregates", "baseline", "comparisons"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report.json has no %q", k)
		}
	}
	if doc["provenance"] != nil || doc["baseline"] != nil {
		t.Errorf("provenance %v, baseline %v: want null when not recorded", doc["provenance"], doc["baseline"])
	}
	sc := lookup(t, doc, "scenarios[]")
	if sc["from"] != "debian:1.22.1-9" || sc["to"] != "debian:1.22.1-10" {
		t.Errorf("scenario builds %v → %v", sc["from"], sc["to"])
	}
	th := lookup(t, doc, "scenarios[].thresholds")
	if th["max_stall_ms"] != 1000.0 || th["min_rate_fraction"] != judge.MinRateFraction || th["expect_drops"] != nil {
		t.Errorf("thresholds %v", th)
	}
	steps := sc["steps"].([]any)
	if last := steps[2].(map[string]any); last["verified_ms"] != nil {
		t.Errorf("a step that never verified has verified_ms %v, want null", last["verified_ms"])
	}
}

// Positive controls are compared on how often their runs fail their own
// verdict; broken-build, run on the candidate side only, keeps its own.
func TestBaselineGateForControls(t *testing.T) {
	runs := func(pair, name, expect string, verdicts ...string) []record.Scenario {
		var out []record.Scenario
		for i, v := range verdicts {
			out = append(out, record.Scenario{Name: name, Expect: expect, Verdict: v, Pair: pair, Repeat: i + 1,
				Requests: record.Requests{Total: 2000}, Dropped: 5, Reasons: []string{"why " + v}})
		}
		return out
	}
	judgeOf := func(cand, base []string) record.Comparison {
		r := &record.Report{Scenarios: runs(record.PairCandidate, "term-fallback", record.ExpectDrops, cand...),
			Baseline: &record.Baseline{Scenarios: runs(record.PairBaseline, "term-fallback", record.ExpectDrops, base...)}}
		judge.Run(r, &record.RunPlan{Repeat: len(cand), Baseline: "b", Alpha: judge.Alpha})
		return r.Comparisons[0]
	}
	if c := judgeOf([]string{"fail", "fail", "pass", "fail", "fail"}, []string{"fail", "pass", "fail", "pass", "fail"}); c.Verdict != record.VerdictPass || c.Test != record.TestFailRate {
		t.Errorf("4/5 against 3/5: %s (%s), %q", c.Verdict, c.Test, c.Reasons)
	}
	if c := judgeOf([]string{"fail", "fail", "fail", "fail", "fail"}, []string{"pass", "pass", "pass", "pass", "pass"}); c.Verdict != record.VerdictFail {
		t.Errorf("5/5 against 0/5: %s, %q", c.Verdict, c.Reasons)
	}
	if c := judgeOf([]string{"pass", "pass"}, []string{"pass", "error"}); c.Verdict != record.VerdictError {
		t.Errorf("an invalid baseline run: %s, %q", c.Verdict, c.Reasons)
	}
	r := &record.Report{Scenarios: runs(record.PairCandidate, "broken-build", record.ExpectZeroDrops, "pass", "fail"), Baseline: &record.Baseline{}}
	judge.Run(r, &record.RunPlan{Repeat: 2, Baseline: "b", CandidateOnly: []string{"broken-build"}})
	if c := r.Comparisons[0]; c.Test != record.TestOwnVerdicts || c.Verdict != record.VerdictFail || r.Verdict != record.VerdictFail {
		t.Errorf("broken-build with a failed run: %+v, report %s", c, r.Verdict)
	}
}
