package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The messages a newcomer meets first in a CI log: each is one line on
// stderr, exit 2, naming the real cause — and not the misleading text an
// earlier version printed (notWant).
func TestMessagesNameTheRealCause(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	for _, tc := range []struct {
		name    string
		env     string // DOCKER_HOST, when set
		args    []string
		want    []string
		notWant string
	}{
		{"unknown fault step, default suite", "", []string{"run", "--fault", "kill-new-master@nostep"},
			[]string{`--fault kill-new-master@nostep: unknown step "nostep"`, "spawn-new-master"}, "default suite"},
		{"unknown fault step, one scenario", "", []string{"run", "--scenario", "upgrade", "--fault", "kill-new-master@nostep"},
			[]string{`unknown step "nostep"`, "install-new-binary, spawn-new-master, stop-old-workers, quit-old-master"}, "default suite"},
		{"bool flag with a separate value", "", []string{"run", "--keepalive", "true"},
			[]string{"--keepalive=true"}, "unexpected argument"},
		{"bool flag with a separate false", "", []string{"run", "--keepalive", "false", "--rate", "100"},
			[]string{"--keepalive=false"}, "unexpected argument"},
		{"rate not whole", "", []string{"run", "--rate", "1.5"},
			[]string{`--rate: got "1.5", want a whole number of requests per second`}, "parse error"},
		{"slow not whole", "", []string{"run", "--slow", "two"},
			[]string{`--slow: got "two", want a whole number of long downloads`}, "parse error"},
		{"report of two directories", "", []string{"report", "a", "b"},
			[]string{"want exactly one run directory, got 2: a b"}, ""},
		{"report merge, unknown flag", "", []string{"report", "merge", "--nope"},
			[]string{"unknown flag --nope (see report merge --help)"}, "see report --help"},
		{"report trend, unknown flag", "", []string{"report", "trend", "--nope"},
			[]string{"unknown flag --nope (see report trend --help)"}, "see report --help"},
		{"docker unreachable", sock, []string{"run", "--scenario", "upgrade", "--out", filepath.Join(t.TempDir(), "run")},
			[]string{"docker unreachable at " + sock + " (set by DOCKER_HOST): connect: no such file or directory"}, "http://unix.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DOCKER_HOST", tc.env)
			}
			code, stderr := run(t, tc.args...)
			if code != exitBadInput || strings.Count(errorText(stderr), "\n") != 0 {
				t.Fatalf("exit %d, want %d, one line; stderr: %q", code, exitBadInput, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if tc.notWant != "" && strings.Contains(stderr, tc.notWant) {
				t.Errorf("stderr %q still says %q", stderr, tc.notWant)
			}
			t.Logf("%v: %s", tc.args, strings.TrimSpace(stderr))
		})
	}
}

// An unknown flag of version is an error: on stderr, exit 2, nothing on
// stdout (where a script reads the version).
func TestVersionBadFlagOnStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"version", "--nope"}, &stdout, &stderr)
	if code != exitBadInput || stdout.Len() != 0 || !strings.Contains(stderr.String(), "unknown flag --nope (see version --help)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// report takes its flags after the directory too: report DIR --junit FILE
// writes the JUnit file (a run directory whose scenario could not start
// renders as one error, exit 3).
func TestReportFlagsAfterTheDirectory(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "upgrade"), 0o755)
	os.WriteFile(filepath.Join(dir, "upgrade", "error.txt"), []byte("the harness could not start nginx\n"), 0o644)
	junit := filepath.Join(t.TempDir(), "f.xml")
	code, stderr := run(t, "report", dir, "--junit", junit)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d (one error verdict); stderr: %q", code, exitInvalid, stderr)
	}
	b, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(b), `<testcase name="upgrade"`) {
		t.Fatalf("--junit after the directory was not honoured: %v\n%s", err, b)
	}
}

// A run that exits 2 before it starts leaves no empty report directory
// behind (nor the parents it made), and never removes a directory the user
// made beforehand.
func TestRunThatCannotStartLeavesNoEmptyReportDir(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	root := t.TempDir()
	out := filepath.Join(root, "reports-out", "ci")
	if code, stderr := run(t, "run", "--scenario", "upgrade", "--out", out); code != exitBadInput {
		t.Fatalf("exit %d; stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "reports-out")); !os.IsNotExist(err) {
		t.Fatalf("%s left behind after exit 2 (stat: %v)", filepath.Join(root, "reports-out"), err)
	}
	mine := filepath.Join(root, "mine")
	os.Mkdir(mine, 0o755)
	if code, _ := run(t, "run", "--scenario", "upgrade", "--out", mine); code != exitBadInput {
		t.Fatalf("exit %d", code)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("the user's own --out directory was removed: %v", err)
	}
}
