package judge

import (
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// The final state names what is wrong whatever the scenario expected.
func TestFinalJudgeNamesWhatIsWrong(t *testing.T) {
	f := record.Final{OldbinPresent: true, Processes: []record.FinalProcess{
		{PID: 10, PPID: 1, Role: "master", Binary: "old"},
		{PID: 11, PPID: 10, Role: "worker", Binary: "old"},
		{PID: 20, PPID: 10, Role: "master", Binary: "new", State: "T"},
		{PID: 21, PPID: 20, Role: "worker", Binary: "new"},
		{PID: 30, PPID: 1, Role: "worker-shutting-down", Binary: "unknown"},
	}}
	processes(&f)
	if len(f.Orphans) != 1 || f.Orphans[0].PID != 30 {
		t.Errorf("orphans = %+v, want pid 30", f.Orphans)
	}
	for _, want := range []string{"whose master is gone: 30 (worker-shutting-down)", "2 masters still running", "nginx.pid.oldbin left behind",
		"more than one binary serving: old (1 workers), new (1 workers)", "process 20 (master) is stopped"} {
		if !slices.ContainsFunc(f.Wrong, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("wrong = %q, want one containing %q", f.Wrong, want)
		}
	}
	clean := record.Final{Processes: []record.FinalProcess{{PID: 10, PPID: 1, Role: "master", Binary: "new"}, {PID: 11, PPID: 10, Role: "worker", Binary: "new"}}}
	processes(&clean)
	if len(clean.Wrong) != 0 || len(clean.Orphans) != 0 {
		t.Errorf("a clean end: wrong %q, orphans %+v", clean.Wrong, clean.Orphans)
	}
}

func TestJudgeSystemd(t *testing.T) {
	procs := []record.FinalProcess{{PID: 40, PPID: 1, Role: "master", Binary: "new"}, {PID: 41, PPID: 40, Role: "worker", Binary: "new"},
		{PID: 30, PPID: 1, Role: "worker", Binary: "unknown"}}
	for _, tc := range []struct {
		name  string
		v     record.SystemdView
		serve bool
		want  []string
	}{
		{"agree", record.SystemdView{MainPID: 40, ActiveState: "active", SubState: "running", CgroupPIDs: []int{30, 40, 41}}, true, nil},
		{"dead while serving", record.SystemdView{ActiveState: "failed", SubState: "failed", CgroupPIDs: []int{30, 40, 41}}, true,
			[]string{"systemd believes nginx.service failed/failed while nginx serves"}},
		{"main pid gone", record.SystemdView{MainPID: 20, ActiveState: "active", SubState: "running", CgroupPIDs: []int{30, 40, 41}}, true,
			[]string{"systemd's Main PID 20 is not a live nginx master"}},
		{"outside the cgroup", record.SystemdView{MainPID: 40, ActiveState: "active", SubState: "running", CgroupPIDs: []int{40, 41}}, true,
			[]string{"1 nginx process(es) outside nginx.service's cgroup: 30"}},
	} {
		f := record.Final{Processes: procs, Serving: tc.serve, Systemd: &tc.v}
		systemd(&f)
		if strings.Join(f.Wrong, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: Wrong = %q, want %q", tc.name, f.Wrong, tc.want)
		}
	}
}

// FinalChecks holds the end against what the scenario must end on.
func TestFinalChecks(t *testing.T) {
	upgraded := func() record.Final {
		return record.Final{Masters: 1, Workers: 1, ServingBinary: "new", PIDFilePID: 20, Serving: true, CheckErrors: []string{},
			Processes: []record.FinalProcess{{PID: 20, PPID: 1, Role: "master", Binary: "new"}, {PID: 21, PPID: 20, Role: "worker", Binary: "new"}}}
	}
	seen := FinalSeen{StartPidFile: 10, Table: "nginx.pid=20; processes: …"}
	for _, tc := range []struct {
		name string
		edit func(*record.Final)
		want FinalWant
		errs []string
	}{
		{"upgraded as wanted", func(*record.Final) {}, FinalWant{Binary: "new"}, nil},
		{"old binary serves", func(f *record.Final) { f.ServingBinary = "old" }, FinalWant{Binary: "new"},
			[]string{"want the new binary serving at the end, the master runs the old one"}},
		{"two masters", func(f *record.Final) {
			f.Masters = 2
			f.Processes = append(f.Processes, record.FinalProcess{PID: 10, PPID: 1, Role: "master", Binary: "old"})
		}, FinalWant{Binary: "new"}, []string{"want one master at the end, saw 2: nginx.pid=20; processes: …"}},
		{"pid file moved", func(*record.Final) {}, FinalWant{Binary: "new", PidFileOld: true},
			[]string{"want nginx.pid to hold the original master 10 at the end, it holds 20"}},
		{"pid file names no master", func(f *record.Final) { f.PIDFilePID = 99 }, FinalWant{Binary: "new"},
			[]string{"nginx.pid holds 99, the master is 20"}},
		{"not serving", func(f *record.Final) { f.Serving = false }, FinalWant{Binary: "new"}, []string{"nginx does not serve at the end"}},
		{"loose: orphans expected, none", func(*record.Final) {}, FinalWant{Binary: "new", Loose: true, Orphans: true},
			[]string{"orphans expected: true, found 0"}},
		{"loose: pid file's master runs old", func(f *record.Final) { f.Processes[0].Binary = "old" }, FinalWant{Binary: "new", Loose: true},
			[]string{"want the new binary serving at the end, nginx.pid's master runs the old one"}},
	} {
		f := upgraded()
		tc.edit(&f)
		Final(&f)
		FinalChecks(&f, tc.want, seen)
		if len(f.CheckErrors) != len(tc.errs) {
			t.Errorf("%s: check errors %q, want %q", tc.name, f.CheckErrors, tc.errs)
			continue
		}
		for i, e := range tc.errs {
			if !strings.HasPrefix(f.CheckErrors[i], e) {
				t.Errorf("%s: check error %q, want %q", tc.name, f.CheckErrors[i], e)
			}
		}
	}
}
