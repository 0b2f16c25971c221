package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		final         *record.Final
		ran, wentDown bool
		want          string
	}{
		{&record.Final{Masters: 1, ServingBinary: "new", Serving: true}, true, false, OutcomeUpgraded},
		{&record.Final{Masters: 1, ServingBinary: "old", Serving: true}, true, false, OutcomeKeptOld},
		{&record.Final{Masters: 1, ServingBinary: "new", Serving: true}, true, true, OutcomeRestarted},
		{&record.Final{Masters: 0, ServingBinary: "none"}, true, true, OutcomeDown},
		{&record.Final{Masters: 2, ServingBinary: "old", Serving: true}, true, false, OutcomeTwoMasters},
		{nil, false, false, OutcomeFailed},
	} {
		if got := OutcomeOf(tc.final, tc.ran, tc.wentDown); got != tc.want {
			t.Errorf("OutcomeOf(%+v, %t, %t) = %s, want %s", tc.final, tc.ran, tc.wentDown, got, tc.want)
		}
	}
}

func TestCompareReport(t *testing.T) {
	f := upgradeFixture()
	f.results = append(f.results, failedWith(2500, 0, "EOF"))
	s := buildFixture(t, f)
	p := NewProcedure("debian-initd", s)
	p.Build, p.ExitCode, p.DurationMs, p.Init = BuildGood, 0, 1234, record.InitDocker
	p.Outcome = OutcomeOf(s.Final, true, false)
	broken := NewProcedure("manual-<signals>", s)
	broken.Build, broken.ExitCode, broken.Outcome = BuildBroken, 1, OutcomeKeptOld
	c := &CompareReport{Schema: record.Schema, From: "a", To: "b", Broken: "c", Load: f.meta.Load, Procedures: []Procedure{p, broken}}
	dir := t.TempDir()
	if err := WriteCompareAll(dir, c); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, record.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for path, keys := range map[string][]string{
		"":                   {"schema", "from", "to", "broken", "load", "procedures"},
		"procedures[]":       {"name", "build", "init", "exit_code", "duration_ms", "dropped", "requests", "final", "outcome"},
		"procedures[].final": {"masters", "serving_binary", "pid_file_pid", "serving"},
	} {
		obj := lookup(t, doc, path)
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("compare report.json %s: no field %q", path, k)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, record.ReportMarkdown))
	if !strings.Contains(string(md), "| debian-initd | good | docker-init | upgraded | 1 | 801 | 1 | eof: 1 | 1234 ms | 0 |") {
		t.Errorf("report.md:\n%s", md)
	}
	html, _ := os.ReadFile(filepath.Join(dir, record.ReportHTML))
	if strings.Contains(string(html), "<signals>") || !strings.Contains(string(html), "manual-&lt;signals&gt;") {
		t.Error("report.html does not escape the procedure name")
	}
}

// A restart caught between two samples, then the postinst's own USR2 of
// the restarted master (measured: systemd-package under systemd).
func TestRestartEvidenceBetweenSamples(t *testing.T) {
	before := proc.Snapshot{Procs: []proc.Process{{PID: 79, PPID: 1, Role: proc.RoleMaster}}}
	samples := []MasterSample{
		{Ms: 1871, Masters: []SampledMaster{{PID: 79, PPID: 1}}},
		{Ms: 5230, Masters: []SampledMaster{{PID: 1050, PPID: 1}}},
		{Ms: 5500, Masters: []SampledMaster{{PID: 1050, PPID: 1}, {PID: 1124, PPID: 1050}}},
		{Ms: 6644, Masters: []SampledMaster{{PID: 1124, PPID: 1}}},
	}
	down, ev := RestartEvidence(before, samples, nil)
	if !down || len(ev) != 1 || !strings.Contains(ev[0], "from 79 to 1050") {
		t.Errorf("RestartEvidence = %t %q, want one restart from 79 to 1050", down, ev)
	}
	// The manual upgrade: the new master is the old one's child.
	samples = []MasterSample{
		{Ms: 1871, Masters: []SampledMaster{{PID: 79, PPID: 1}}},
		{Ms: 2000, Masters: []SampledMaster{{PID: 79, PPID: 1}, {PID: 400, PPID: 79}}},
		{Ms: 4000, Masters: []SampledMaster{{PID: 400, PPID: 1}}},
	}
	if down, ev := RestartEvidence(before, samples, nil); down {
		t.Errorf("a USR2 upgrade taken for a restart: %q", ev)
	}
}
