package analysis

import (
	"reflect"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Hand-written client records and server logs, one case per class of the
// reconciliation: each names the class a request must land in, and the pid.
func TestReconcileClasses(t *testing.T) {
	ok := func(id string) record.ServerEntry {
		return record.ServerEntry{ID: id, PID: 40, Status: 200, BodyBytesSent: 572, ContentLength: "572", Msec: 10}
	}
	cases := []struct {
		name       string
		client     record.ClientRecord
		server     []record.ServerEntry
		class      string
		pid        int
		incomplete bool
	}{
		{"ok and logged", record.ClientRecord{ID: "a/1", Outcome: record.ClientOK, Status: 200}, []record.ServerEntry{ok("a/1")}, record.WitnessOK, 0, false},
		{"failed, logged 2xx with every byte", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed},
			[]record.ServerEntry{ok("a/1")}, record.WitnessLost, 40, false},
		{"failed, never logged", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed, StartMs: 200, EndMs: 210}, nil, record.WitnessNever, 0, false},
		{"failed, logged with fewer bytes", record.ClientRecord{ID: "slow/0", Kind: record.KindDownload, Outcome: record.ClientFailed, Status: 200},
			[]record.ServerEntry{{ID: "slow/0", PID: 41, Status: 200, BodyBytesSent: 933888, ContentLength: "4194304", Msec: 12}}, record.WitnessCut, 41, false},
		{"failed, logged 499", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed},
			[]record.ServerEntry{{ID: "a/1", PID: 42, Status: 499, Msec: 3}}, record.WitnessCut, 42, false},
		{"failed, logged 444", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed},
			[]record.ServerEntry{{ID: "a/1", PID: 43, Status: 444, Msec: 3}}, record.WitnessCut, 43, false},
		{"failed, a status the client never saw", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed},
			[]record.ServerEntry{{ID: "a/1", PID: 44, Status: 502, Msec: 3}}, record.WitnessCut, 44, false},
		{"failed, the error status the client got", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed, Status: 503},
			[]record.ServerEntry{{ID: "a/1", PID: 44, Status: 503, Msec: 3}}, record.WitnessErrorAns, 44, false},
		{"failed, begun by a worker that never logged it (KILLed)", record.ClientRecord{ID: "slow/2", Kind: record.KindDownload, Outcome: record.ClientFailed, Status: 200, ServerPid: 41},
			nil, record.WitnessCut, 41, false},
		{"a WebSocket the server ended", record.ClientRecord{ID: "ws/0", Kind: record.KindWebSocket, Outcome: record.ClientFailed, Status: 101},
			[]record.ServerEntry{{ID: "ws/0", PID: 45, Status: 101, Msec: 9}}, record.WitnessCut, 45, false},
		{"replayed: the last attempt decides", record.ClientRecord{ID: "a/1", Outcome: record.ClientFailed},
			[]record.ServerEntry{{ID: "a/1", PID: 40, Status: 499, Msec: 1}, {ID: "a/1", PID: 46, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 2}}, record.WitnessLost, 46, false},
		{"failed, in flight across a KILL of one worker that never logged it", record.ClientRecord{ID: "a/9", Outcome: record.ClientFailed, StartMs: 95, EndMs: 130},
			nil, record.WitnessCut, 40, false},
		{"replayed, its first attempt never read", record.ClientRecord{ID: "a/1", Kind: record.KindReplay, Outcome: record.ClientReplayed, Attempts: 2, StartMs: 300, EndMs: 301},
			[]record.ServerEntry{ok("a/1")}, record.WitnessNever, 0, false},
		{"replayed, its first attempt answered in full", record.ClientRecord{ID: "a/1", Kind: record.KindReplay, Outcome: record.ClientReplayed, Attempts: 2, StartMs: 300, EndMs: 301},
			[]record.ServerEntry{{ID: "a/1", PID: 47, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 1}, {ID: "a/1", PID: 48, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 2}}, record.WitnessLost, 47, false},
		{"cancelled by the client", record.ClientRecord{ID: "a/1", Outcome: record.ClientCancelled}, []record.ServerEntry{{ID: "a/1", Status: 499}}, record.WitnessCanceled, 0, false},
		{"ok on the client, absent from the log", record.ClientRecord{ID: "a/1", Outcome: record.ClientOK, Status: 200}, nil, record.WitnessUnlogged, 0, true},
		{"ok on the client, unlogged, in flight across a KILL: answered, then the worker died before its log line", record.ClientRecord{ID: "a/2", Outcome: record.ClientOK, Status: 200, StartMs: 95, EndMs: 110}, nil, record.WitnessAnsweredKilled, 0, false},
		{"logged but unknown to the client", record.ClientRecord{ID: "a/1", Outcome: record.ClientOK, Status: 200},
			[]record.ServerEntry{ok("a/1"), ok("b/7")}, record.WitnessUnknown, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Reconcile([]record.ClientRecord{c.client}, c.server, Kill{PIDs: []int{40}, FromMs: 100, ToMs: 120})
			if r.Classes[c.class] != 1 {
				t.Fatalf("classes %v, want one %s", r.Classes, c.class)
			}
			if r.Complete() == c.incomplete {
				t.Fatalf("complete = %v, want %v (unlogged %v, unknown %v)", r.Complete(), !c.incomplete, r.Unlogged, r.Unknown)
			}
			if c.client.Outcome == record.ClientFailed || c.client.Outcome == record.ClientReplayed {
				if len(r.Drops) != 1 || r.Drops[0].Class != c.class || r.Drops[0].PID != c.pid {
					t.Fatalf("drops %+v, want one %s by pid %d", r.Drops, c.class, c.pid)
				}
			}
		})
	}
}

