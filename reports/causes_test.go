package reports

import (
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// The causes name nginx's behaviour from the step that opened the phase and
// the load; phases without drops, and drops no rule explains, say nothing.
func TestDropCauses(t *testing.T) {
	steps := []record.Step{
		{Name: "spawn-new-master", Signal: "USR2", Phase: "both-sets"},
		{Name: "stop-old-workers", Signal: "WINCH", Phase: "old-workers-draining"},
		{Name: "terminate-new-master", Signal: "TERM", Phase: "after-term"},
		{Name: "kill-workers", Signal: "KILL", Phase: "after-kill"},
	}
	phases := []record.Phase{
		{Name: "steady"},
		{Name: "both-sets", Failed: 1, ByClass: map[string]int{record.ClassStatus5xx: 1}},
		{Name: "old-workers-draining", Retried: 3, Failed: 1, ByClass: map[string]int{record.ClassEOF: 1}},
		{Name: "after-term", SlowCut: 2},
		{Name: "after-kill", Failed: 4, ByClass: map[string]int{record.ClassEOF: 4}, SlowCut: 4},
	}
	keepalive := &record.Scenario{Steps: steps, Phases: phases, Load: record.Load{KeepAlive: true}}
	got := words.CauseLines(analysis.DropCauses(keepalive))
	if len(got) != 3 {
		t.Fatalf("want 3 causes (draining, term, kill), got %d: %q", len(got), got)
	}
	for i, want := range []string{
		"old-workers-draining (1 failed request, 3 retried requests): the keep-alive close race",
		"after-term (2 cut downloads): TERM is nginx's fast shutdown",
		"after-kill (4 failed requests, 4 cut downloads): KILL",
	} {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("cause %d = %q, want it to start with %q", i, got[i], want)
		}
	}
	// The records name phase, class and count.
	recs := analysis.DropCauses(keepalive)
	want := []record.Cause{{Phase: "old-workers-draining", Class: record.ClassEOF, Count: 1}, {Phase: "old-workers-draining", Class: record.CauseRetried, Count: 3},
		{Phase: "after-term", Class: record.CauseSlowCut, Count: 2}, {Phase: "after-kill", Class: record.ClassEOF, Count: 4}, {Phase: "after-kill", Class: record.CauseSlowCut, Count: 4}}
	if len(recs) != len(want) {
		t.Fatalf("records %+v, want %d", recs, len(want))
	}
	for i, w := range want {
		if recs[i].Phase != w.Phase || recs[i].Class != w.Class || recs[i].Count != w.Count || recs[i].Text == "" {
			t.Errorf("record %d = %+v, want %+v with a text", i, recs[i], w)
		}
	}
	// Without keep-alive the race cannot be the cause: nothing is claimed.
	perRequest := &record.Scenario{Steps: steps, Phases: phases, Load: record.Load{KeepAlive: false}}
	for _, c := range analysis.DropCauses(perRequest) {
		if strings.Contains(c.Text, "keep-alive") {
			t.Errorf("keep-alive named as the cause of a load without keep-alive: %+v", c)
		}
	}
}
