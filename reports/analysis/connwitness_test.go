package analysis

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// A replay tried on three connections (measured in a keep-alive rollback:
// 14 closed idle as net/http took it, the request not yet written; 10
// closed under the written request; 15 answered) is counted by the one it
// was written on, not by the first. The check finds it there, and still
// fails a replay no connection it failed on counts — nor the one that
// answered it.
func TestReplayCountedOnTheConnectionItWasWrittenOn(t *testing.T) {
	retry := record.RetryRecord{ID: "http1-keepalive/4419", Ms: 8841.7, Profile: "http1-keepalive", Method: "GET",
		Attempts: 3, Conns: []uint64{14, 10, 15}, Error: "EOF", Written: true, OK: true}
	conn := func(id uint64, outcome string, retried int) loadgen.ConnRecord {
		return loadgen.ConnRecord{ID: id, Profile: "http1-keepalive", Outcome: outcome, Retried: retried}
	}
	for _, tc := range []struct {
		name  string
		conns []loadgen.ConnRecord
		want  bool // a disagreement on replays
	}{
		{"counted on the second of three", []loadgen.ConnRecord{
			conn(14, loadgen.ConnClosedByServerIdle, 0), conn(10, loadgen.ConnClosedUnderRequest, 1), conn(15, loadgen.ConnOpenAtEnd, 0)}, false},
		{"counted on the first", []loadgen.ConnRecord{
			conn(14, loadgen.ConnClosedUnderRequest, 1), conn(10, loadgen.ConnClosedByServerIdle, 0), conn(15, loadgen.ConnOpenAtEnd, 0)}, false},
		{"counted nowhere", []loadgen.ConnRecord{
			conn(14, loadgen.ConnClosedByServerIdle, 0), conn(10, loadgen.ConnClosedByServerIdle, 0), conn(15, loadgen.ConnOpenAtEnd, 0)}, true},
		{"counted only on the connection that answered", []loadgen.ConnRecord{
			conn(14, loadgen.ConnClosedByServerIdle, 0), conn(10, loadgen.ConnClosedByServerIdle, 0), conn(15, loadgen.ConnOpenAtEnd, 1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeJSONL(t, filepath.Join(dir, loadgen.ConnectionsFile), tc.conns)
			writeJSONL(t, filepath.Join(dir, record.RetriesFile), []record.RetryRecord{retry})
			var got bool
			d := ConnectionDisagreements(dir, &record.Scenario{})
			for _, l := range d {
				got = got || strings.Contains(l, "disagree on replays")
			}
			if got != tc.want {
				t.Fatalf("disagreements %q: want one on replays: %v", d, tc.want)
			}
		})
	}
	// One connection's replay counts one replay: two replays that failed
	// on connection 10 alone, which counts one, disagree.
	dir := t.TempDir()
	writeJSONL(t, filepath.Join(dir, loadgen.ConnectionsFile), []loadgen.ConnRecord{conn(10, loadgen.ConnClosedUnderRequest, 1), conn(15, loadgen.ConnOpenAtEnd, 0)})
	a, b := retry, retry
	a.Conns, b.Conns, b.ID = []uint64{10, 15}, []uint64{10, 15}, "http1-keepalive/4420"
	writeJSONL(t, filepath.Join(dir, record.RetriesFile), []record.RetryRecord{a, b})
	if d := ConnectionDisagreements(dir, &record.Scenario{}); len(d) != 1 || !strings.Contains(d[0], "1 requests replayed") {
		t.Fatalf("two replays, one counted: %q", d)
	}
}

func writeJSONL[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	var out []byte
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, b...), '\n')
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
