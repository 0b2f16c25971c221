package reports

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// Each test below is a doctored record on which a verdict could be fooled
// into a pass: it must not be.

func wantVerdict(t *testing.T, s *record.Scenario, verdict, reason string) {
	t.Helper()
	if s.Verdict != verdict {
		t.Fatalf("verdict = %s, want %s; reasons: %q", s.Verdict, verdict, s.Reasons)
	}
	if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, reason) }) {
		t.Fatalf("reasons = %q, want one containing %q", s.Reasons, reason)
	}
	if j := judge.Scenario(s); j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
		t.Errorf("Judge again = %s %q, want %s %q: not recomputable from the record", j.Verdict, j.Reasons, s.Verdict, s.Reasons)
	}
}

// Case 1: a run killed half-way leaves whole records; it must not pass.
func TestKilledRunIsAnError(t *testing.T) {
	t.Run("no end marker", func(t *testing.T) {
		f := upgradeFixture()
		f.omit = []string{record.EndFile}
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "no end-of-run marker (end.json): the run was killed or interrupted")
	})
	t.Run("fewer steps than planned", func(t *testing.T) {
		f := upgradeFixture()
		f.events = f.events[:2]
		f.results = steadyLoad(6000)
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "2 of 3 planned steps recorded: quit-old-master never ran")
	})
	t.Run("no final state", func(t *testing.T) {
		f := upgradeFixture()
		f.final = nil
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "final.json missing")
	})
	t.Run("report DIR says so", func(t *testing.T) {
		runDir := t.TempDir()
		f := upgradeFixture()
		f.omit = []string{record.EndFile, record.FinalFile}
		f.final = nil
		writeFixture(t, runDir, "upgrade", f)
		r, err := Build(runDir)
		if err != nil {
			t.Fatal(err)
		}
		wantVerdict(t, &r.Scenarios[0], record.VerdictError, "killed or interrupted before it finished")
	})
}

// termFixture is a clean term-fallback: TERM at 6 s opens after-term; two
// downloads on the old set (started before USR2) complete, two started on
// the new set after WINCH are cut by TERM, one request fails with EOF.
func termFixture() fixture {
	f := upgradeFixture()
	f.meta.Scenario, f.meta.Expect = "term-fallback", record.ExpectDrops
	f.meta.ExpectDrops = &record.DropSpec{Phase: "after-term", Classes: analysis.ServerSide, MaxOutageMs: 500, KeepDownloadsBefore: "spawn-new-master"}
	f.meta.PlannedSteps[2].Name = "terminate-new-master"
	f.events[2] = record.Event{Name: "terminate-new-master", Signal: "TERM", PID: 11, SentMs: 6000, VerifiedMs: 6100, Verified: true, Phase: "after-term"}
	f.final.ServingBinary, f.final.ExpectedBinary = "old", "old"
	f.downloads = append(f.downloads,
		loadgen.DownloadRecord{ID: 3, StartMs: 4100, EndMs: 6010, Expected: 1 << 20, Received: 1 << 19, Error: "unexpected EOF"},
		loadgen.DownloadRecord{ID: 4, StartMs: 4100, EndMs: 6010, Expected: 1 << 20, Received: 1 << 19, Error: "unexpected EOF"})
	f.meta.Load.Slow = 4
	f.results = append(f.results, failedWith(6005, 0, "EOF"))
	return f
}

