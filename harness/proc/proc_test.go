package proc

import (
	"strings"
	"testing"
)

// What Script prints for an upgrade half-way: the old master 10
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
	s, err := Parse(upgradeSnapshot)
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
	if _, err := Parse("proc\tx\n"); err == nil {
		t.Fatal("a malformed line must be an error")
	}
}
