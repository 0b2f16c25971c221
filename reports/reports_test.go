package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/tsenart/vegeta/v12/lib"
)

var testStart = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is the content of one scenario directory.
type fixture struct {
	meta      *record.Meta
	events    []record.Event
	results   []vegeta.Result
	conns     []loadgen.ConnRecord
	retries   []record.RetryRecord
	downloads []loadgen.DownloadRecord
	// Records of the traffic kinds, written when not nil.
	streams    []loadgen.StreamRecord
	websockets []loadgen.WebSocketRecord
	uploads    []loadgen.UploadRecord
	final      *record.Final
	end        *record.End // nil: an end marker is written (omit EndFile for none)
	errorTxt   string
	// omit lists files not to write at all.
	omit []string
}

func at(ms float64) time.Time { return testStart.Add(analysis.MsToDuration(ms)) }

func ok(ms float64) vegeta.Result {
	return vegeta.Result{Code: 200, Timestamp: at(ms), Latency: time.Millisecond, BytesIn: 612}
}

func failedWith(ms float64, code uint16, err string) vegeta.Result {
	return vegeta.Result{Code: code, Timestamp: at(ms), Latency: 2 * time.Millisecond, Error: err}
}

// steadyLoad is a request every 10 ms (100 req/s) from 0 to endMs.
func steadyLoad(endMs float64) []vegeta.Result {
	var rs []vegeta.Result
	for ms := 0.0; ms < endMs; ms += 10 {
		rs = append(rs, ok(ms))
	}
	return rs
}

// upgradeFixture is a clean zero-drops upgrade: three verified steps at 2, 4
// and 6 s under 100 req/s for 8 s, two long downloads completed.
func upgradeFixture() fixture {
	return fixture{
		meta: &record.Meta{
			Scenario: "upgrade", Expect: record.ExpectZeroDrops, From: "debian:1.22.1-9", To: "debian:1.22.1-10",
			Load:     record.Load{Rate: 100, Method: "GET", KeepAlive: true, Slow: 2},
			LoadPath: "host 127.0.0.1:8080 via Docker's port proxy", StartWall: testStart.Format(time.RFC3339Nano),
			SlowBytes: 1 << 20, SteadyMs: 1800, MaxStallMs: 1000,
			PlannedSteps: []record.PlannedStep{{Name: "spawn-new-master", AuditMs: 1800}, {Name: "stop-old-workers", AuditMs: 1800, Drain: record.DrainStart},
				{Name: "quit-old-master", AuditMs: 1500, Drain: record.DrainEnd}},
		},
		events: []record.Event{
			{Name: "spawn-new-master", Signal: "USR2", PID: 9, SentMs: 2000, VerifiedMs: 2100, Verified: true, Phase: "both-sets"},
			{Name: "stop-old-workers", Signal: "WINCH", PID: 9, SentMs: 4000, VerifiedMs: 4050, Verified: true, Phase: "old-workers-draining"},
			{Name: "quit-old-master", Signal: "QUIT", PID: 9, SentMs: 6000, VerifiedMs: 6200, Verified: true, Phase: "after-quit"},
		},
		results: steadyLoad(8000),
		conns: []loadgen.ConnRecord{
			{ID: 1, Profile: "load", OpenMs: 0, EndMs: 8000, Outcome: loadgen.ConnClosedByClient, Requests: 700},
			{ID: 2, Profile: "load", OpenMs: 0, EndMs: 4500, Outcome: loadgen.ConnClosedByServerIdle, Requests: 100},
		},
		retries: []record.RetryRecord{},
		downloads: []loadgen.DownloadRecord{
			{ID: 1, StartMs: 100, EndMs: 7000, Expected: 1 << 20, Received: 1 << 20, Status: 200, Completed: true},
			{ID: 2, StartMs: 100, EndMs: 7100, Expected: 1 << 20, Received: 1 << 20, Status: 200, Completed: true},
		},
		final: &record.Final{Masters: 1, Workers: 2, ServingBinary: "new", PIDFilePID: 42, Serving: true, ExpectedBinary: "new"},
	}
}

