package judge

import (
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// A death fails a run whose premises held, lost or not; beside a failed
// premise only a crash does (a signal the process raised itself): a
// SIGKILL or a pid gone may be the environment's, and the run is error,
// the death among its reasons.
func TestDeathsBesidePremises(t *testing.T) {
	death := func(sig int) []record.Death {
		return []record.Death{{PID: 157, Role: "worker process", Master: 154, Generation: "new-1", Signal: sig, FromMs: 10, ToMs: 20, Evidence: "…"}}
	}
	for _, tc := range []struct {
		name    string
		err     string
		sig     int
		verdict string
	}{
		{"SIGSEGV, could not run", "the container was frozen from outside", 11, record.VerdictFail},
		{"SIGKILL, could not run", "the container was frozen from outside", 9, record.VerdictError},
		{"gone, could not run", "the container was frozen from outside", 0, record.VerdictError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &record.Scenario{Expect: record.ExpectZeroDrops, Error: tc.err, Deaths: death(tc.sig)}
			v := Scenario(s)
			if v.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s: %q", v.Verdict, tc.verdict, v.Reasons)
			}
			named := false
			for _, r := range v.Reasons {
				named = named || strings.Contains(r, "worker process 157 (new-1, master 154)")
			}
			if !named {
				t.Errorf("reasons %q: want the death named", v.Reasons)
			}
		})
	}
}
