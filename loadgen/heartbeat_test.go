package loadgen

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hand-written ticks on a clock: each tick is counted in the window it was
// due in, and a late one's wait in every window it spans, as far as it had
// gone by each window's end.
func TestHeartbeatWindows(t *testing.T) {
	start := time.Unix(1000, 0)
	clock := NewClockAt(start)
	at := func(ms float64) int64 { return start.UnixNano() + int64(ms*1e6) }
	ticks := []HeartbeatTick{
		{DueNs: at(-20), RanNs: at(-19)}, // before the run's clock: left out
		{DueNs: at(0), RanNs: at(0.2), RunqUs: 1500, CPUUs: 4000, CPUs: 2},
		{DueNs: at(20), RanNs: at(20.5), RunqUs: 2500, CPUUs: 1000, CPUs: 2},
		// 250 ms late: windows 0, 1, 2; its reading counts where it ran
		{DueNs: at(40), RanNs: at(290), RunqUs: 240000, CPUUs: 3000, CPUs: 2},
		{DueNs: at(300), RanNs: at(300.1)},
	}
	got := map[float64]ObserverRecord{}
	for _, r := range HeartbeatWindows(ticks, clock) {
		if !r.Supplement {
			t.Errorf("window %v is not a supplement line", r.StartMs)
		}
		got[r.StartMs] = r
	}
	for _, w := range []struct {
		start float64
		late  float64
		ticks int
	}{{0, 60, 3}, {100, 160, 0}, {200, 250, 0}, {300, 0, 1}} {
		r := got[w.start]
		if r.NginxLateMs != w.late || r.NginxTicks != w.ticks {
			t.Errorf("window %v: late %v ms, %d ticks; want %v ms, %d", w.start, r.NginxLateMs, r.NginxTicks, w.late, w.ticks)
		}
	}
	for _, w := range []struct {
		start, runq, cpu float64
		cpus             int
	}{{0, 4, 5, 2}, {100, 0, 0, 0}, {200, 240, 3, 2}, {300, 0, 0, 0}} {
		r := got[w.start]
		if r.NginxRunqMs != w.runq || r.NginxCPUMs != w.cpu || r.NginxCPUs != w.cpus {
			t.Errorf("window %v: run queue %v ms, cpu %v ms on %d; want %v, %v on %d", w.start, r.NginxRunqMs, r.NginxCPUMs, r.NginxCPUs, w.runq, w.cpu, w.cpus)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d windows, want 4: %+v", len(got), got)
	}
}

func TestReadHeartbeatLeavesOutACutLastLine(t *testing.T) {
	ticks, err := ReadHeartbeat(strings.NewReader("{\"due\":1,\"ran\":2}\n{\"due\":3,\"ran\":4}\n{\"due\":5,\"r"))
	if err != nil || len(ticks) != 2 {
		t.Fatalf("ticks %+v, err %v; want 2 and no error", ticks, err)
	}
	if _, err := ReadHeartbeat(strings.NewReader("{\"due\":1,\"ran\":2}\nnull\n{\"due\":3,\"ran\":4}\n")); err == nil {
		t.Error("a line that is not a tick in the middle: no error")
	}
}

// The heartbeat, run as its own process (this test binary as the CLI's
// hidden subcommand) and stopped for 400 ms with SIGSTOP, records the stop
// as lateness in the windows of the stop.
func TestHeartbeatSeesItsProcessStopped(t *testing.T) {
	if os.Getenv("NUH_HEARTBEAT_HELPER") != "" {
		os.Exit(HeartbeatMain(strings.Fields(os.Getenv("NUH_HEARTBEAT_HELPER")), os.Stdout, os.Stderr))
	}
	out := filepath.Join(t.TempDir(), "ticks.jsonl")
	clock := NewClock()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHeartbeatSeesItsProcessStopped$")
	cmd.Env = append(os.Environ(), "NUH_HEARTBEAT_HELPER=--out "+out+" --for 3s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond)
	stoppedAt := clock.Now()
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(400 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("heartbeat: %v: %s", err, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := ReadHeartbeat(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// 3 s at 20 ms: about 150 ticks, fewer by the slots the stop skipped.
	if len(ticks) < 100 || len(ticks) > 155 {
		t.Errorf("%d ticks in 3 s at 20 ms", len(ticks))
	}
	worst, worstAt := 0.0, 0.0
	for _, r := range HeartbeatWindows(ticks, clock) {
		if r.NginxLateMs > worst {
			worst, worstAt = r.NginxLateMs, r.StartMs
		}
	}
	if worst < 250 || worstAt < stoppedAt-100 || worstAt > stoppedAt+600 {
		t.Errorf("worst lateness %v ms in the window from %v ms; want at least 250 ms in the stop's windows (stopped at %.0f ms)", worst, worstAt, stoppedAt)
	}
}

// The scheduler's counters of the processes of a name, read as the
// heartbeat reads nginx's: a real process under that name (a copy of sh
// that spins for a bounded count) is found and its CPU time counted. The
// name is the test's own: containers' nginx processes may be seen here.
func TestSchedReaderReadsNginxProcesses(t *testing.T) {
	dir := t.TempDir()
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nuh-schedtest")
	if err := os.WriteFile(bin, sh, 0o755); err != nil {
		t.Fatal(err)
	}
	r := newSchedReader(os.Getpid(), "nuh-schedtest")
	if _, _, ok := r.read(); ok {
		t.Fatal("a process named nuh-schedtest was found before the test started one")
	}
	// Bounded: 300000 rounds of the shell's arithmetic, well under a
	// second, and the context kills it at 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	defer cmd.Wait()
	var cpu int64
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && cpu < 50e6 {
		time.Sleep(50 * time.Millisecond)
		_, c, ok := r.read()
		if !ok {
			continue
		}
		cpu += c
	}
	if cpu < 50e6 {
		t.Fatalf("the spinning process ran %v of CPU by the reader's count, want at least 50 ms", time.Duration(cpu))
	}
}
