package scenarios

import (
	"slices"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Which known losses each path declares under which load: the catalogue's
// review (docs/findings.md) as data.
func TestKnownLossesOfTheCatalogue(t *testing.T) {
	keepAlive := DefaultLoad
	keepAlive.KeepAlive = true
	proxy := DefaultLoad
	proxy.Traffic = []string{TrafficProxy}
	http2 := DefaultLoad
	http2.Traffic = []string{TrafficHTTP2}
	type loss struct {
		name   string
		phases []string
	}
	for _, tc := range []struct {
		scenario string
		load     Load
		want     []loss
	}{
		{"upgrade", DefaultLoad, nil},
		{"rollback", DefaultLoad, nil},
		{"reuseport", DefaultLoad, []loss{{KnownLossQueueReset, []string{"fewer-workers", "one-worker"}}}},
		{"reuseport-migrate", DefaultLoad, nil},
		{"upgrade", keepAlive, []loss{{KnownLossCloseRace, []string{"old-workers-draining", "after-quit"}}}},
		{"rollback", keepAlive, []loss{{KnownLossCloseRace, []string{"old-workers-draining", "rolled-back"}}}},
		{"upgrade", proxy, []loss{{KnownLossCloseRace, []string{"old-workers-draining", "after-quit"}}}},
		{"rollback", http2, []loss{{KnownLossCloseRace, []string{"old-workers-draining", "rolled-back"}}}},
		{"upgrade", http2, []loss{{KnownLossCloseRace, []string{"old-workers-draining", "after-quit"}}}},
		{"reload", keepAlive, []loss{{KnownLossCloseRace, []string{"reloaded"}}}},
		{"reload-workers", keepAlive, []loss{{KnownLossCloseRace, []string{"four-workers", "one-worker"}}}},
		{"reuseport", keepAlive, []loss{{KnownLossQueueReset, []string{"fewer-workers", "one-worker"}},
			{KnownLossCloseRace, []string{"old-workers-draining", "after-quit", "one-worker"}}}},
		{"broken-build", keepAlive, nil},
		{"term-fallback", keepAlive, nil}, // a positive control: its drops are its expectation
		{"kill-fallback", keepAlive, nil},
	} {
		scs, err := Lookup([]string{tc.scenario})
		if err != nil {
			t.Fatal(err)
		}
		p := Params{Load: tc.load}
		got := p.knownLosses(scs[0])
		if len(got) != len(tc.want) {
			t.Errorf("%s under %v: %d known losses %+v, want %d", tc.scenario, tc.load.Kinds(), len(got), got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if got[i].Name != w.name || !slices.Equal(got[i].Phases, w.phases) {
				t.Errorf("%s under %v: known loss %s in %v, want %s in %v", tc.scenario, tc.load.Kinds(), got[i].Name, got[i].Phases, w.name, w.phases)
			}
			// The queue holds at most nginx's listen backlog; the race is
			// bounded by 200 ms of the rate (100 at 500 req/s).
			bound := map[string]int{KnownLossQueueReset: 511, KnownLossCloseRace: 100}[w.name]
			if got[i].Max != bound || got[i].Why == "" || got[i].Remedy == "" {
				t.Errorf("%s: %s has bound %d (want %d), why %q, remedy %q", tc.scenario, w.name, got[i].Max, bound, got[i].Why, got[i].Remedy)
			}
			if !slices.Contains(got[i].Witness, record.WitnessNever) {
				t.Errorf("%s: %s does not ask nginx's log for never-reached-a-worker", tc.scenario, w.name)
			}
		}
	}
}

// The plan records them, with strictness, in meta.json.
func TestPlanRecordsKnownLosses(t *testing.T) {
	scs, _ := Lookup([]string{"reuseport"})
	var meta record.Meta
	Params{Load: DefaultLoad, Strict: true}.planScenario(&meta, scs[0])
	if len(meta.KnownLosses) != 1 || meta.KnownLosses[0].Name != KnownLossQueueReset || !meta.Strict {
		t.Fatalf("meta: known losses %+v, strict %v", meta.KnownLosses, meta.Strict)
	}
}
