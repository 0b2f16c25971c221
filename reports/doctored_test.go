package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// realRun is the record of a real run (run --scenario upgrade --rate 25
// --slow 2, default builds, nginx's log kept): the report files it wrote
// are left out, everything the judge reads is there. Each test below copies
// it, changes one fact, and checks what report makes of it.
const realRun = "testdata/upgrade-run"

// copyRealRun copies the real run into a fresh directory; it returns the
// run's directory and its one scenario's.
func copyRealRun(t *testing.T) (runDir, scenarioDir string) {
	t.Helper()
	runDir = t.TempDir()
	err := filepath.WalkDir(realRun, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(realRun, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(runDir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return runDir, filepath.Join(runDir, "upgrade")
}

// judged builds the scenario in dir as `report` would, a panic turned into
// a test failure (so that the other tests still run).
func judged(t *testing.T, dir string) (s *record.Scenario) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("report panicked on the record: %v", r)
		}
	}()
	s, _, err := BuildScenario(dir)
	if err != nil {
		t.Fatalf("BuildScenario: %v", err)
	}
	return s
}

func readResultsGob(t *testing.T, path string) []vegeta.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReader(f))
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

func writeResultsGob(t *testing.T, path string, rs []vegeta.Result) {
	t.Helper()
	var buf bytes.Buffer
	enc := vegeta.NewEncoder(&buf)
	for i := range rs {
		if err := enc.Encode(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editMeta rewrites meta.json through a map, so that a field the Meta type
// does not know (or no longer has) can be changed too.
func editMeta(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, record.MetaFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func startWall(t *testing.T, dir string) time.Time {
	t.Helper()
	var m record.Meta
	if err := record.ReadJSON(filepath.Join(dir, record.MetaFile), &m); err != nil {
		t.Fatal(err)
	}
	start, err := time.Parse(time.RFC3339Nano, m.StartWall)
	if err != nil {
		t.Fatal(err)
	}
	return start
}

// phaseSpan is where the phase a step opens lies on the run's clock: from
// its step's sent_ms to the next step's.
func phaseSpan(t *testing.T, dir, phase string) (from, to float64) {
	t.Helper()
	var events []record.Event
	if err := record.ReadJSONL(filepath.Join(dir, record.EventsFile), func(e *record.Event) { events = append(events, *e) }); err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Phase == phase {
			to = math.Inf(1)
			if i+1 < len(events) {
				to = events[i+1].SentMs
			}
			return e.SentMs, to
		}
	}
	t.Fatalf("no step opens %s in the real run", phase)
	return 0, 0
}

// failOneIn makes the first ok request sent in phase fail with errMsg.
func failOneIn(t *testing.T, dir, phase, errMsg string) {
	t.Helper()
	start := startWall(t, dir)
	from, to := phaseSpan(t, dir, phase)
	path := filepath.Join(dir, loadgen.ResultsFile)
	rs := readResultsGob(t, path)
	for i := range rs {
		ms := analysis.DurationToMs(rs[i].Timestamp.Sub(start))
		if ms > from+50 && ms < to && rs[i].Code == 200 {
			rs[i].Code, rs[i].Error, rs[i].Body = 0, errMsg, nil
			writeResultsGob(t, path, rs)
			return
		}
	}
	t.Fatalf("no ok request in %s to doctor", phase)
}

// naming lists the reasons that mention file.
func naming(reasons []string, file string) []string {
	var out []string
	for _, r := range reasons {
		if strings.Contains(r, file) {
			out = append(out, r)
		}
	}
	return out
}

// wantBadFile checks that the one thing said of a record with a bad file
// is one line naming it: verdict error (no judgement is made of a record
// the checker cannot read), and that line its only reason — nothing
// that follows from the bad file is blamed on another.
func wantBadFile(t *testing.T, s *record.Scenario, file string) {
	t.Helper()
	if s.Verdict != record.VerdictError {
		t.Errorf("verdict %s, want %s: a bad %s is bad input, not a finding (reasons: %q)", s.Verdict, record.VerdictError, file, s.Reasons)
	}
	if got := naming(s.Reasons, file); len(got) != 1 || len(s.Reasons) != 1 {
		t.Errorf("%d of %d reasons name %s, want exactly 1 of 1: %q", len(got), len(s.Reasons), file, s.Reasons)
	}
}

// The real run as it was recorded: the baseline every doctored copy is
// held against. It passed live, and passes here.
func TestRealRunPasses(t *testing.T) {
	_, dir := copyRealRun(t)
	s := judged(t, dir)
	if s.Verdict != record.VerdictPass || s.Dropped != 0 {
		t.Fatalf("real run: verdict %s, dropped %d, want pass and 0 (reasons: %q)", s.Verdict, s.Dropped, s.Reasons)
	}
	if s.Witness == nil || !s.Witness.Present || !s.Witness.Complete {
		t.Fatalf("real run: second witness %+v, want present and complete", s.Witness)
	}
	if s.Requests.Total < 300 {
		t.Fatalf("real run: %d requests, the record is not the one checked in", s.Requests.Total)
	}
}

// (a) A result stamped before the run's clock started, or a start_wall
// moved past the first request: the record's two clocks disagree. Report
// must say so of results.gob in one line — not panic in the stall analysis.
func TestDoctoredResultBeforeStartWall(t *testing.T) {
	t.Run("a result stamped 5 ms before start_wall", func(t *testing.T) {
		_, dir := copyRealRun(t)
		start := startWall(t, dir)
		path := filepath.Join(dir, loadgen.ResultsFile)
		rs := readResultsGob(t, path)
		rs[len(rs)/2].Timestamp = start.Add(-5 * time.Millisecond)
		writeResultsGob(t, path, rs)
		wantBadFile(t, judged(t, dir), loadgen.ResultsFile)
	})
	t.Run("start_wall moved 30 ms past the first request", func(t *testing.T) {
		_, dir := copyRealRun(t)
		start := startWall(t, dir)
		rs := readResultsGob(t, filepath.Join(dir, loadgen.ResultsFile))
		first := rs[0].Timestamp
		for _, r := range rs {
			if r.Timestamp.Before(first) {
				first = r.Timestamp
			}
		}
		moved := first.Add(30 * time.Millisecond)
		if !moved.After(start) {
			t.Fatalf("start_wall %s is not before the first request %s in the real run", start, first)
		}
		editMeta(t, dir, func(m map[string]any) { m["start_wall"] = moved.Format(time.RFC3339Nano) })
		wantBadFile(t, judged(t, dir), loadgen.ResultsFile)
	})
}

// (d) A latency no run can measure (MaxInt64: 292 years) is bad input, not
// a stall.
func TestDoctoredImpossibleLatency(t *testing.T) {
	_, dir := copyRealRun(t)
	path := filepath.Join(dir, loadgen.ResultsFile)
	rs := readResultsGob(t, path)
	rs[len(rs)/2].Latency = math.MaxInt64
	writeResultsGob(t, path, rs)
	s := judged(t, dir)
	wantBadFile(t, s, loadgen.ResultsFile)
	for _, r := range s.Reasons {
		if strings.Contains(r, "stalled") {
			t.Errorf("a latency no run can measure is judged a stall: %q", r)
		}
	}
}

// (d) A null line in downloads.jsonl is not a download, let alone a cut
// one.
func TestDoctoredNullDownload(t *testing.T) {
	_, dir := copyRealRun(t)
	path := filepath.Join(dir, loadgen.DownloadsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, []byte("null\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	s := judged(t, dir)
	wantBadFile(t, s, loadgen.DownloadsFile)
	if s.Slow.Cut != 0 || s.Dropped != 0 {
		t.Errorf("a null line counted as a cut download: slow %+v, dropped %d", s.Slow, s.Dropped)
	}
}
