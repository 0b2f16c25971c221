package nginx

import (
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

func snap(pidfile, oldbin int, procs ...proc.Process) proc.Snapshot {
	return proc.Snapshot{PidFile: pidfile, Oldbin: oldbin, OldbinSet: oldbin != 0, Procs: procs}
}

func master(pid, ppid int) proc.Process {
	return proc.Process{PID: pid, PPID: ppid, State: "S", Role: proc.RoleMaster}
}
func worker(pid, ppid int) proc.Process {
	return proc.Process{PID: pid, PPID: ppid, State: "S", Role: proc.RoleWorker}
}
func draining(pid, ppid int) proc.Process {
	return proc.Process{PID: pid, PPID: ppid, State: "S", Role: proc.RoleShuttingDown}
}

// Each expectation holds on the state it describes and names what it
// expected on the state before it.
func TestExpectations(t *testing.T) {
	steady := snap(10, 0, master(10, 1), worker(11, 10), worker(12, 10))
	both := snap(20, 10, master(10, 1), worker(11, 10), worker(12, 10), master(20, 10), worker(21, 20), worker(22, 20))
	drained := snap(20, 10, master(10, 1), draining(11, 10), master(20, 10), worker(21, 20), worker(22, 20))
	upgraded := snap(20, 0, master(20, 1), worker(21, 20), worker(22, 20))
	restored := snap(20, 10, master(10, 1), worker(13, 10), worker(14, 10), master(20, 10), worker(21, 20), worker(22, 20))
	rolledBack := snap(10, 0, master(10, 1), worker(13, 10), worker(14, 10))
	for _, tc := range []struct {
		name         string
		expect       Expectation
		before       proc.Snapshot
		pids         []int
		good, notYet proc.Snapshot
		want         string
	}{
		{"new master spawned", NewMasterSpawned, steady, []int{10}, both, steady, "nginx.pid.oldbin = 10"},
		{"old workers stopped", OldWorkersStopped, both, []int{10}, drained, both, "no accepting workers"},
		{"old master gone", OldMasterGone, drained, []int{10}, upgraded, drained, "old master 10 to exit (1 workers still draining)"},
		{"old workers restored", OldWorkersRestored, drained, []int{10}, restored, drained, "old master 10 to have 2 accepting workers"},
		{"new master gone", NewMasterGoneOldBack, restored, []int{20}, rolledBack, restored, "new master 20 to exit"},
		{"workers killed", WorkersKilled, steady, []int{11, 12}, snap(10, 0, master(10, 1), worker(13, 10)), steady, "worker 11 to be gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.expect(tc.before, tc.good, tc.pids); err != nil {
				t.Fatalf("on the state it describes: %v", err)
			}
			err := tc.expect(tc.before, tc.notYet, tc.pids)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("before the effect: %v, want %q", err, tc.want)
			}
		})
	}
	// A new master that is not the old one's child is not the upgrade's.
	stranger := snap(20, 10, master(10, 1), worker(11, 10), worker(12, 10), master(20, 1), worker(21, 20), worker(22, 20))
	if err := NewMasterSpawned(steady, stranger, []int{10}); err == nil || !strings.Contains(err.Error(), "child of 10") {
		t.Fatalf("unrelated master: %v", err)
	}
}

func TestDirective(t *testing.T) {
	conf := []byte("user www-data;\n  pid   /var/run/x.pid ;\nerror_log stderr;\nhttp { }\n")
	if got := directive(conf, "pid", "/run/nginx.pid"); got != "/var/run/x.pid" {
		t.Errorf("pid = %q", got)
	}
	if got := directive(conf, "error_log", defaultErrLog); got != defaultErrLog {
		t.Errorf("error_log to stderr must fall back to the file: %q", got)
	}
	if got := directive([]byte("events {}\n"), "pid", "/run/nginx.pid"); got != "/run/nginx.pid" {
		t.Errorf("default pid = %q", got)
	}
}
