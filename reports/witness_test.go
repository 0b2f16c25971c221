package reports

import (
	"reflect"
	"testing"
)

// Hand-written client records and server logs, one case per class of the
// reconciliation: each names the class a request must land in, and the pid.
func TestReconcileClasses(t *testing.T) {
	ok := func(id string) ServerEntry {
		return ServerEntry{ID: id, PID: 40, Status: 200, BodyBytesSent: 572, ContentLength: "572", Msec: 10}
	}
	cases := []struct {
		name       string
		client     ClientRecord
		server     []ServerEntry
		class      string
		pid        int
		incomplete bool
	}{
		{"ok and logged", ClientRecord{ID: "a/1", Outcome: ClientOK, Status: 200}, []ServerEntry{ok("a/1")}, WitnessOK, 0, false},
		{"failed, logged 2xx with every byte", ClientRecord{ID: "a/1", Outcome: ClientFailed},
			[]ServerEntry{ok("a/1")}, WitnessLost, 40, false},
		{"failed, never logged", ClientRecord{ID: "a/1", Outcome: ClientFailed, StartMs: 200, EndMs: 210}, nil, WitnessNever, 0, false},
		{"failed, logged with fewer bytes", ClientRecord{ID: "slow/0", Kind: KindDownload, Outcome: ClientFailed, Status: 200},
			[]ServerEntry{{ID: "slow/0", PID: 41, Status: 200, BodyBytesSent: 933888, ContentLength: "4194304", Msec: 12}}, WitnessCut, 41, false},
		{"failed, logged 499", ClientRecord{ID: "a/1", Outcome: ClientFailed},
			[]ServerEntry{{ID: "a/1", PID: 42, Status: 499, Msec: 3}}, WitnessCut, 42, false},
		{"failed, logged 444", ClientRecord{ID: "a/1", Outcome: ClientFailed},
			[]ServerEntry{{ID: "a/1", PID: 43, Status: 444, Msec: 3}}, WitnessCut, 43, false},
		{"failed, a status the client never saw", ClientRecord{ID: "a/1", Outcome: ClientFailed},
			[]ServerEntry{{ID: "a/1", PID: 44, Status: 502, Msec: 3}}, WitnessCut, 44, false},
		{"failed, the error status the client got", ClientRecord{ID: "a/1", Outcome: ClientFailed, Status: 503},
			[]ServerEntry{{ID: "a/1", PID: 44, Status: 503, Msec: 3}}, WitnessErrorAns, 44, false},
		{"failed, begun by a worker that never logged it (KILLed)", ClientRecord{ID: "slow/2", Kind: KindDownload, Outcome: ClientFailed, Status: 200, ServerPid: 41},
			nil, WitnessCut, 41, false},
		{"a WebSocket the server ended", ClientRecord{ID: "ws/0", Kind: KindWebSocket, Outcome: ClientFailed, Status: 101},
			[]ServerEntry{{ID: "ws/0", PID: 45, Status: 101, Msec: 9}}, WitnessCut, 45, false},
		{"replayed: the last attempt decides", ClientRecord{ID: "a/1", Outcome: ClientFailed},
			[]ServerEntry{{ID: "a/1", PID: 40, Status: 499, Msec: 1}, {ID: "a/1", PID: 46, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 2}}, WitnessLost, 46, false},
		{"failed, in flight across a KILL of one worker that never logged it", ClientRecord{ID: "a/9", Outcome: ClientFailed, StartMs: 95, EndMs: 130},
			nil, WitnessCut, 40, false},
		{"replayed, its first attempt never read", ClientRecord{ID: "a/1", Kind: KindReplay, Outcome: ClientReplayed, Attempts: 2, StartMs: 300, EndMs: 301},
			[]ServerEntry{ok("a/1")}, WitnessNever, 0, false},
		{"replayed, its first attempt answered in full", ClientRecord{ID: "a/1", Kind: KindReplay, Outcome: ClientReplayed, Attempts: 2, StartMs: 300, EndMs: 301},
			[]ServerEntry{{ID: "a/1", PID: 47, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 1}, {ID: "a/1", PID: 48, Status: 200, BodyBytesSent: 5, ContentLength: "5", Msec: 2}}, WitnessLost, 47, false},
		{"cancelled by the client", ClientRecord{ID: "a/1", Outcome: ClientCancelled}, []ServerEntry{{ID: "a/1", Status: 499}}, WitnessCanceled, 0, false},
		{"ok on the client, absent from the log", ClientRecord{ID: "a/1", Outcome: ClientOK, Status: 200}, nil, WitnessUnlogged, 0, true},
		{"ok on the client, unlogged, in flight across a KILL: answered, then the worker died before its log line", ClientRecord{ID: "a/2", Outcome: ClientOK, Status: 200, StartMs: 95, EndMs: 110}, nil, WitnessAnsweredKilled, 0, false},
		{"logged but unknown to the client", ClientRecord{ID: "a/1", Outcome: ClientOK, Status: 200},
			[]ServerEntry{ok("a/1"), ok("b/7")}, WitnessUnknown, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Reconcile([]ClientRecord{c.client}, c.server, Kill{PIDs: []int{40}, FromMs: 100, ToMs: 120})
			if r.Classes[c.class] != 1 {
				t.Fatalf("classes %v, want one %s", r.Classes, c.class)
			}
			if r.Complete() == c.incomplete {
				t.Fatalf("complete = %v, want %v (unlogged %v, unknown %v)", r.Complete(), !c.incomplete, r.Unlogged, r.Unknown)
			}
			if c.client.Outcome == ClientFailed || c.client.Outcome == ClientReplayed {
				if len(r.Drops) != 1 || r.Drops[0].Class != c.class || r.Drops[0].PID != c.pid {
					t.Fatalf("drops %+v, want one %s by pid %d", r.Drops, c.class, c.pid)
				}
			}
		})
	}
}

