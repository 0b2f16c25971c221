package reports

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Every witness held against the others (issue 30, item 2), on the real
// run's record: the client's results, the connection accounting, the
// replays and nginx's log must agree; one fact of one witness changed is
// error naming the two that disagree — never a pass.

// editServerLog rewrites server-log.jsonl entry by entry; false drops it,
// extra lines are appended after the entry they follow.
func editServerLog(t *testing.T, dir string, edit func(e *record.ServerEntry) (keep bool, extra []record.ServerEntry)) {
	t.Helper()
	editJSONL(t, filepath.Join(dir, record.ServerLogFile), func(line []byte) []byte {
		var e record.ServerEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		keep, extra := edit(&e)
		if !keep {
			return nil
		}
		var out []byte
		for _, x := range append([]record.ServerEntry{e}, extra...) {
			data, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > 0 {
				out = append(out, '\n')
			}
			out = append(out, data...)
		}
		return out
	})
}

func TestDoctoredWitnesses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, dir string)
		names []string // what the one reason must name: the two witnesses and the fact
	}{
		{"client ok, nginx logged 10 of 572 body bytes", func(t *testing.T, dir string) {
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				if e.ID == "http1/40" {
					e.BodyBytesSent, e.BytesSent = 10, 258
				}
				return true, nil
			})
		}, []string{"server-log.jsonl", "client's records", "bytes", "http1/40"}},
		{"an id logged twice on two pids", func(t *testing.T, dir string) {
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				if e.ID == "http1/40" {
					again := *e
					again.PID, again.Msec = 156, e.Msec+0.002
					return true, []record.ServerEntry{again}
				}
				return true, nil
			})
		}, []string{"server-log.jsonl", "retries.jsonl", "attempts", "http1/40 logged 2 times"}},
		{"another scenario's server log (ten minutes later)", func(t *testing.T, dir string) {
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				e.Msec += 600
				return true, nil
			})
		}, []string{"server-log.jsonl", "start_wall", "outside the run's window"}},
		{"a line logged by a pid no process table saw", func(t *testing.T, dir string) {
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				if e.ID == "http1/40" {
					e.PID = 4242
				}
				return true, nil
			})
		}, []string{"server-log.jsonl", record.ProcessesFile, "who answered", "pid 4242"}},
		{"a line logged by an old worker after the tables saw it gone", func(t *testing.T, dir string) {
			// Worker 46 is gone from the table after stop-old-workers
			// (4.7 s); the log's last line is at 16.8 s.
			last := 0.0
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				last = max(last, e.Msec)
				return true, nil
			})
			editServerLog(t, dir, func(e *record.ServerEntry) (bool, []record.ServerEntry) {
				if e.Msec == last {
					e.PID = 46
				}
				return true, nil
			})
		}, []string{"server-log.jsonl", record.ProcessesFile, "after the table that saw their pid gone", "by pid 46"}},
		{"a connection reset under a request, no failed request beside it", func(t *testing.T, dir string) {
			n := 0
			editJSONL(t, filepath.Join(dir, loadgen.ConnectionsFile), func(line []byte) []byte {
				var c loadgen.ConnRecord
				if err := json.Unmarshal(line, &c); err != nil {
					t.Fatal(err)
				}
				if n++; n == 100 {
					c.Outcome = loadgen.ConnResetUnderRequest
				}
				out, _ := json.Marshal(c)
				return out
			})
		}, []string{loadgen.ConnectionsFile, "results.gob", "reset_under_request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := copyRealRun(t)
			tc.edit(t, dir)
			s := judged(t, dir)
			if s.Verdict != record.VerdictError || !withReason(s.Reasons, tc.names...) {
				t.Fatalf("verdict %s, reasons %q: want error, one reason naming %q", s.Verdict, s.Reasons, tc.names)
			}
		})
	}
}
