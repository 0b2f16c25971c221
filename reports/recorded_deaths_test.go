package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// recordedScenarios are the scenario directories of the real runs checked
// in: a scenario's (run), a compare procedure's (a script that stops
// nginx), and the matrix's cells (HTTP/2 upgrades of two builds).
func recordedScenarios(t *testing.T) []string {
	t.Helper()
	dirs := []string{filepath.Join(realRun, "upgrade"), "testdata/compare-gate/script-stop-only.sh-good"}
	cells, err := filepath.Glob("testdata/matrix-run/cells/*/upgrade")
	if err != nil || len(cells) == 0 {
		t.Fatalf("no matrix cell recorded: %v", err)
	}
	return append(dirs, cells...)
}

// copyDir copies a recorded scenario directory into a fresh one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Every real run of each kind checked in: the plan's own exits (WINCH and
// QUIT's graceful ones, a script that stops nginx) are no death, and the
// rule sees a crash in each once nginx's line for one is in a step's log.
func TestDeathsInTheRecordedRuns(t *testing.T) {
	for _, dir := range recordedScenarios(t) {
		t.Run(dir, func(t *testing.T) {
			if s := judged(t, dir); len(s.Deaths) > 0 {
				t.Fatalf("deaths in a run that had none: %+v", s.Deaths)
			}
			cp := copyDir(t, dir)
			first := true
			editEvents(t, cp, func(e *record.Event) {
				if first {
					e.LogLines = append(e.LogLines, "2026/12/06 18:27:18 [alert] 1#1: worker process 9999 exited on signal 11")
					first = false
				}
			})
			s := judged(t, cp)
			if len(s.Deaths) != 1 || s.Deaths[0].PID != 9999 || s.Deaths[0].Signal != 11 {
				t.Fatalf("deaths %+v: want worker 9999 on signal 11", s.Deaths)
			}
			if s.Verdict != record.VerdictFail {
				t.Errorf("verdict %s: a crash fails the run (reasons %q)", s.Verdict, s.Reasons)
			}
		})
	}
}
