package main

import (
	"strings"
	"testing"
)

// compare's bad input exits 2 with one line, before Docker is touched.
func TestCompareBadInput(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1") // nothing may reach it
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown procedure", []string{"compare", "--procedure", "yum"}, `unknown procedure "yum"`},
		{"missing script", []string{"compare", "--procedure", "script:/nonexistent/up.sh"}, "script:/nonexistent/up.sh: no such file"},
		{"unterminated cmd", []string{"compare", "--procedure", `cmd:"/bin/up`}, "unterminated double quote"},
		{"zero timeout", []string{"compare", "--procedure-timeout", "0s"}, "--procedure-timeout"},
		{"bad rate", []string{"compare", "--rate", "0"}, "--rate: got 0"},
		{"unknown build", []string{"compare", "--broken", "rpm:1"}, `unknown build "rpm:1"`},
		{"unknown expectation", []string{"compare", "--expect", "good=fine"}, `unknown outcome "fine"`},
		{"junit without expect", []string{"compare", "--junit", "j.xml"}, "--junit goes with --expect"},
		{"unit without systemd", []string{"compare", "--unit", "nginx.service"}, "--unit goes with --init systemd"},
		{"init on a built-in procedure", []string{"compare", "--procedure", "manual", "--init", "systemd"}, "manual has its own init"},
		{"unknown init", []string{"compare", "--procedure", "cmd:true", "--init", "upstart"}, `--init "upstart"`},
		{"zero repeat", []string{"compare", "--repeat", "0"}, "--repeat: got 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(t, tc.args...)
			if code != exitBadInput || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d naming %q", code, stderr, exitBadInput, tc.want)
			}
			if n := strings.Count(errorText(stderr), "\n"); n != 0 {
				t.Fatalf("want one line, got %d: %q", n+1, stderr)
			}
		})
	}
}

// --junit inside the report directory the run makes is how CI keeps them
// together (examples/ci/gate.sh): it is not refused for not existing yet.
func TestJUnitInsideOut(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no.sock")
	out := t.TempDir() + "/run"
	for _, args := range [][]string{
		{"run", "--scenario", "upgrade", "--out", out, "--junit", out + "/junit.xml"},
		{"compare", "--expect", "default", "--out", out, "--junit", out + "/junit.xml"},
	} {
		_, stderr := run(t, args...)
		if strings.Contains(stderr, "--junit") {
			t.Errorf("%s: %q", args[0], stderr)
		}
	}
	code, stderr := run(t, "run", "--out", out, "--junit", out+"/sub/junit.xml")
	if code != exitBadInput || !strings.Contains(stderr, "inside --out") {
		t.Errorf("a --junit in a directory under --out: exit %d %q", code, stderr)
	}
}