// The harness's own probes carry no id: counted, never a premise failure.
func TestReconcileProbesAreNotUnknown(t *testing.T) {
	r := Reconcile(nil, []record.ServerEntry{{Status: 200}, {Status: 200}})
	if !r.Complete() || r.Unidentified != 2 {
		t.Fatalf("got %+v", r)
	}
}

func TestGenerations(t *testing.T) {
	samples := []record.ProcessSample{
		{Ms: 0, At: "start", Procs: []record.FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker", Binary: "old"}}},
		{Ms: 100, At: "after spawn-new-master", Procs: []record.FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker", Binary: "old"},
			{PID: 20, PPID: 9, Role: "master", Binary: "new"}, {PID: 21, PPID: 20, Role: "worker", Binary: "new"}}},
		// the new master was killed: its worker is an orphan
		{Ms: 300, At: "final", Procs: []record.FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 30, PPID: 9, Role: "worker", Binary: "old"},
			{PID: 21, PPID: 1, Role: "worker", Binary: "unknown"}}},
	}
	g := NewGenerations(samples)
	got := []string{}
	for _, q := range []struct {
		pid int
		ms  float64
	}{{10, 50}, {21, 150}, {21, 350}, {30, 400}, {77, 10}} {
		gen, orphan := g.Of(q.pid, q.ms)
		if orphan {
			gen += " orphan"
		}
		got = append(got, gen)
	}
	want := []string{"old-1", "new-1", "new-1 orphan", "old-2", "unknown"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A fault's KILL of a worker is a KILL like a step's: an answer the client
// has from the worker it killed before the line was written is
// answered-then-killed, not a hole in the server's record. A KILL of a
// master kills no request; a record without the injection's start gives no
// span (the run's upgrade+kill-new-worker, 2026-12-07: http1/1603 answered
// at 3,208 ms, worker 180's last line at 3,207 ms, the injection returned
// at 3,213 ms).
func TestKillSpansOfFaults(t *testing.T) {
	s := &record.Scenario{Faults: []record.FaultRecord{
		{Name: "kill-new-worker", StartMs: 3050, InjectedMs: 3212.9, Outcome: "KILL to worker 180 of the new master 173"},
		{Name: "kill-old-master", StartMs: 5000, InjectedMs: 5100, Outcome: "KILL to the old master 39"},
		{Name: "kill-old-worker", InjectedMs: 7000, Outcome: "KILL to worker 44 of the old master 39"},
	}}
	spans := KillSpans(s)
	if len(spans) != 1 || spans[0].PIDs[0] != 180 || spans[0].FromMs != 3050 || spans[0].ToMs != 3212.9 {
		t.Fatalf("spans = %+v", spans)
	}
	answered := record.ClientRecord{ID: "http1/1603", Outcome: record.ClientOK, Status: 200, StartMs: 3206, EndMs: 3208}
	if r := Reconcile([]record.ClientRecord{answered}, nil, spans...); !r.Complete() || r.Classes[record.WitnessAnsweredKilled] != 1 {
		t.Errorf("answered across the fault's KILL: %+v", r)
	}
	if r := Reconcile([]record.ClientRecord{answered}, nil, KillSpans(&record.Scenario{Faults: s.Faults[1:]})...); r.Complete() {
		t.Error("an unlogged answer excused by a master's KILL or a span the record does not give")
	}
	before := answered
	before.StartMs, before.EndMs = 2000, 2002
	if r := Reconcile([]record.ClientRecord{before}, nil, spans...); r.Complete() {
		t.Error("an unlogged answer long before the fault excused")
	}
}
