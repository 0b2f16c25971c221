package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// witnessFixture writes the server's log of f as nginx would: one line per
// request and download, each under its id; skip leaves some out.
func writeWitness(t *testing.T, dir string, f fixture, skip map[string]bool, extra ...record.ServerEntry) {
	t.Helper()
	var lines []record.ServerEntry
	startMs := float64(testStart.UnixNano()) / 1e6
	for i, r := range f.results {
		id := loadgen.RequestID("load", uint64(i))
		if skip[id] {
			continue
		}
		ms := float64(r.Timestamp.Sub(testStart).Milliseconds())
		pid := 10
		if ms >= 2100 {
			pid = 20
		}
		lines = append(lines, record.ServerEntry{ID: id, PID: pid, Status: 200, BodyBytesSent: 612, ContentLength: "612", Msec: (startMs + ms + 1) / 1000})
	}
	for _, d := range f.downloads {
		if skip["slow/"+strconv.Itoa(d.ID)] {
			continue
		}
		lines = append(lines, record.ServerEntry{ID: "slow/" + strconv.Itoa(d.ID), PID: 10, Status: 200, BodyBytesSent: d.Received, ContentLength: strconv.FormatInt(d.Expected, 10), Msec: (startMs + d.EndMs) / 1000})
	}
	lines = append(lines, extra...)
	writeJSONLFile(t, filepath.Join(dir, record.ServerLogFile), lines)
	writeJSONLFile(t, filepath.Join(dir, record.ProcessesFile), []record.ProcessSample{
		{Ms: 0, At: "start", Procs: []record.FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker"}}},
		{Ms: 2100, At: "after spawn-new-master", Procs: []record.FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker"},
			{PID: 19, PPID: 9, Role: "master", Binary: "new"}, {PID: 20, PPID: 19, Role: "worker"}}},
	})
	st, _ := os.Stat(filepath.Join(dir, record.ServerLogFile))
	data, _ := json.Marshal(record.WitnessRead{SizeBytes: st.Size(), ReadBytes: st.Size()})
	os.WriteFile(filepath.Join(dir, record.WitnessFile), data, 0o644)
}

func witnessScenario(t *testing.T, f fixture, skip map[string]bool, extra ...record.ServerEntry) *record.Scenario {
	t.Helper()
	for i := range f.results {
		f.results[i].Attack, f.results[i].Seq = "load", uint64(i)
	}
	dir := writeFixture(t, t.TempDir(), "scenario", f)
	writeWitness(t, dir, f, skip, extra...)
	s, _, err := BuildScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWitnessInTheVerdict(t *testing.T) {
	t.Run("complete: passes, and says who served", func(t *testing.T) {
		s := witnessScenario(t, upgradeFixture(), nil)
		if s.Verdict != record.VerdictPass || s.Witness == nil || !s.Witness.Complete {
			t.Fatalf("verdict %s %q, witness %+v", s.Verdict, s.Reasons, s.Witness)
		}
		if len(s.Witness.Generations) != 2 || s.Witness.Generations[0].Name != "old-1" || s.Witness.Generations[1].Name != "new-1" {
			t.Fatalf("generations %+v", s.Witness.Generations)
		}
		if got := phaseNamed(t, s, "steady").ByGeneration["old-1"]; got != 200 {
			t.Fatalf("steady answered by old-1: %d, want the 200 requests of the steady phase", got)
		}
		if s.Timeline == nil || len(s.Timeline.Generations) != 2 {
			t.Fatalf("timeline bands %+v", s.Timeline)
		}
	})
	t.Run("an ok request absent from the log: error, never pass", func(t *testing.T) {
		s := witnessScenario(t, upgradeFixture(), map[string]bool{"load/17": true})
		if s.Verdict != record.VerdictError || !strings.Contains(strings.Join(s.Reasons, " "), "load/17") {
			t.Fatalf("verdict %s %q", s.Verdict, s.Reasons)
		}
	})
	t.Run("a logged id the client never sent: error", func(t *testing.T) {
		s := witnessScenario(t, upgradeFixture(), nil, record.ServerEntry{ID: "load/99999", PID: 10, Status: 200})
		if s.Verdict != record.VerdictError || !strings.Contains(strings.Join(s.Reasons, " "), "load/99999") {
			t.Fatalf("verdict %s %q", s.Verdict, s.Reasons)
		}
	})
	t.Run("a failed request the server answered in full", func(t *testing.T) {
		f := upgradeFixture()
		f.results[450] = failedWith(4500, 0, "read: connection reset by peer")
		s := witnessScenario(t, f, nil)
		if s.Verdict != record.VerdictFail || len(s.Witness.Drops) != 1 {
			t.Fatalf("verdict %s, drops %+v", s.Verdict, s.Witness.Drops)
		}
		d := s.Witness.Drops[0]
		if d.Class != record.WitnessLost || d.PID != 20 || d.Generation != "new-1" || d.Phase != "old-workers-draining" {
			t.Fatalf("drop %+v", d)
		}
	})
	t.Run("no server log: absent, said so", func(t *testing.T) {
		s := buildFixture(t, upgradeFixture())
		if s.Verdict != record.VerdictPass || s.Witness == nil || s.Witness.Present || s.Witness.Note == "" {
			t.Fatalf("verdict %s, witness %+v", s.Verdict, s.Witness)
		}
	})
}