// Case 2: "drops" names where and what.
func TestPositiveControlsNameWhereAndWhat(t *testing.T) {
	t.Run("term-fallback as measured passes", func(t *testing.T) {
		s := buildFixture(t, termFixture())
		if s.Verdict != record.VerdictPass {
			t.Fatalf("verdict %s: %q", s.Verdict, s.Reasons)
		}
		if s.Held == nil || s.Held.KeptDownloads != 2 || s.Held.KeptDownloadsDone != 2 {
			t.Errorf("held = %+v, want 2 downloads kept by the old set", s.Held)
		}
	})
	t.Run("term-fallback refusing everything for seconds fails", func(t *testing.T) {
		f := termFixture()
		for i, r := range f.results {
			if ms := analysis.DurationToMs(r.Timestamp.Sub(testStart)); ms >= 6000 && ms < 7500 {
				f.results[i] = failedWith(ms, 0, "connect: connection refused")
			}
		}
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "requests failed for 1500 ms in a row in after-term, above the bound of 500 ms")
	})
	t.Run("term-fallback cutting the old set's downloads fails", func(t *testing.T) {
		f := termFixture()
		f.downloads[0].Completed, f.downloads[0].EndMs, f.downloads[0].Error = false, 6010, "unexpected EOF"
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "1 of 2 long downloads started before spawn-new-master were cut")
	})
	t.Run("term-fallback with drops in steady fails", func(t *testing.T) {
		f := termFixture()
		f.results = append(f.results, failedWith(500, 0, "read: connection reset by peer"))
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "1 dropped in steady, outside after-term")
	})
	t.Run("a 5xx is not what TERM does", func(t *testing.T) {
		f := termFixture()
		f.results = append(f.results, failedWith(6200, 502, "502 Bad Gateway"))
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "1 failed in after-term with status-5xx, not what the causing step does")
	})

	killFixture := func() fixture {
		f := upgradeFixture()
		f.meta.Scenario, f.meta.Expect = "kill-fallback", record.ExpectDrops
		f.meta.ExpectDrops = &record.DropSpec{Phase: "after-kill", Classes: analysis.ServerSide, CutHeld: true}
		f.meta.PlannedSteps = []record.PlannedStep{{Name: "kill-workers", AuditMs: 1800}}
		f.events = []record.Event{{Name: "kill-workers", Signal: "KILL", PID: 7, SentMs: 2000, VerifiedMs: 2050, Verified: true, Phase: "after-kill"}}
		f.results = steadyLoad(4000)
		f.final.ServingBinary, f.final.ExpectedBinary = "old", "old"
		for i := range f.downloads {
			f.downloads[i].EndMs, f.downloads[i].Completed, f.downloads[i].Received, f.downloads[i].Error = 2020, false, 1000, "unexpected EOF"
		}
		f.conns = []loadgen.ConnRecord{
			{ID: 1, Profile: loadgen.SlowProfile, OpenMs: 100, EndMs: 2020, Outcome: loadgen.ConnClosedUnderRequest, Requests: 1},
			{ID: 2, Profile: loadgen.SlowProfile, OpenMs: 100, EndMs: 2020, Outcome: loadgen.ConnClosedUnderRequest, Requests: 1},
			{ID: 3, Profile: "main", OpenMs: 2010, EndMs: 2020, Outcome: loadgen.ConnResetUnderRequest, Requests: 1},
		}
		f.results = append(f.results, failedWith(2010, 0, "read: connection reset by peer"))
		return f
	}
	t.Run("kill-fallback as measured passes", func(t *testing.T) {
		s := buildFixture(t, killFixture())
		if s.Verdict != record.VerdictPass {
			t.Fatalf("verdict %s: %q", s.Verdict, s.Reasons)
		}
	})
	t.Run("kill-fallback satisfied by a client cancellation in steady fails", func(t *testing.T) {
		f := killFixture()
		for i := range f.downloads {
			f.downloads[i].EndMs, f.downloads[i].Completed, f.downloads[i].Received, f.downloads[i].Error = 3000, true, 1<<20, ""
		}
		f.results = steadyLoad(4000)
		f.results = append(f.results, failedWith(1000, 0, `Get "http://127.0.0.1:8080/": context canceled`))
		f.conns = nil // nothing was closed under a request either
		s := buildFixture(t, f)
		wantVerdict(t, s, record.VerdictFail, "positive control saw no drop in after-kill")
		if s.Dropped != 0 || s.Requests.Cancelled != 1 {
			t.Errorf("dropped %d, cancelled %d: a client cancellation is never a drop", s.Dropped, s.Requests.Cancelled)
		}
	})
	t.Run("kill-fallback whose downloads were not cut fails", func(t *testing.T) {
		f := killFixture()
		f.downloads[1].EndMs, f.downloads[1].Completed, f.downloads[1].Received, f.downloads[1].Error = 3000, true, 1<<20, ""
		f.conns[1].EndMs, f.conns[1].Outcome = 3000, loadgen.ConnClosedByClient // its connection too
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "1 of 2 long downloads in flight at kill-workers were not cut")
	})
	t.Run("kill-fallback losing more than was held fails", func(t *testing.T) {
		f := killFixture()
		for ms := 2100.0; ms < 2200; ms += 10 {
			f.results = append(f.results, failedWith(ms+1, 0, "EOF"))
		}
		wantVerdict(t, buildFixture(t, f), record.VerdictFail, "more than the 3 connections open at kill-workers")
	})
}

