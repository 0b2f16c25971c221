package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// A repeat-and-compare run as a user runs it: two runs of upgrade per pair,
// keep-alive, against the old build upgraded to itself. The records land in
// DIR/<pair>/<repeat>/upgrade, report.json has the gate, its provenance and
// the comparison, the JUnit file has a case per run and one for the
// comparison, and `report DIR` rebuilds the same verdict from the records.
func TestRepeatAgainstBaseline(t *testing.T) {
	requireDocker(t)
	// Parallel: it runs after every test that is not, beside the few that
	// are (a minute each of waiting on a scenario); each looks only at the
	// containers of its own process (a child's, or this one's once the
	// tests in this process that are not parallel have ended).
	t.Parallel()
	var out, junit, stderr string
	code := judged(t, func(int) (code int) {
		out = t.TempDir()
		junit = filepath.Join(out, "junit.xml")
		code, stderr = run(t, "run", "--scenario", "upgrade", "--repeat", "2", "--keepalive=true",
			"--baseline", "debian:bookworm", "--out", out, "--junit", junit)
		return code
	})
	if code == exitBadInput {
		t.Fatalf("exit 2: %s", stderr)
	}
	for _, d := range []string{"candidate/1/upgrade", "candidate/2/upgrade", "baseline/1/upgrade", "baseline/2/upgrade"} {
		if _, err := os.Stat(filepath.Join(out, d, record.MetaFile)); err != nil {
			t.Errorf("no %s: %v", d, err)
		}
	}
	r, err := record.ReadReport(filepath.Join(out, record.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r.Gate != record.GateBaseline || r.Repeat != 2 || len(r.Scenarios) != 2 || r.Baseline == nil || len(r.Baseline.Scenarios) != 2 ||
		len(r.Comparisons) != 1 || r.Comparisons[0].PValue == nil {
		t.Fatalf("report.json: gate %q repeat %d, %d runs, baseline %v, comparisons %+v", r.Gate, r.Repeat, len(r.Scenarios), r.Baseline != nil, r.Comparisons)
	}
	want := map[string]int{record.VerdictPass: exitPass, record.VerdictFail: exitFail, record.VerdictError: exitInvalid}[r.Verdict]
	if code != want || r.Verdict != r.Comparisons[0].Verdict {
		t.Fatalf("exit %d with verdict %s (comparison %s)", code, r.Verdict, r.Comparisons[0].Verdict)
	}
	p := r.Provenance
	if p == nil || p.DurationS == nil || p.Docker == nil || p.Kernel == "" || len(p.Images) != 2 || p.ConfigSHA256 == "" ||
		!strings.Contains(strings.Join(p.CommandLine, " "), "--baseline debian:bookworm") {
		t.Fatalf("provenance %+v", p)
	}
	for _, im := range p.Images {
		if im.ID == "" || im.Old == nil || im.New == nil || !strings.Contains(im.New.V, "nginx version: nginx/") || len(im.New.SHA256) != 64 {
			t.Fatalf("image provenance %+v", im)
		}
	}
	if r.Scenarios[1].From != "debian:bookworm" || r.Baseline.Scenarios[0].To != "debian:bookworm" || r.Scenarios[0].To != "debian:bookworm-security" ||
		r.Baseline.Scenarios[0].ToBuild == nil || r.Baseline.Scenarios[0].ToBuild.Exact != r.Scenarios[0].FromBuild.Exact {
		t.Errorf("per-run builds: candidate %s → %s, baseline → %s", r.Scenarios[1].From, r.Scenarios[0].To, r.Baseline.Scenarios[0].To)
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Tests int `xml:"tests,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Suites) != 3 || doc.Suites[0].Tests != 2 || doc.Suites[2].Tests != 1 {
		t.Fatalf("junit (%v): %s", err, data)
	}
	md, _ := os.ReadFile(filepath.Join(out, record.ReportMarkdown))
	if first, _, _ := strings.Cut(string(md), "\n"); !strings.HasPrefix(first, "# ✓ PASS") && !strings.HasPrefix(first, "# ✗ FAIL") && !strings.HasPrefix(first, "# ⚠ ERROR") {
		t.Errorf("report.md does not open on its verdict: %q", first)
	}

	// report DIR: the same verdict and figures, recomputed.
	before, _ := os.ReadFile(filepath.Join(out, record.ReportJSON))
	if code2 := realMain([]string{"report", out}, &bytes.Buffer{}, &bytes.Buffer{}); code2 != code {
		t.Fatalf("report DIR exits %d, run exited %d", code2, code)
	}
	after, _ := os.ReadFile(filepath.Join(out, record.ReportJSON))
	var a, b map[string]any
	json.Unmarshal(before, &a)
	json.Unmarshal(after, &b)
	for _, k := range []string{"verdict", "counts", "aggregates", "comparisons"} {
		x, _ := json.Marshal(a[k])
		y, _ := json.Marshal(b[k])
		if !bytes.Equal(x, y) {
			t.Errorf("report DIR changed %s:\n%s\n%s", k, x, y)
		}
	}
	assertNoLeftovers(t)
}
