package loadgen

import (
	"bytes"
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
		{at(-20), at(-19)}, // before the run's clock: left out
		{at(0), at(0.2)},
		{at(20), at(20.5)},
		{at(40), at(290)}, // 250 ms late: windows 0, 1, 2
		{at(300), at(300.1)},
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