// The harness's own probes carry no id: counted, never a premise failure.
func TestReconcileProbesAreNotUnknown(t *testing.T) {
	r := Reconcile(nil, []ServerEntry{{Status: 200}, {Status: 200}})
	if !r.Complete() || r.Unidentified != 2 {
		t.Fatalf("got %+v", r)
	}
}

func TestGenerations(t *testing.T) {
	samples := []ProcessSample{
		{Ms: 0, At: "start", Procs: []FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker", Binary: "old"}}},
		{Ms: 100, At: "after spawn-new-master", Procs: []FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 10, PPID: 9, Role: "worker", Binary: "old"},
			{PID: 20, PPID: 9, Role: "master", Binary: "new"}, {PID: 21, PPID: 20, Role: "worker", Binary: "new"}}},
		// the new master was killed: its worker is an orphan
		{Ms: 300, At: "final", Procs: []FinalProcess{{PID: 9, PPID: 1, Role: "master", Binary: "old"}, {PID: 30, PPID: 9, Role: "worker", Binary: "old"},
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

// An expectation of drops holds the drops to the server's record: the
// class it names, and the processes the causing step signalled.
func TestWitnessControl(t *testing.T) {
	scenario := func(drops ...WitnessDrop) *Scenario {
		return &Scenario{
			ExpectDrops: &DropSpec{Phase: "after-kill", Witness: []string{WitnessCut}, BySignalled: true},
			Steps:       []Step{{Name: "kill-workers", Signal: "KILL", PID: 40, PIDs: []int{40, 41}, Phase: "after-kill"}},
			Witness:     &Witness{Present: true, Drops: drops},
		}
	}
	within := []*Phase{{Name: "after-kill"}}
	cases := []struct {
		name  string
		drops []WitnessDrop
		fails int
	}{
		{"cut by the killed workers", []WitnessDrop{{Decision: Decision{Class: WitnessCut, PID: 41}, Phase: "after-kill"},
			{Decision: Decision{Class: WitnessCut, Candidates: []int{40, 41}}, Phase: "after-kill"}}, 0},
		{"never reached a worker", []WitnessDrop{{Decision: Decision{Class: WitnessNever}, Phase: "after-kill"}}, 1},
		{"cut by another worker", []WitnessDrop{{Decision: Decision{Class: WitnessCut, PID: 99}, Phase: "after-kill"}}, 1},
		{"answered but lost", []WitnessDrop{{Decision: Decision{Class: WitnessLost, PID: 40}, Phase: "after-kill"}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := witnessControlReasons(scenario(c.drops...), within)
			if len(got) != c.fails {
				t.Fatalf("reasons %q, want %d", got, c.fails)
			}
		})
	}
}