// Case 3: the load must cover the run, and never fall silent.
func TestLoadMustCoverTheRun(t *testing.T) {
	t.Run("started late", func(t *testing.T) {
		f := upgradeFixture()
		f.results = slices.DeleteFunc(f.results, func(r vegeta.Result) bool { return r.Timestamp.Sub(testStart) < 1500*time.Millisecond })
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "the load started 500 ms before step spawn-new-master, short of its steady window of 1800 ms")
	})
	t.Run("stopped before the last audit ended", func(t *testing.T) {
		f := upgradeFixture()
		f.results = steadyLoad(6500)
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "before the end of step quit-old-master's audit window")
	})
	t.Run("a 900 ms stall of the load in a short phase", func(t *testing.T) {
		f := upgradeFixture()
		// A phase of 950 ms (exempt from the rate check) in which the load
		// sent nothing for 900 ms.
		f.events = append(f.events, record.Event{Name: "extra", Signal: "HUP", PID: 9, SentMs: 7000, VerifiedMs: 7010, Verified: true, Phase: "short"})
		f.events[2].SentMs, f.events[2].VerifiedMs = 6050, 6100
		f.meta.PlannedSteps = append(f.meta.PlannedSteps, record.PlannedStep{Name: "extra", AuditMs: 900})
		f.results = slices.DeleteFunc(f.results, func(r vegeta.Result) bool {
			ms := analysis.DurationToMs(r.Timestamp.Sub(testStart))
			return ms >= 6060 && ms < 6960
		})
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "the load sent nothing in 8 windows while it should have")
	})
}

// Case 4: an expected failure carries its cause.
func TestExpectedFailureNeedsItsCause(t *testing.T) {
	broken := func(err string, log ...string) fixture {
		f := upgradeFixture()
		f.meta.Scenario = "broken-build"
		f.meta.PlannedSteps = []record.PlannedStep{{Name: "spawn-new-master", AuditMs: 1800, Expected: record.ExpectFail, ExpectedCause: `unknown directive "gzip"`}}
		f.events = []record.Event{{Name: "spawn-new-master", Signal: "USR2", PID: 9, SentMs: 2000, Verified: false, Error: err,
			Expected: record.ExpectFail, ExpectedCause: `unknown directive "gzip"`, Phase: "broken-usr2", LogLines: log}}
		return f
	}
	t.Run("the expected cause passes", func(t *testing.T) {
		s := buildFixture(t, broken("spawn-new-master (USR2 to [9]): new master exited",
			`2026/11/26 07:00:00 [emerg] 40#40: unknown directive "gzip" in /etc/nginx/nginx.conf:22`))
		if s.Verdict != record.VerdictPass {
			t.Fatalf("verdict %s: %q", s.Verdict, s.Reasons)
		}
	})
	t.Run("USR2 never delivered is an error", func(t *testing.T) {
		wantVerdict(t, buildFixture(t, broken("spawn-new-master: signal USR2 to [9]: exec kill: context deadline exceeded")),
			record.VerdictError, "failed, but not for the expected cause")
	})
	t.Run("another failure is an error", func(t *testing.T) {
		wantVerdict(t, buildFixture(t, broken("spawn-new-master: not verified after 10s",
			`[crit] 40#40: pwrite() "/run/nginx.pid" failed (28: No space left on device)`)),
			record.VerdictError, "failed, but not for the expected cause")
	})
	t.Run("no cause named is an error", func(t *testing.T) {
		f := broken("x")
		f.events[0].ExpectedCause = ""
		wantVerdict(t, buildFixture(t, f), record.VerdictError, "names no cause to check it against")
	})
}

