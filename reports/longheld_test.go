package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// The long connections must span the drain: in flight when WINCH is sent
// and still when QUIT is, else a clean run proves nothing of how the old
// workers treat held connections (upgradeFixture: WINCH at 4 s, QUIT at
// 6 s, two downloads from 100 ms to 7 s).
func TestLongConnectionsMustSpanTheDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*fixture)
		verdict string
		reason  string
	}{
		{"downloads from before WINCH to after QUIT pass", func(f *fixture) {}, record.VerdictPass, ""},
		{"downloads that complete between WINCH and QUIT prove nothing", func(f *fixture) {
			f.downloads[0].EndMs, f.downloads[1].EndMs = 5000, 5100
		}, record.VerdictError, analysis.NothingProvesDrain + ": 2 long connections opened before stop-old-workers (WINCH) was sent at 4000 ms " +
			"ended before quit-old-master (QUIT) was sent at 6000 ms: download 1 completed at 5000 ms, download 2 completed at 5100 ms"},
		{"a download that completed before WINCH proves nothing", func(f *fixture) {
			f.downloads[1].EndMs = 3500
		}, record.VerdictError, "download 2 completed at 3500 ms"},
		{"downloads only on the new workers prove nothing of the old", func(f *fixture) {
			f.downloads[0].StartMs, f.downloads[1].StartMs = 4100, 4100
		}, record.VerdictError, analysis.NothingProvesDrain + ": no long connection was in flight when stop-old-workers (WINCH) was sent at 4000 ms"},
		{"downloads cut while the old workers drain fail, in their phase", func(f *fixture) {
			for i := range f.downloads {
				f.downloads[i].EndMs, f.downloads[i].Completed, f.downloads[i].Received = 4300, false, 1<<18
				f.downloads[i].Error = "unexpected EOF"
			}
		}, record.VerdictFail, "2 long downloads cut in old-workers-draining"},
		{"the cause says how long after WINCH the draining workers cut them", func(f *fixture) {
			for i := range f.downloads {
				f.downloads[i].EndMs, f.downloads[i].Completed, f.downloads[i].Received = 4300, false, 1<<18
				f.downloads[i].Error = "unexpected EOF"
			}
			f.events[1].LogLines = []string{"2026/12/04 21:24:39 [alert] 40#40: *12 open socket #14 left in connection 5"}
		}, record.VerdictFail, "2 long downloads cut in old-workers-draining"},
		{"a WebSocket closed in good order before QUIT proves nothing", func(f *fixture) {
			f.websockets = []loadgen.WebSocketRecord{{ID: 0, Profile: "websocket", StartMs: 50, EndMs: 5500, Ended: loadgen.WSEndedClient, Code: 1000}}
		}, record.VerdictError, "websocket 0 client at 5500 ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := upgradeFixture()
			tc.edit(&f)
			s := buildFixture(t, f)
			if tc.reason == "" {
				if s.Verdict != tc.verdict {
					t.Fatalf("verdict = %s, want %s; reasons %q", s.Verdict, tc.verdict, s.Reasons)
				}
				return
			}
			wantVerdict(t, s, tc.verdict, tc.reason)
			if strings.HasPrefix(tc.name, "the cause") {
				want := "the workers draining since stop-old-workers (WINCH to 9) closed long downloads they were still serving, 300 ms after WINCH"
				if len(s.Causes) == 0 || !strings.Contains(s.Causes[0].Text, want) || !strings.Contains(s.Causes[0].Text, "nginx logged: 2026/12/04 21:24:39 [alert]") {
					t.Errorf("causes = %+v, want one starting %q with nginx's line", s.Causes, want)
				}
			}
		})
	}
}

// report.json shows each long connection's start and end beside the
// drain's steps; a record whose plan marks no drain has none.
func TestReportShowsLongConnectionsAgainstTheDrain(t *testing.T) {
	runDir := t.TempDir()
	writeFixture(t, runDir, "upgrade", upgradeFixture())
	old := upgradeFixture()
	old.meta.Scenario = "unmarked"
	for i := range old.meta.PlannedSteps {
		old.meta.PlannedSteps[i].Drain = ""
	}
	writeFixture(t, runDir, "unmarked", old)
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
	var got struct {
		Scenarios []struct {
			Name            string                  `json:"name"`
			LongConnections *record.LongConnections `json:"long_connections"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for _, sc := range got.Scenarios {
		lc := sc.LongConnections
		if sc.Name == "unmarked" {
			if lc != nil {
				t.Errorf("unmarked: long_connections = %+v, want none", lc)
			}
			continue
		}
		if lc == nil {
			t.Fatalf("%s: no long_connections in report.json", sc.Name)
		}
		want := record.Drain{StartStep: "stop-old-workers", StartSignal: "WINCH", StartSentMs: 4000,
			EndStep: "quit-old-master", EndSignal: "QUIT", EndSentMs: 6000, EndVerifiedMs: 6200}
		if lc.Drain != want {
			t.Errorf("drain = %+v, want %+v", lc.Drain, want)
		}
		if len(lc.Connections) != 2 {
			t.Fatalf("connections = %+v, want the 2 downloads", lc.Connections)
		}
		c := lc.Connections[0]
		if c.Kind != "download" || c.StartMs != 100 || c.EndMs != 7000 || !c.Held || !c.Spans || c.Outcome != "completed" || c.Phase != "after-quit" {
			t.Errorf("connection = %+v, want download 100→7000 ms, held, spanning, completed in after-quit", c)
		}
	}
	md, _ := os.ReadFile(filepath.Join(runDir, record.ReportMarkdown))
	if !strings.Contains(string(md), "Long connections against the drain") {
		t.Errorf("report.md does not show the long connections against the drain")
	}
}

// A download the client read past QUIT, but that nginx had finished
// writing before it (its tail in the sockets' buffers: a hold the buffers
// swallowed), does not span the drain: nginx's log, not the client's
// read, says when the worker let it go.
func TestNginxsLogSaysWhenADownloadEnded(t *testing.T) {
	startMs := float64(testStart.UnixNano()) / 1e6
	f := upgradeFixture()
	f.downloads[0].HeldMs = 1500
	skip := map[string]bool{"slow/1": true}
	early := record.ServerEntry{ID: "slow/1", PID: 10, Status: 200, BodyBytesSent: f.downloads[0].Received,
		ContentLength: strconv.FormatInt(f.downloads[0].Expected, 10), Msec: (startMs + 5000) / 1000}
	s := witnessScenario(t, f, skip, early)
	wantVerdict(t, s, record.VerdictError, analysis.NothingProvesDrain+": 1 long connection opened before stop-old-workers (WINCH) was sent at 4000 ms "+
		"ended before quit-old-master (QUIT) was sent at 6000 ms: download 1 completed at 7000 ms (nginx had written its last byte at 5000 ms: the rest was in the sockets' buffers)")
	c := s.LongConnections.Connections[0]
	if c.NginxEndMs != 5000 || c.HeldMs != 1500 || c.Spans {
		t.Errorf("download 1 = %+v: want nginx's end at 5000 ms, held 1500 ms, not spanning", c)
	}

	// nginx's end after QUIT: the download spans, and the run passes.
	late := early
	late.Msec = (startMs + 6500) / 1000
	s = witnessScenario(t, upgradeFixture(), skip, late)
	if s.Verdict != record.VerdictPass || s.LongConnections.Connections[0].NginxEndMs != 6500 {
		t.Errorf("verdict %s %q, download 1 %+v: want pass, nginx's end at 6500 ms", s.Verdict, s.Reasons, s.LongConnections.Connections[0])
	}
}
