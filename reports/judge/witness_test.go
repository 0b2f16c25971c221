package judge

import (
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// An expectation of drops holds the drops to the server's record: the
// class it names, and the processes the causing step signalled.
func TestWitnessControl(t *testing.T) {
	scenario := func(drops ...record.WitnessDrop) *record.Scenario {
		return &record.Scenario{
			ExpectDrops: &record.DropSpec{Phase: "after-kill", Witness: []string{record.WitnessCut}, BySignalled: true},
			Steps:       []record.Step{{Name: "kill-workers", Signal: "KILL", PID: 40, PIDs: []int{40, 41}, Phase: "after-kill"}},
			Witness:     &record.Witness{Present: true, Drops: drops},
		}
	}
	within := []*record.Phase{{Name: "after-kill"}}
	cases := []struct {
		name  string
		drops []record.WitnessDrop
		fails int
	}{
		{"cut by the killed workers", []record.WitnessDrop{{Decision: record.Decision{Class: record.WitnessCut, PID: 41}, Phase: "after-kill"},
			{Decision: record.Decision{Class: record.WitnessCut, Candidates: []int{40, 41}}, Phase: "after-kill"}}, 0},
		{"never reached a worker", []record.WitnessDrop{{Decision: record.Decision{Class: record.WitnessNever}, Phase: "after-kill"}}, 1},
		{"cut by another worker", []record.WitnessDrop{{Decision: record.Decision{Class: record.WitnessCut, PID: 99}, Phase: "after-kill"}}, 1},
		{"answered but lost", []record.WitnessDrop{{Decision: record.Decision{Class: record.WitnessLost, PID: 40}, Phase: "after-kill"}}, 1},
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