// Case 6: a wrong answer is not ok.
func TestWrongAnswersFail(t *testing.T) {
	f := upgradeFixture()
	f.results = append(f.results,
		vegeta.Result{Code: 301, Timestamp: at(4500), Latency: time.Millisecond},
		failedWith(4600, 0, "loadgen: wrong answer: body of 3 bytes (sha256 abc), the steady phase served 612 bytes (sha256 def)"))
	s := buildFixture(t, f)
	wantVerdict(t, s, record.VerdictFail, "2 requests failed in old-workers-draining (status-3xx: 1, wrong-body: 1)")
	if s.Dropped != 2 {
		t.Errorf("dropped = %d, want 2", s.Dropped)
	}
}

// Stalls: a graceful path that answered nothing for a while lost nothing,
// and is still not graceful.
func TestStallsFailZeroDrops(t *testing.T) {
	t.Run("a request that waited 1.5 s", func(t *testing.T) {
		f := upgradeFixture()
		f.results = append(f.results, vegeta.Result{Code: 200, Timestamp: at(2501), Latency: 1500 * time.Millisecond})
		s := buildFixture(t, f)
		wantVerdict(t, s, record.VerdictFail, "stalled 1500 ms in both-sets")
		if s.Stall.Phase != "both-sets" || s.Stall.Ms != 1500 {
			t.Errorf("stall = %+v, want 1500 ms in both-sets", s.Stall)
		}
	})
	t.Run("no response for 1.2 s", func(t *testing.T) {
		f := upgradeFixture()
		// Every request sent between 4.5 and 5.7 s is answered at 5.7 s.
		for i, r := range f.results {
			if ms := analysis.DurationToMs(r.Timestamp.Sub(testStart)); ms >= 4500 && ms < 5700 {
				f.results[i].Latency = analysis.MsToDuration(5700 - ms)
			}
		}
		s := buildFixture(t, f)
		wantVerdict(t, s, record.VerdictFail, "longest gap without a response 1200 ms")
		if p := phaseNamed(t, s, "old-workers-draining"); p.GapMs != 1200 {
			t.Errorf("gap = %v ms, want 1200", p.GapMs)
		}
	})
	t.Run("under the limit passes", func(t *testing.T) {
		f := upgradeFixture()
		f.results = append(f.results, vegeta.Result{Code: 200, Timestamp: at(2501), Latency: 900 * time.Millisecond})
		if s := buildFixture(t, f); s.Verdict != record.VerdictPass || s.Stall.Ms != 900 {
			t.Fatalf("verdict %s, stall %+v: %q", s.Verdict, s.Stall, s.Reasons)
		}
	})
}

// A step that did not verify and for which nginx's log gives the cause is
// the path failing — a finding, verdict fail —; without a cause from nginx
// it is the measurement that failed — verdict error.
func TestFailedStepWithNginxCauseFails(t *testing.T) {
	f := upgradeFixture()
	f.events = f.events[:1]
	f.events[0].Verified, f.events[0].VerifiedMs = false, 0
	f.events[0].Error = "spawn-new-master (USR2 to [9]): no new master"
	f.events[0].LogLines = []string{`2026/11/26 07:00:00 [alert] 9#9: execve() failed while executing new binary process "nginx" (2: No such file or directory)`}
	f.results = steadyLoad(2500)
	s := buildFixture(t, f)
	wantVerdict(t, s, record.VerdictFail, `step spawn-new-master (USR2 to 9) failed: nginx logged`)
	if !slices.ContainsFunc(s.Causes, func(c record.Cause) bool {
		return strings.Contains(c.Text, "argv[0]") && c.Class == record.CauseStepFailed
	}) {
		t.Errorf("causes = %+v, want the relative argv[0] explained", s.Causes)
	}

	f.events[0].LogLines = nil
	wantVerdict(t, buildFixture(t, f), record.VerdictError, "step spawn-new-master (USR2 to 9) not verified")
}
