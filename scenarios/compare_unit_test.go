package scenarios_test

import (
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func TestRestartEvidence(t *testing.T) {
	before := proc.Snapshot{PidFile: 10, Procs: []proc.Process{{PID: 10, PPID: 1, State: "S", Role: proc.RoleMaster}}}
	m := func(ms float64, ms2 ...reports.SampledMaster) reports.MasterSample {
		return reports.MasterSample{Ms: ms, Masters: ms2}
	}
	master := func(pid, ppid int) reports.SampledMaster { return reports.SampledMaster{PID: pid, PPID: ppid} }
	tl := &record.Timeline{StartMs: 0, BucketMs: 100, Failed: make([]int, 100)}
	tl.Failed[25] = 7
	for _, tc := range []struct {
		name    string
		samples []reports.MasterSample
		want    bool
	}{
		{"usr2 upgrade", []reports.MasterSample{m(1000, master(10, 1)), m(1100, master(10, 1), master(20, 10)), m(1500, master(20, 1))}, false},
		{"unchanged", []reports.MasterSample{m(1000, master(10, 1)), m(1100, master(10, 1))}, false},
		{"stop then start", []reports.MasterSample{m(1000, master(10, 1)), m(2200), m(2600), m(3000, master(30, 1))}, true},
		{"pid change with no overlap", []reports.MasterSample{m(1000, master(10, 1)), m(1100, master(30, 1))}, true},
		{"usr2 child seen only with its parent gone from the list", []reports.MasterSample{m(1786, master(10, 1)), m(6835, master(299, 10)), m(7330, master(299, 1))}, false},
		{"a change of master whose new one no master forked", []reports.MasterSample{m(1000, master(10, 1)), m(2400, master(299, 77)), m(2800, master(299, 1))}, true},
		{"down at the end", []reports.MasterSample{m(1000, master(10, 1)), m(1100)}, false},
	} {
		got, ev := reports.RestartEvidence(before, tc.samples, tl)
		if got != tc.want {
			t.Errorf("%s: wentDown = %t (%v), want %t", tc.name, got, ev, tc.want)
		}
		if tc.name == "stop then start" && (len(ev) == 0 || ev[0] != "no nginx master from 2200 ms to 3000 ms, 7 requests failed meanwhile") {
			t.Errorf("%s: evidence %q", tc.name, ev)
		}
	}
}
