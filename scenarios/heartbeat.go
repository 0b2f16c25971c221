package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// The heartbeat in nginx's container: where its binary and its ticks live
// there, and whom it runs as. /tmp, not /run: a fault fills /run
// (pid-dir-full). Unprivileged: it needs nothing but its own file.
const (
	heartbeatBin   = "/tmp/nuh-heartbeat"
	heartbeatTicks = "/tmp/nuh-heartbeat.jsonl"
	heartbeatUser  = "65534:65534" // nobody
	// heartbeatStart bounds the wait for its first tick.
	heartbeatStart = 5 * time.Second
)

// heartbeatPlan is meta.json's heartbeat: planned, or absent with why.
func (p Params) heartbeatPlan() *record.HeartbeatPlan {
	plan := &record.HeartbeatPlan{IntervalMs: float64(loadgen.HeartbeatInterval.Milliseconds())}
	switch {
	case p.Heartbeat == "":
		plan.Absent = "no static build of the CLI to run in nginx's container (go run, or a test without NUH_REAPER_BINARY)"
	default:
		if err := harness.StaticBinary(p.Heartbeat); err != nil {
			plan.Absent = oneLine(err.Error())
		}
	}
	return plan
}

// startHeartbeat puts the heartbeat into nginx's container and starts it
// there, detached, as nobody, and waits for its first tick. What goes wrong
// is kept for heartbeat.json: the run goes on without it.
func (t *trial) startHeartbeat(ctx context.Context) {
	if t.meta.Heartbeat == nil {
		return
	}
	if why := t.meta.Heartbeat.Absent; why != "" {
		t.progress("%s: no heartbeat in nginx's container (%s): its stalls are judged on the harness's side alone", t.name, why)
		return
	}
	t.heartbeat = &record.HeartbeatRead{}
	bin, err := os.ReadFile(t.p.Heartbeat)
	if err == nil {
		err = t.node.WriteFile(ctx, heartbeatBin, bin, 0o755)
	}
	if err == nil {
		err = t.node.StartAs(ctx, heartbeatUser, heartbeatBin, loadgen.HeartbeatCommand, "--out", heartbeatTicks,
			"--interval", loadgen.HeartbeatInterval.String())
	}
	if err == nil {
		err = t.waitHeartbeat(ctx)
	}
	if err != nil {
		t.heartbeat.Absent = "did not start in nginx's container: " + oneLine(err.Error())
		t.progress("%s: no heartbeat in nginx's container (%s): its stalls are judged on the harness's side alone", t.name, t.heartbeat.Absent)
	}
}

func (t *trial) waitHeartbeat(ctx context.Context) error {
	deadline := time.Now().Add(heartbeatStart)
	for {
		r, err := t.node.Exec(ctx, "test", "-s", heartbeatTicks)
		if err != nil {
			return err
		}
		if r.Exit == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no tick in %s after %s", heartbeatTicks, heartbeatStart)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepHeartbeat reads the heartbeat's ticks back, adds its windows to the
// observer's file (the load has closed it) and writes heartbeat.json. Only
// a heartbeat.json that cannot be written is an error of the run.
func (t *trial) keepHeartbeat(ctx context.Context) error {
	if t.heartbeat == nil {
		return nil
	}
	hr := t.heartbeat
	t.heartbeat = nil
	if hr.Absent == "" {
		if err := t.readHeartbeat(ctx, hr); err != nil {
			hr.Error = oneLine(err.Error())
		}
	}
	if err := writeJSON(t.path(record.HeartbeatFile), hr); err != nil {
		return fmt.Errorf("write the heartbeat's record: %w", err)
	}
	return nil
}

func (t *trial) readHeartbeat(ctx context.Context, hr *record.HeartbeatRead) error {
	data, err := t.node.ReadFile(ctx, heartbeatTicks)
	if err != nil {
		return err
	}
	ticks, err := loadgen.ReadHeartbeat(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if len(ticks) == 0 {
		return fmt.Errorf("%s holds no tick", heartbeatTicks)
	}
	anchor := t.clock.Start().UnixNano()
	hr.Ticks = len(ticks)
	hr.FromMs = round1(float64(ticks[0].DueNs-anchor) / 1e6)
	hr.ToMs = round1(float64(ticks[len(ticks)-1].RanNs-anchor) / 1e6)
	return loadgen.AppendHeartbeat(t.dir, ticks, t.clock)
}
