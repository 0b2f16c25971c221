package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// (b) The run configured the second witness (meta.json server_log): its
// record is required. Deleted, the scenario is error naming it — not a pass
// on the client's word alone.
func TestDoctoredWitnessDeleted(t *testing.T) {
	t.Run("witness.json deleted", func(t *testing.T) {
		_, dir := copyRealRun(t)
		if err := os.Remove(filepath.Join(dir, record.WitnessFile)); err != nil {
			t.Fatal(err)
		}
		wantBadFile(t, judged(t, dir), record.WitnessFile)
	})
	t.Run("witness.json and server-log.jsonl deleted", func(t *testing.T) {
		_, dir := copyRealRun(t)
		for _, f := range []string{record.WitnessFile, record.ServerLogFile} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		wantBadFile(t, judged(t, dir), record.WitnessFile)
	})
	t.Run("meta.json says no witness, witness.json is there", func(t *testing.T) {
		_, dir := copyRealRun(t)
		editMeta(t, dir, func(m map[string]any) { m["server_log"] = false })
		s := judged(t, dir)
		if s.Verdict != record.VerdictError || len(naming(s.Reasons, "server_log")) != 1 {
			t.Errorf("verdict %s, reasons %q: want error, naming meta.json server_log once", s.Verdict, s.Reasons)
		}
	})
	// A record written before meta.json said whether the witness was
	// configured is judged as before — its absence is no witness — and a
	// note says the check could not be made.
	t.Run("older record: no server_log, no witness.json", func(t *testing.T) {
		_, dir := copyRealRun(t)
		editMeta(t, dir, func(m map[string]any) { delete(m, "server_log") })
		for _, f := range []string{record.WitnessFile, record.ServerLogFile} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		s := judged(t, dir)
		if s.Verdict != record.VerdictPass {
			t.Errorf("older record without a witness: verdict %s, want pass as before (reasons %q)", s.Verdict, s.Reasons)
		}
		if len(naming(s.Notes, "server_log")) != 1 {
			t.Errorf("older record: want one note saying meta.json's server_log could not be checked, notes %q", s.Notes)
		}
	})
}
