package analysis

import (
	"slices"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// The KILL fallback's excuse covers the pids it killed, and only those: a
// failure no worker logged, in flight while a KILL landed, is cut by the
// killed pids; in flight while a worker died unplanned, it is lost in
// that crash — whether or not a KILL landed too — and so is one the
// crashed worker named.
func TestReconcileKillAndCrash(t *testing.T) {
	kill := Kill{PIDs: []int{41, 42}, FromMs: 100, ToMs: 150}
	crash := Kill{PIDs: []int{57}, FromMs: 140, ToMs: 300, Crash: true}
	failed := func(id string, from, to float64, pid int) record.ClientRecord {
		return record.ClientRecord{ID: id, Outcome: record.ClientFailed, StartMs: from, EndMs: to, ServerPid: pid}
	}
	for _, tc := range []struct {
		name  string
		c     record.ClientRecord
		class string
		pid   int
		cands []int
	}{
		{"across the KILL only", failed("a/1", 90, 110, 0), record.WitnessCut, 0, []int{41, 42}},
		{"across the crash only", failed("a/2", 200, 210, 0), record.WitnessCrash, 57, []int{57}},
		{"across both", failed("a/3", 145, 146, 0), record.WitnessCrash, 0, []int{41, 42, 57}},
		{"named by the crashed worker", failed("slow/0", 0, 400, 57), record.WitnessCrash, 57, nil},
		{"named by a killed worker", failed("slow/1", 0, 120, 41), record.WitnessCut, 41, nil},
		{"in neither", failed("a/4", 500, 510, 0), record.WitnessNever, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Reconcile([]record.ClientRecord{tc.c}, nil, kill, crash)
			d := r.Drops[0]
			if d.Class != tc.class || d.PID != tc.pid || !slices.Equal(d.Candidates, tc.cands) {
				t.Errorf("got %s pid %d candidates %v, want %s pid %d candidates %v", d.Class, d.PID, d.Candidates, tc.class, tc.pid, tc.cands)
			}
		})
	}
}

// nginx's word on a death is held against the plan: a KILL step's or a
// killing fault's pids died of signal 9 by design; any other pid, or the
// same pid of another signal, is a death.
func TestDeathsFromTheErrorLog(t *testing.T) {
	line := func(pid, sig string) string {
		return "2026/01/01 00:00:00 [alert] 10#10: worker process " + pid + " exited on signal " + sig
	}
	s := &record.Scenario{
		Steps: []record.Step{{Name: "kill-workers", Signal: "KILL", PID: 11, PIDs: []int{11, 12}, SentMs: 100, VerifiedMs: 200, Verified: true,
			LogLines: []string{line("11", "9"), line("12", "9"), line("13", "9")}}},
		Faults: []record.FaultRecord{{Name: "kill-new-worker", InjectedMs: 300, Outcome: "KILL to worker 21 of the new master 20",
			LogLines: []string{line("21", "9"), line("22", "11")}}},
	}
	ds := Deaths(s, nil, nil, ErrorLog{})
	var pids []int
	for _, d := range ds {
		pids = append(pids, d.PID)
	}
	if !slices.Equal(pids, []int{13, 22}) {
		t.Fatalf("deaths %+v: want 13 (not killed by the step) and 22 (signal 11)", ds)
	}
	if ds[1].Signal != 11 || ds[1].Master != 10 || ds[1].Role != "worker process" {
		t.Errorf("death %+v: want signal 11, master 10, worker process", ds[1])
	}
}

// A new binary that dies as its USR2 fails is the step's failure (the
// broken-build scenario judges its cause); one that dies after its USR2
// verified is a death.
func TestDeathOfANewBinary(t *testing.T) {
	crash := "2026/01/01 00:00:00 [alert] 10#10: new binary process 20 exited on signal 11"
	for _, verified := range []bool{false, true} {
		s := &record.Scenario{Steps: []record.Step{{Name: "spawn-new-master", Signal: "USR2", PID: 10, PIDs: []int{10}, SentMs: 100,
			VerifiedMs: 200, Verified: verified, Expected: map[bool]string{false: record.ExpectFail}[verified], LogLines: []string{crash}}}}
		ds := Deaths(s, nil, nil, ErrorLog{})
		if want := map[bool]int{false: 0, true: 1}[verified]; len(ds) != want {
			t.Errorf("USR2 verified=%t: deaths %+v, want %d", verified, ds, want)
		}
		// The same line in the run's whole error log (error-log.txt) only.
		s.Steps[0].LogLines = nil
		ds = Deaths(s, nil, nil, ErrorLog{Lines: []string{crash}})
		if want := map[bool]int{false: 0, true: 1}[verified]; len(ds) != want {
			t.Errorf("USR2 verified=%t, the line in error-log.txt: deaths %+v, want %d", verified, ds, want)
		}
	}
}

// A worker respawned and dead between two tables, just before a step: the
// step quotes its death (its first read of the log precedes its sending),
// but the line's own second places it; a failure in flight then is lost in
// that crash, not never-reached-a-worker. Measured live: the crashing
// build's worker 241, dead at 7.0 s, the QUIT sent at 7,045 ms.
func TestCrashJustBeforeAStepIsPlacedByItsSecond(t *testing.T) {
	start := time.Date(2026, 12, 7, 1, 59, 17, 0, time.UTC)
	line := "2026/12/07 01:59:24 [alert] 155#0: worker process 241 exited on signal 11"
	s := &record.Scenario{Steps: []record.Step{{Name: "quit-old-master", Signal: "QUIT", PID: 46, PIDs: []int{46}, SentMs: 7045, VerifiedMs: 14204, Verified: true,
		LogLines: []string{line}}}, EndMs: 16000}
	samples := []record.ProcessSample{
		{Ms: 4831, At: "after stop-old-workers", Procs: []record.FinalProcess{{PID: 46, Role: "master"}, {PID: 155, Role: "master", PPID: 46}, {PID: 214, Role: "worker", PPID: 155}}},
		{Ms: 7045, At: "before quit-old-master", Procs: []record.FinalProcess{{PID: 46, Role: "master"}, {PID: 155, Role: "master", PPID: 46}, {PID: 242, Role: "worker", PPID: 155}}},
	}
	ds := Deaths(s, samples, NewGenerations(samples), ErrorLog{Start: start, Lines: []string{line}})
	var d241 []record.Death
	for _, d := range ds {
		if d.PID == 241 {
			d241 = append(d241, d)
		}
	}
	if len(d241) != 1 || d241[0].FromMs > 7000 || d241[0].ToMs < 7009 {
		t.Fatalf("deaths %+v: want worker 241, placed around 7,000 ms by its line", ds)
	}
	failed := record.ClientRecord{ID: "http1/3503", Outcome: record.ClientFailed, StartMs: 7008, EndMs: 7009}
	r := Reconcile([]record.ClientRecord{failed}, nil, CrashWindows(d241)...)
	if d := r.Drops[0]; d.Class != record.WitnessCrash || d.PID != 241 {
		t.Fatalf("the failure at 7,009 ms: %s pid %d, want lost-in-a-crash by 241", d.Class, d.PID)
	}
}
