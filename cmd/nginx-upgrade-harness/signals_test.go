package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startUntilUSR2 builds the CLI, starts a rollback run and returns once its
// first signal step was sent.
func startUntilUSR2(t *testing.T, out string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nginx-upgrade-harness")
	if b, err := staticBuild(bin).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, "run", "--scenario", "rollback", "--rate", "200", "--out", out)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(stderr.String(), "spawn-new-master (USR2)") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run never reached USR2: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, stderr
}

// waitExit waits for the process within d and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the run did not exit within %s", d)
		return -1
	}
}

// SIGTERM, what CI sends on cancel, is handled like Ctrl-C: the load
// stops, the container goes, the report of what was measured is written.
func TestSIGTERMIsHandledLikeCtrlC(t *testing.T) {
	requireDocker(t)
	out := t.TempDir()
	cmd, stderr := startUntilUSR2(t, out)
	cmd.Process.Signal(syscall.SIGTERM)
	code := waitExit(t, cmd, cleanupTimeout)
	t.Log(stderr.String())
	if code != exitBadInput {
		t.Fatalf("exit %d after SIGTERM, want %d", code, exitBadInput)
	}
	if !strings.Contains(stderr.String(), "terminated: stopping the load") {
		t.Errorf("SIGTERM not acknowledged on stderr")
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Fatalf("no report after SIGTERM: %v", err)
	}
	assertNoLeftovers(t, cmd.Process.Pid)
}

// A second Ctrl-C exits at once, still writes the report from what is on
// disk, and names the containers it left for prune, which removes them.
func TestSecondInterruptExitsAtOnce(t *testing.T) {
	requireDocker(t)
	out := t.TempDir()
	cmd, stderr := startUntilUSR2(t, out)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(20 * time.Millisecond)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	code := waitExit(t, cmd, 15*time.Second)
	took := time.Since(sent)
	t.Logf("exited %s after the second Ctrl-C\n%s", took, stderr.String())
	if code != exitBadInput {
		t.Fatalf("exit %d, want %d", code, exitBadInput)
	}
	if took > 10*time.Second {
		t.Errorf("the second Ctrl-C took %s to exit", took)
	}
	if !strings.Contains(stderr.String(), "again: exiting now") {
		t.Errorf("the second signal is not acknowledged")
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Fatalf("no report after the second Ctrl-C: %v", err)
	}
	// What it left, it named; removed here by its owner's pid (valid in
	// this test's own pid namespace, never in a sweep: harness.Prune).
	pool, err := harness.Connect()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := strconv.Itoa(cmd.Process.Pid)
	n, err := harness.PruneWhere(ctx, pool, func(_ string, l map[string]string) bool { return l[harness.Label+".owner-pid"] == owner })
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && !strings.Contains(stderr.String(), "left behind") {
		t.Errorf("%d container(s) left without being named on stderr", n)
	}
	assertNoLeftovers(t, cmd.Process.Pid)
}
