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