func writeJSONLFile[T any](t testing.TB, path string, recs []T) {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFixture(t testing.TB, runDir, name string, f fixture) string {
	t.Helper()
	dir := filepath.Join(runDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	skip := func(file string) bool { return slices.Contains(f.omit, file) }
	if f.meta != nil && !skip(record.MetaFile) {
		data, _ := json.Marshal(f.meta)
		if err := os.WriteFile(filepath.Join(dir, record.MetaFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !skip(record.EventsFile) {
		writeJSONLFile(t, filepath.Join(dir, record.EventsFile), f.events)
	}
	if !skip(loadgen.ResultsFile) {
		out, err := os.Create(filepath.Join(dir, loadgen.ResultsFile))
		if err != nil {
			t.Fatal(err)
		}
		enc := vegeta.NewEncoder(out)
		for i := range f.results {
			if err := enc.Encode(&f.results[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !skip(loadgen.ConnectionsFile) {
		writeJSONLFile(t, filepath.Join(dir, loadgen.ConnectionsFile), f.conns)
	}
	if !skip(record.RetriesFile) {
		writeJSONLFile(t, filepath.Join(dir, record.RetriesFile), f.retries)
	}
	if !skip(loadgen.DownloadsFile) {
		writeJSONLFile(t, filepath.Join(dir, loadgen.DownloadsFile), f.downloads)
	}
	if f.streams != nil && !skip(loadgen.StreamsFile) {
		writeJSONLFile(t, filepath.Join(dir, loadgen.StreamsFile), f.streams)
	}
	if f.websockets != nil && !skip(loadgen.WebSocketsFile) {
		writeJSONLFile(t, filepath.Join(dir, loadgen.WebSocketsFile), f.websockets)
	}
	if f.uploads != nil && !skip(loadgen.UploadsFile) {
		writeJSONLFile(t, filepath.Join(dir, loadgen.UploadsFile), f.uploads)
	}
	if f.final != nil {
		data, _ := json.Marshal(f.final)
		if err := os.WriteFile(filepath.Join(dir, record.FinalFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if f.errorTxt != "" {
		if err := os.WriteFile(filepath.Join(dir, record.ErrorFile), []byte(f.errorTxt+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !skip(record.EndFile) && f.errorTxt == "" {
		end := f.end
		if end == nil {
			end = &record.End{EndMs: 8000, StepsRun: len(f.events)}
		}
		data, _ := json.Marshal(end)
		if err := os.WriteFile(filepath.Join(dir, record.EndFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func buildFixture(t *testing.T, f fixture) *record.Scenario {
	t.Helper()
	dir := writeFixture(t, t.TempDir(), "scenario", f)
	s, _, err := BuildScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func phaseNamed(t *testing.T, s *record.Scenario, name string) record.Phase {
	t.Helper()
	for _, p := range s.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no phase %q in %+v", name, s.Phases)
	return record.Phase{}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code  uint16
		err   string
		class string
	}{
		{200, "", ""},
		{304, "", record.ClassStatus3xx},
		{302, "", record.ClassStatus3xx},
		{0, `Get "http://127.0.0.1:8080/": context canceled`, record.ClassCancelled},
		{0, "loadgen: wrong answer: body of 3 bytes (sha256 abc), the steady phase served 612 bytes (sha256 def)", record.ClassWrongBody},
		{0, `Get "http://127.0.0.1:8080/": dial tcp 127.0.0.1:8080: connect: connection refused`, record.ClassRefused},
		{0, "read tcp 127.0.0.1:5555->127.0.0.1:8080: read: connection reset by peer", record.ClassReset},
		{0, "write tcp 127.0.0.1:5555->127.0.0.1:8080: write: broken pipe", record.ClassReset},
		{0, `Get "http://127.0.0.1:8080/": EOF`, record.ClassEOF},
		{0, "unexpected EOF", record.ClassEOF},
		{0, "http: server closed idle connection", record.ClassEOF},
		{0, "net/http: request canceled (Client.Timeout exceeded while awaiting headers)", record.ClassTimeout},
		{0, "context deadline exceeded", record.ClassTimeout},
		{0, "read tcp 127.0.0.1:5555->127.0.0.1:8080: i/o timeout", record.ClassTimeout},
		{502, "502 Bad Gateway", record.ClassStatus5xx},
		{503, "503 Service Unavailable", record.ClassStatus5xx},
		{404, "404 Not Found", record.ClassStatusOther},
		{101, "101 Switching Protocols", record.ClassStatusOther},
		{0, "tls: something odd", record.ClassOther},
		{0, "", record.ClassOther},               // no status, no error: nothing came back
		{200, "unexpected EOF", record.ClassEOF}, // a body cut short after the status
	} {
		r := vegeta.Result{Code: tc.code, Error: tc.err}
		class, failed := analysis.Classify(&r)
		if class != tc.class || failed != (tc.class != "") {
			t.Errorf("Classify(%d, %q) = %q, %t; want %q, %t", tc.code, tc.err, class, failed, tc.class, tc.class != "")
		}
	}
}

func TestPhaseAttributionToTheMillisecond(t *testing.T) {
	f := upgradeFixture()
	// A failure 1 ms before each boundary and one exactly on it; distinct
	// classes so that each is traceable to its phase.
	f.results = append(f.results,
		failedWith(1999, 0, "EOF"),
		failedWith(2000, 0, "read: connection reset by peer"),
		failedWith(3999, 0, "Client.Timeout exceeded"),
		failedWith(4000, 0, "connect: connection refused"),
		failedWith(5999, 503, "503 Service Unavailable"),
		failedWith(6000, 404, "404 Not Found"),
		failedWith(7000, 0, "tls: odd"),
	)
	f.retries = []record.RetryRecord{{Ms: 3999, Attempts: 2, Written: true, OK: true}, {Ms: 4000, Attempts: 2, Written: true, OK: true}}
	f.downloads[0].EndMs, f.downloads[0].Completed, f.downloads[0].Received = 5999, false, 100
	f.downloads[1].EndMs, f.downloads[1].Completed, f.downloads[1].Received = 6000, false, 100
	f.conns = append(f.conns,
		loadgen.ConnRecord{ID: 3, EndMs: 1999, Outcome: loadgen.ConnClosedUnderRequest},
		loadgen.ConnRecord{ID: 4, EndMs: 2000, Outcome: loadgen.ConnResetUnderRequest},
	)
	s := buildFixture(t, f)

	want := map[string]struct {
		byClass          map[string]int
		retried, slowCut int
		conns            map[string]int
	}{
		"steady":               {map[string]int{record.ClassEOF: 1}, 0, 0, map[string]int{loadgen.ConnClosedUnderRequest: 1}},
		"both-sets":            {map[string]int{record.ClassReset: 1, record.ClassTimeout: 1}, 1, 0, map[string]int{loadgen.ConnResetUnderRequest: 1}},
		"old-workers-draining": {map[string]int{record.ClassRefused: 1, record.ClassStatus5xx: 1}, 1, 1, map[string]int{loadgen.ConnClosedByServerIdle: 1}},
		"after-quit":           {map[string]int{record.ClassStatusOther: 1, record.ClassOther: 1}, 0, 1, map[string]int{loadgen.ConnClosedByClient: 1}},
	}
	if len(s.Phases) != len(want) {
		t.Fatalf("phases = %d, want %d: %+v", len(s.Phases), len(want), s.Phases)
	}
	for name, w := range want {
		p := phaseNamed(t, s, name)
		if fmt.Sprint(p.ByClass) != fmt.Sprint(w.byClass) {
			t.Errorf("%s: failures by class = %v, want %v", name, p.ByClass, w.byClass)
		}
		if p.Retried != w.retried || p.SlowCut != w.slowCut {
			t.Errorf("%s: retried %d, slow cut %d; want %d, %d", name, p.Retried, p.SlowCut, w.retried, w.slowCut)
		}
		if fmt.Sprint(p.Connections) != fmt.Sprint(w.conns) {
			t.Errorf("%s: connections = %v, want %v", name, p.Connections, w.conns)
		}
	}
	// The regular load: 200 requests per 2 s phase, plus the failures above.
	for name, requests := range map[string]int{"steady": 201, "both-sets": 202, "old-workers-draining": 202, "after-quit": 202} {
		if p := phaseNamed(t, s, name); p.Requests != requests {
			t.Errorf("%s: %d requests, want %d", name, p.Requests, requests)
		}
	}
	steady, last := s.Phases[0], s.Phases[len(s.Phases)-1]
	if steady.StartMs != 0 || steady.EndMs != 2000 || s.Phases[1].StartMs != 2000 {
		t.Errorf("steady spans %v–%v, next starts at %v; want 0–2000, 2000", steady.StartMs, steady.EndMs, s.Phases[1].StartMs)
	}
	if last.EndMs != 7990+1 { // the last regular request, sent at 7990 ms, took 1 ms
		t.Errorf("last phase ends at %v, want 7991 (the last result's end)", last.EndMs)
	}
	if got := len(s.Failures); got != 7 {
		t.Errorf("failures = %d entries, want 7: %+v", got, s.Failures)
	}
	for _, f := range s.Failures {
		if f.Count != 1 {
			t.Errorf("failure %+v: want count 1", f)
		}
	}
}

func TestDroppedArithmetic(t *testing.T) {
	f := upgradeFixture()
	f.results = append(f.results,
		failedWith(2500, 0, "EOF"), failedWith(2600, 0, "EOF"), failedWith(2700, 0, "EOF"),
		failedWith(4500, 0, "read: connection reset by peer"))
	f.retries = []record.RetryRecord{{Ms: 2100, Attempts: 2, Written: true, OK: true, Conns: []uint64{10, 15}, Error: "EOF"}, {Ms: 2200, Attempts: 2, Written: true, OK: true}, {Ms: 4100, Attempts: 2, Written: true, OK: true},
		// Not drops of their own: a replay of a request never written on the
		// closed connection, and a written one that failed in the end (its
		// failed request counts it).
		{Ms: 4200, Attempts: 2, Written: false, OK: true}, {Ms: 4300, Attempts: 2, Written: true, OK: false}}
	f.downloads[1].Completed, f.downloads[1].Received = false, 4096
	// Five closes under a request: each is already a failed or retried
	// request, and must not be counted again.
	for i := range 5 {
		f.conns = append(f.conns, loadgen.ConnRecord{ID: uint64(10 + i), EndMs: 2100, Outcome: loadgen.ConnClosedUnderRequest})
	}
	f.conns[len(f.conns)-5].Retried = 1 // the first replay's first connection (retries.jsonl names it)
	s := buildFixture(t, f)
	if s.Requests.Failed != 4 || s.Retried != 3 || s.Slow.Cut != 1 {
		t.Fatalf("failed %d retried %d cut %d; want 4, 3, 1", s.Requests.Failed, s.Retried, s.Slow.Cut)
	}
	if s.Dropped != 4+3+1 {
		t.Errorf("dropped = %d, want 8 (4 failed + 3 retried + 1 cut)", s.Dropped)
	}
	if s.Connections.ClosedUnderRequest != 5 || s.Connections.Opened != 7 || s.Connections.ClosedByServerIdle != 1 {
		t.Errorf("connections = %+v", s.Connections)
	}
	if s.Requests.Total != 804 || s.Requests.OK != 800 {
		t.Errorf("requests = %+v, want 804 total, 800 ok", s.Requests)
	}
	if s.Slow != (record.Slow{Started: 2, Completed: 1, Cut: 1}) {
		t.Errorf("slow = %+v", s.Slow)
	}
	dropped := 0
	for _, p := range s.Phases {
		dropped += p.Dropped
	}
	if dropped != s.Dropped {
		t.Errorf("phases' dropped add up to %d, scenario says %d", dropped, s.Dropped)
	}
	wantReasons := []string{
		"3 requests failed in both-sets (eof: 3)",
		"2 requests retried by the client after the server closed the connection under them in both-sets",
		"1 request failed in old-workers-draining (reset: 1)",
		"1 request retried by the client after the server closed the connection under them in old-workers-draining",
		"1 long download cut in after-quit",
	}
	if s.Verdict != record.VerdictFail || !slices.Equal(s.Reasons, wantReasons) {
		t.Errorf("verdict %s, reasons:\n%s\nwant fail, reasons:\n%s", s.Verdict, strings.Join(s.Reasons, "\n"), strings.Join(wantReasons, "\n"))
	}
}

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*fixture)
		verdict string
		reason  string // a substring of one of the reasons; "" for none at all
	}{
		{"clean upgrade passes", func(*fixture) {}, record.VerdictPass, ""},
		{"a failed request fails", func(f *fixture) {
			f.results = append(f.results, failedWith(4321, 0, "EOF"))
		}, record.VerdictFail, "1 request failed in old-workers-draining (eof: 1)"},
		{"a silent retry fails", func(f *fixture) {
			f.retries = []record.RetryRecord{{Ms: 2050, Attempts: 2, Written: true, OK: true}}
		}, record.VerdictFail, "retried by the client after the server closed the connection under them in both-sets"},
		{"a cut download fails", func(f *fixture) {
			f.downloads[0].Completed = false
		}, record.VerdictFail, "1 long download cut in after-quit"},
		{"a short download marked complete is cut", func(f *fixture) {
			f.downloads[0].Received = 1000
		}, record.VerdictFail, "1 long download cut"},
		{"a final check error fails", func(f *fixture) {
			f.final.CheckErrors = []string{"nginx.pid holds 9, want 42"}
		}, record.VerdictFail, "final state: nginx.pid holds 9, want 42"},
		{"an unverified step is an error", func(f *fixture) {
			f.events[1].Verified, f.events[1].Error = false, "old master 9 still has 2 workers after 5s"
		}, record.VerdictError, "step stop-old-workers (WINCH to 9) not verified: old master 9 still has 2 workers after 5s"},
		{"an unverified step does not hide a drop: fail, the premise beside it", func(f *fixture) {
			f.events[0].Verified = false
			f.results = append(f.results, failedWith(2500, 0, "EOF"))
		}, record.VerdictFail, "also: step spawn-new-master (USR2 to 9) not verified"},
		{"a load below its rate is an error", func(f *fixture) {
			// Through both-sets only one request in four was sent: 25 req/s.
			f.results = slices.DeleteFunc(f.results, func(r vegeta.Result) bool {
				ms := analysis.DurationToMs(r.Timestamp.Sub(testStart))
				return ms >= 2000 && ms < 4000 && int(ms)%40 != 0
			})
		}, record.VerdictError, "the load did not keep its rate in both-sets: 25 req/s over 2000 ms, below 80% of 100 req/s"},
		{"a load that stopped before a step is an error", func(f *fixture) {
			f.results = steadyLoad(5000)
		}, record.VerdictError, "before step quit-old-master was sent at 6000 ms"},
		{"no results is an error", func(f *fixture) {
			f.results = nil
		}, record.VerdictError, "no results: the load sent no request"},
		{"error.txt is an error", func(f *fixture) {
			f.errorTxt = "Docker unreachable: dial unix /var/run/docker.sock: connect: no such file or directory"
			f.results, f.events = nil, nil
		}, record.VerdictError, "could not run: Docker unreachable"},
		{"no retry record at all is an error", func(f *fixture) {
			f.omit = []string{record.RetriesFile, loadgen.ConnectionsFile}
		}, record.VerdictError, "retries.jsonl and connections.jsonl missing"},
		{"retries fall back on connections", func(f *fixture) {
			f.omit = []string{record.RetriesFile}
			f.conns[1].Retried = 2
		}, record.VerdictFail, "2 requests retried by the client after the server closed the connection under them in old-workers-draining"},
		{"a download that never ended is an error", func(f *fixture) {
			f.downloads = f.downloads[:1]
		}, record.VerdictError, "2 long downloads configured, 1 recorded"},
		{"a missing meta.json is an error", func(f *fixture) {
			f.omit = []string{record.MetaFile}
		}, record.VerdictError, "meta.json missing"},
		{"drops expected and none seen fails", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
		}, record.VerdictFail, "positive control saw no drop in old-workers-draining: the detector is broken"},
		{"drops expected and seen passes", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
			f.results = append(f.results, failedWith(4500, 0, "read: connection reset by peer"))
		}, record.VerdictPass, ""},
		{"a drop sent before the causing step, in flight when it was sent, is the step's", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
			across := failedWith(3990, 0, "EOF")
			across.Latency = 20 * time.Millisecond // sent at 3,990 ms, failed at 4,010: the step was sent at 4,000
			f.results = append(f.results, across, failedWith(4500, 0, "read: connection reset by peer"))
		}, record.VerdictPass, ""},
		{"a drop that ended before the causing step was sent is outside its phase", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
			f.results = append(f.results, failedWith(3900, 0, "EOF"), failedWith(4500, 0, "read: connection reset by peer"))
		}, record.VerdictFail, "1 dropped in both-sets, outside old-workers-draining, the phase the causing step opened"},
		{"an expected-failing step that fails passes", func(f *fixture) {
			f.meta.Scenario = "broken-build"
			f.meta.PlannedSteps = []record.PlannedStep{{Name: "spawn-new-master", AuditMs: 1800, Expected: record.ExpectFail}}
			f.events = []record.Event{{Name: "spawn-new-master", Signal: "USR2", PID: 9, SentMs: 2000, VerifiedMs: 7000,
				Verified: false, Error: "no second master after 5s", Expected: record.ExpectFail, Phase: "broken-usr2",
				ExpectedCause: `unknown directive "brokenmodule"`,
				LogLines:      []string{`[emerg] 12#12: unknown directive "brokenmodule"`}}}
		}, record.VerdictPass, ""},
		{"an expected-failing step that verifies fails", func(f *fixture) {
			f.events[0].Expected = record.ExpectFail
		}, record.VerdictFail, "step spawn-new-master (USR2 to 9) verified but the scenario expects it to fail"},
		{"an unknown expectation is an error", func(f *fixture) {
			f.meta.Expect = "maybe"
		}, record.VerdictError, `unknown expectation "maybe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := upgradeFixture()
			tc.change(&f)
			s := buildFixture(t, f)
			if s.Verdict != tc.verdict {
				t.Fatalf("verdict = %s, want %s; reasons: %q", s.Verdict, tc.verdict, s.Reasons)
			}
			if tc.reason == "" {
				if len(s.Reasons) != 0 {
					t.Fatalf("reasons = %q, want none", s.Reasons)
				}
				if p := judge.Scenario(s).Premises; len(p) != 0 {
					t.Errorf("a pass with premises that did not hold: %q", p)
				}
				return
			}
			if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, tc.reason) }) {
				t.Fatalf("reasons = %q, want one containing %q", s.Reasons, tc.reason)
			}
			// The verdict is recomputable from the record alone.
			j := judge.Scenario(s)
			if j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
				t.Errorf("Judge again = %s %q, want %s %q", j.Verdict, j.Reasons, s.Verdict, s.Reasons)
			}
			// An error is a premise that did not hold, and says which.
			if s.Verdict == record.VerdictError && len(j.Premises) == 0 {
				t.Errorf("verdict error with no premise failed: %q", j.Reasons)
			}
		})
	}
}

func TestTruncatedResults(t *testing.T) {
	runDir := t.TempDir()
	dir := writeFixture(t, runDir, "upgrade", upgradeFixture())
	path := filepath.Join(dir, loadgen.ResultsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2+7], 0o644); err != nil {
		t.Fatal(err)
	}
	// A JSON-lines file cut mid-line too.
	conns := filepath.Join(dir, loadgen.ConnectionsFile)
	cdata, _ := os.ReadFile(conns)
	if err := os.WriteFile(conns, cdata[:len(cdata)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Build(runDir)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Scenarios[0]
	if s.Requests.Total == 0 || s.Requests.Total >= 800 {
		t.Errorf("requests = %d, want some of the 800 before the cut", s.Requests.Total)
	}
	if s.Verdict != record.VerdictError {
		t.Errorf("verdict = %s, want error", s.Verdict)
	}
	for _, want := range []string{"results.gob truncated after", "connections.jsonl truncated: line 2"} {
		if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, want) }) {
			t.Errorf("reasons = %q, want one containing %q", s.Reasons, want)
		}
	}
	if s.Connections.ClosedByClient != 1 {
		t.Errorf("connections before the cut line are lost: %+v", s.Connections)
	}
	if err := render.WriteAll(runDir, r); err != nil {
		t.Fatal(err)
	}
}

func TestBuildOrdersScenariosByStart(t *testing.T) {
	runDir := t.TempDir()
	for i, name := range []string{"rollback", "upgrade", "kill-fallback"} {
		f := upgradeFixture()
		f.meta.Scenario = name
		shift := time.Duration(2-i) * time.Minute
		f.meta.StartWall = testStart.Add(shift).Format(time.RFC3339Nano)
		for j := range f.results {
			f.results[j].Timestamp = f.results[j].Timestamp.Add(shift)
		}
		writeFixture(t, runDir, name, f)
	}
	writeFixture(t, runDir, "term-fallback", fixture{errorTxt: "could not start the container"})
	if err := os.MkdirAll(filepath.Join(runDir, "not-a-scenario"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Build(runDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.Scenarios {
		names = append(names, s.Name+":"+s.Verdict)
	}
	want := []string{"kill-fallback:pass", "upgrade:pass", "rollback:pass", "term-fallback:error"}
	if !slices.Equal(names, want) {
		t.Errorf("scenarios = %v, want %v", names, want)
	}
	if r.From != "debian:1.22.1-9" || r.Load.Rate != 100 {
		t.Errorf("report from %q load %+v", r.From, r.Load)
	}
	if _, err := Build(t.TempDir()); err == nil {
		t.Error("Build of an empty directory: want an error")
	}
}

// contractKeys lists report.json's fixed fields (design.md), by path.
var contractKeys = map[string][]string{
	"":                        {"schema", "from", "to", "load", "scenarios"},
	"load":                    {"rate", "method", "keepalive", "slow"},
	"scenarios[]":             {"name", "expect", "verdict", "reasons", "requests", "dropped", "connections", "slow", "steps", "phases", "failures"},
	"scenarios[].requests":    {"total", "ok", "failed"},
	"scenarios[].connections": {"opened", "closed_by_server_idle", "closed_under_request", "reset", "refused"},
	"scenarios[].slow":        {"started", "completed", "cut"},
	"scenarios[].steps[]":     {"name", "signal", "pid", "sent_ms", "verified_ms", "verified", "error"},
	"scenarios[].phases[]":    {"name", "start_ms", "end_ms", "requests", "failed", "p99_ms"},
	"scenarios[].failures[]":  {"class", "phase", "count"},
}

func TestReportJSONContract(t *testing.T) {
	runDir := t.TempDir()
	f := upgradeFixture()
	f.results = append(f.results, failedWith(2500, 0, "EOF"))
	writeFixture(t, runDir, "upgrade", f)
	r, err := Build(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.WriteAll(runDir, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(runDir, record.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for path, keys := range contractKeys {
		obj := lookup(t, doc, path)
		for _, k := range keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("report.json %s: no field %q", path, k)
			}
		}
	}
	if doc["schema"] != float64(1) {
		t.Errorf("schema = %v, want 1", doc["schema"])
	}
	// The contract's types: reasons is a list even when empty, error a string.
	sc := lookup(t, doc, "scenarios[]")
	if _, ok := sc["reasons"].([]any); !ok {
		t.Errorf("reasons = %#v, want a list", sc["reasons"])
	}
	if _, ok := lookup(t, doc, "scenarios[].steps[]")["error"].(string); !ok {
		t.Error("steps[].error is not a string")
	}
	back, err := record.ReadReport(filepath.Join(runDir, record.ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	if back.Scenarios[0].Dropped != 1 || back.Scenarios[0].Verdict != record.VerdictFail {
		t.Errorf("report.json read back: %+v", back.Scenarios[0])
	}
}

// lookup walks "a[].b" through decoded JSON, taking the first element of lists.
func lookup(t *testing.T, doc map[string]any, path string) map[string]any {
	t.Helper()
	cur := doc
	if path == "" {
		return cur
	}
	for _, part := range strings.Split(path, ".") {
		name, isList := strings.CutSuffix(part, "[]")
		v, ok := cur[name]
		if !ok {
			t.Fatalf("report.json: no %q on the way to %s", name, path)
		}
		if isList {
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				t.Fatalf("report.json %s: %q is not a non-empty list", path, name)
			}
			v = list[0]
		}
		if cur, ok = v.(map[string]any); !ok {
			t.Fatalf("report.json %s: %q is not an object", path, name)
		}
	}
	return cur
}

func TestRenderersEscapeAndStayOffline(t *testing.T) {
	runDir := t.TempDir()
	f := upgradeFixture()
	f.events[0].Name = `<script>alert("x")</script>|pipe`
	f.events[0].Verified = false
	f.events[0].Error = `<img src=x onerror=alert(1)>`
	f.events[0].LogLines = []string{"[alert] 1#1: ``` <b>bold</b>"}
	writeFixture(t, runDir, "upgrade", f)
	r, err := Build(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.WriteAll(runDir, r); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(runDir, record.ReportHTML))
	md, _ := os.ReadFile(filepath.Join(runDir, record.ReportMarkdown))
	for _, bad := range []string{"<script", "<img", "<b>bold", "http://", "https://"} {
		body := strings.ReplaceAll(string(html), `xmlns="http://www.w3.org/2000/svg"`, "")
		if strings.Contains(body, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	for _, want := range []string{"<svg", "<path class=\"p99\"", "<path class=\"p50\"", "class=\"step bad\"", "class=\"target\"", "class=\"legend-item\"", "spawn-new-master", "both-sets"} {
		if want == "spawn-new-master" {
			want = "stop-old-workers"
		}
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(md), "<script") || strings.Contains(string(md), "<img") {
		t.Error("report.md lets HTML through")
	}
	if !strings.Contains(string(md), "| scenario | builds | expect | verdict | runs | requests | dropped | drops per 10k \\[95% CI\\] | longest stall, ms: median (range) | steps as expected |") {
		t.Error("report.md lacks the summary table")
	}
	if !strings.Contains(string(md), "````\n[alert] 1#1: ``` <b>bold</b>\n````") {
		t.Errorf("report.md log lines not fenced safely:\n%s", md)
	}
}
