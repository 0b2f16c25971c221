package harness

import (
	"strings"
	"testing"
)

// What snapshotScript prints for an upgrade half-way: the old master 10
// with a draining worker, the new master 20 (its child) with two workers, a
// zombie, and a worker whose comm holds a parenthesis.
const upgradeSnapshot = "pidfile\t20\n" +
	"oldbin\t10\n" +
	"logsize\t4096\n" +
	"proc\t1\t\t\t/sbin/docker-init -- sleep infinity \t1 (docker-init) S 0 1 1 0\n" +
	"proc\t10\taaa\t/usr/sbin/nginx (deleted)\tnginx: master process /usr/sbin/nginx \t10 (nginx) S 1 10 10 0\n" +
	"proc\t11\t\t\tnginx: worker process is shutting down \t11 (nginx) S 10 10 10 0\n" +
	"proc\t20\tbbb\t/usr/sbin/nginx\tnginx: master process /usr/sbin/nginx \t20 (nginx) S 10 10 10 0\n" +
	"proc\t21\t\t\tnginx: worker process \t21 (nginx) S 20 10 10 0\n" +
	"proc\t22\t\t\tnginx: worker process \t22 (ng) x) R 20 10 10 0\n" +
	"proc\t23\t\t\t\t23 (nginx) Z 20 10 10 0\n"

func TestParseSnapshot(t *testing.T) {
	s, err := parseSnapshot(upgradeSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	if s.PidFile != 20 || s.Oldbin != 10 || !s.OldbinSet || s.LogSize != 4096 {
		t.Fatalf("pid files: %+v", s)
	}
	if len(s.Procs) != 7 {
		t.Fatalf("%d processes, want 7", len(s.Procs))
	}
	if m := s.Masters(); len(m) != 2 || m[0].PID != 10 || m[0].SHA256 != "aaa" || m[1].PPID != 10 {
		t.Fatalf("masters: %+v", m)
	}
	if w := s.Workers(20); len(w) != 2 || w[1].PID != 22 || w[1].PPID != 20 || w[1].State != "R" {
		t.Fatalf("workers of 20: %+v", w)
	}
	if d := s.Draining(10); len(d) != 1 || d[0].PID != 11 {
		t.Fatalf("draining workers of 10: %+v", d)
	}
	if _, alive := s.Proc(23); alive {
		t.Fatal("a zombie is not alive")
	}
	if !strings.Contains(s.String(), "nginx.pid=20 nginx.pid.oldbin=10") {
		t.Fatalf("String: %s", s)
	}
	if _, err := parseSnapshot("proc\tx\n"); err == nil {
		t.Fatal("a malformed line must be an error")
	}
}

func snap(pidfile, oldbin int, procs ...Process) Snapshot {
	return Snapshot{PidFile: pidfile, Oldbin: oldbin, OldbinSet: oldbin != 0, Procs: procs}
}

func master(pid, ppid int) Process {
	return Process{PID: pid, PPID: ppid, State: "S", Role: RoleMaster}
}
func worker(pid, ppid int) Process {
	return Process{PID: pid, PPID: ppid, State: "S", Role: RoleWorker}
}
func draining(pid, ppid int) Process {
	return Process{PID: pid, PPID: ppid, State: "S", Role: RoleShuttingDown}
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
		before       Snapshot
		pids         []int
		good, notYet Snapshot
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
