package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Deaths are findings (issue 30, item 3), on the real run's record: a
// worker nginx says died of a signal no step sent, or one gone from the
// process tables before any step retired it, fails the zero-drops upgrade
// though nothing was lost, and its reason names the pid, the generation
// and the signal; a failed request no worker logged, in flight while one
// died, is lost in that crash.

// crashLine is what nginx's master 154 (the new one, generation new-1)
// logs when its worker 157 dies of SIGSEGV.
const crashLine = "2026/12/06 18:27:18 [alert] 154#154: worker process 157 exited on signal 11 (core dumped)"

// editEvents rewrites events.jsonl, event by event.
func editEvents(t *testing.T, dir string, edit func(e *record.Event)) {
	t.Helper()
	editJSONL(t, filepath.Join(dir, record.EventsFile), func(line []byte) []byte {
		var e record.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		edit(&e)
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// editJSONL rewrites a .jsonl file line by line; nil drops the line.
func editJSONL(t *testing.T, path string, edit func(line []byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := edit(append([]byte(nil), sc.Bytes()...)); l != nil {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func withReason(reasons []string, parts ...string) bool {
	for _, r := range reasons {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(r, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestDoctoredDeaths(t *testing.T) {
	// WINCH's verification quotes nginx's line for a worker of the new
	// master that died of SIGSEGV: nothing was lost, and it fails.
	t.Run("exited on signal 11 in a step's log lines", func(t *testing.T) {
		_, dir := copyRealRun(t)
		editEvents(t, dir, func(e *record.Event) {
			if e.Name == "stop-old-workers" {
				e.LogLines = append(e.LogLines, crashLine)
			}
		})
		s := judged(t, dir)
		if s.Verdict != record.VerdictFail || s.Dropped != 0 {
			t.Fatalf("verdict %s, dropped %d: want fail with nothing dropped (reasons %q)", s.Verdict, s.Dropped, s.Reasons)
		}
		if !withReason(s.Reasons, "157", "new-1", "signal 11", "SIGSEGV") {
			t.Errorf("reasons %q: want one naming worker 157, new-1 and signal 11", s.Reasons)
		}
	})
	// Between two steps, where no step quotes the log: the run's whole
	// error log (error-log.txt) has the line, placed by its timestamp.
	t.Run("exited on signal 11 between steps, in error-log.txt", func(t *testing.T) {
		_, dir := copyRealRun(t)
		line := "2026/12/06 18:27:16 [alert] 154#154: worker process 157 exited on signal 11 (core dumped)\n"
		if err := os.WriteFile(filepath.Join(dir, record.ErrorLogFile), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		s := judged(t, dir)
		if s.Verdict != record.VerdictFail || !withReason(s.Reasons, "157", "new-1", "signal 11") {
			t.Fatalf("verdict %s, reasons %q: want fail naming worker 157 of new-1 and signal 11", s.Verdict, s.Reasons)
		}
		if d := s.Deaths[0]; d.FromMs < 1000 || d.ToMs > 5000 {
			t.Errorf("death placed %v–%v ms: want about 3 s into the run (the line's second)", d.FromMs, d.ToMs)
		}
	})
	// Old worker 46 is gone from the table taken just before WINCH: nothing
	// the plan did retires it by then.
	t.Run("a worker gone before the step that retires it", func(t *testing.T) {
		_, dir := copyRealRun(t)
		editJSONL(t, filepath.Join(dir, record.ProcessesFile), func(line []byte) []byte {
			var p record.ProcessSample
			if err := json.Unmarshal(line, &p); err != nil {
				t.Fatal(err)
			}
			if p.At == "before stop-old-workers" {
				var keep []record.FinalProcess
				for _, q := range p.Procs {
					if q.PID != 46 {
						keep = append(keep, q)
					}
				}
				p.Procs = keep
			}
			out, _ := json.Marshal(p)
			return out
		})
		s := judged(t, dir)
		if s.Verdict != record.VerdictFail {
			t.Fatalf("verdict %s: want fail (reasons %q)", s.Verdict, s.Reasons)
		}
		if !withReason(s.Reasons, "worker 46", "old-1", record.ProcessesFile) {
			t.Errorf("reasons %q: want one naming worker 46 of old-1 and where the tables lost it", s.Reasons)
		}
	})
	// A request sent while 157 died failed, and nginx never logged it: it
	// is lost in the crash, by 157 — not a request that never reached a
	// worker.
	t.Run("a failure no worker logged, in flight while one died", func(t *testing.T) {
		_, dir := copyRealRun(t)
		var from, to float64
		editEvents(t, dir, func(e *record.Event) {
			if e.Name == "stop-old-workers" {
				e.LogLines = append(e.LogLines, crashLine)
				from, to = e.SentMs, e.VerifiedMs
			}
		})
		start := startWall(t, dir)
		path := filepath.Join(dir, loadgen.ResultsFile)
		rs := readResultsGob(t, path)
		id := ""
		for i := range rs {
			ms := analysis.DurationToMs(rs[i].Timestamp.Sub(start))
			if ms >= from && ms <= to && rs[i].Code == 200 {
				rs[i].Code, rs[i].Error, rs[i].Body = 0, "read tcp 127.0.0.1:40000->127.0.0.1:8080: read: connection reset by peer", nil
				id = loadgen.RequestID(rs[i].Attack, rs[i].Seq)
				break
			}
		}
		if id == "" {
			t.Fatalf("no request sent between %.0f and %.0f ms to doctor", from, to)
		}
		writeResultsGob(t, path, rs)
		editJSONL(t, filepath.Join(dir, record.ServerLogFile), func(line []byte) []byte {
			var e record.ServerEntry
			if json.Unmarshal(line, &e) == nil && e.ID == id {
				return nil
			}
			return line
		})
		s := judged(t, dir)
		if s.Verdict != record.VerdictFail {
			t.Fatalf("verdict %s: want fail (reasons %q)", s.Verdict, s.Reasons)
		}
		var got *record.WitnessDrop
		for i, d := range s.Witness.Drops {
			if d.ID == id {
				got = &s.Witness.Drops[i]
			}
		}
		if got == nil || got.Class != record.WitnessCrash || got.PID != 157 || got.Generation != "new-1" {
			t.Fatalf("drop %s reconciled as %+v: want %s by pid 157 of new-1", id, got, record.WitnessCrash)
		}
		if !withReason(s.Drops, record.WitnessCrash, "pid 157") {
			t.Errorf("drops %q: want the crash's loss named", s.Drops)
		}
		var causes []string
		for _, c := range s.Causes {
			causes = append(causes, c.Text)
		}
		if !withReason(causes, "a crash", "157") {
			t.Errorf("causes %q: want the crash named as the cause, not the step", causes)
		}
	})
}
