package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

// trial is one run of nginx under load in a container of its own — what a
// scenario and a compare procedure have in common: a fresh record
// directory, the node, the first snapshot, the load on one clock, the steps
// and faults on that clock, the final state, the end-of-run marker, and the
// clean-up. A scenario or a procedure only says what happens in between.
type trial struct {
	name     string
	dir      string
	p        Params
	plan     trafficPlan // how the load runs each traffic kind, computed once
	meta     record.Meta
	progress Progress

	node  *nginx.Node
	start proc.Snapshot
	clock loadgen.Clock

	// holdTail, set before startLoad, holds the long downloads at their
	// last holdTail bytes until the drain-ending step (0: never held).
	holdTail int64

	load        loadControl
	slow        loadgen.Slow
	stopBackend func() // stops the upstream of the proxy, WebSocket and upload traffic (nil: none)
	// stopStandIns stops the stand-ins on a site's upstream addresses (nil: none).
	stopStandIns func()
	loadCtx      context.Context // ends at the hard stop: the load never outlives the trial
	stopLoad     context.CancelFunc
	hardStop     time.Duration
	// stopFreezeWatch ends the watch for a freeze from outside and says
	// how long the container was frozen by someone else.
	stopFreezeWatch func() (time.Duration, time.Time)
	// heartbeat is what became of the heartbeat in nginx's container, kept
	// for heartbeat.json (nil: none planned, or written already).
	heartbeat *record.HeartbeatRead

	evMu     sync.Mutex
	procs    *os.File // processes.jsonl
	events   *os.File
	enc      *json.Encoder
	stepsRun int
	// procsErr is the first failure to write processes.jsonl: the record
	// is incomplete, and the trial ends in error (end).
	procsErr error
}

// newTrial makes dir a fresh record directory (nothing of an earlier run
// may mix in), writes meta.json, starts the node and reads the process
// table it starts from. On error, whatever was started is closed.
func newTrial(ctx context.Context, pool *dockertest.Pool, name, dir string, p Params, plan trafficPlan, meta record.Meta,
	progress Progress, opts ...nginx.NodeOption) (_ *trial, err error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := &trial{name: name, dir: dir, p: p, plan: plan, meta: meta, progress: progress}
	if err := t.writeMeta(); err != nil {
		return nil, err
	}
	progress("%s: starting nginx (%s) in a container", name, p.From.Exact())
	if t.node, err = nginx.StartNode(ctx, pool, opts...); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	t.stopFreezeWatch = t.node.WatchFrozen()
	if t.start, err = t.node.Snapshot(ctx); err != nil {
		return nil, err
	}
	t.startHeartbeat(ctx)
	if t.events, err = os.Create(filepath.Join(dir, record.EventsFile)); err != nil {
		return nil, err
	}
	if t.procs, err = os.Create(filepath.Join(dir, record.ProcessesFile)); err != nil {
		return nil, err
	}
	t.sample("start", 0, nil, t.start)
	t.enc = json.NewEncoder(t.events)
	return t, nil
}

func (t *trial) path(name string) string { return filepath.Join(t.dir, name) }

func (t *trial) writeMeta() error { return writeJSON(t.path(record.MetaFile), t.meta) }

// startLoad starts the clock and the load (long downloads sized to last
// span), and bounds it: whatever the steps do, the load stops at hardStop.
func (t *trial) startLoad(ctx context.Context, span, hardStop time.Duration) error {
	t.clock = loadgen.NewClock()
	t.meta.StartWall = t.clock.Start().Format(time.RFC3339Nano)
	t.hardStop = hardStop
	t.loadCtx, t.stopLoad = context.WithTimeout(ctx, hardStop)
	// The backend lives as long as the load: it starts first and stops
	// after the load closed (finishLoad), so that every WebSocket is ended
	// by the client, never by the backend going away.
	// On the agent path they run in the agent, which closes them after the
	// load.
	path := t.p.loadPath(t.node)
	var ac *agent.Client
	if path == LoadPathAgent {
		if ac = t.node.Agent(); ac == nil {
			return errNoAgent
		}
		ac.SetDir(t.dir)
		var cfgs []backend.Config
		if t.p.Load.needsBackend() {
			cfgs = append(cfgs, backend.Config{Addr: BackendAddr, Name: "nuh"})
		}
		if t.p.Site != nil {
			cfgs = append(cfgs, t.p.Site.standInConfigs(t.p.Load)...)
		}
		if err := ac.StartBackends(cfgs, hardStop); err != nil {
			return err
		}
	} else {
		stop, err := t.p.startBackend(t.loadCtx, t.node)
		if err != nil {
			return err
		}
		t.stopBackend = stop
	}
	if t.p.Site != nil && (path != LoadPathAgent || t.p.Site.UpstreamCmd != nil) {
		var err error
		if t.stopStandIns, err = t.p.Site.startBackends(t.loadCtx, t.node, t.p.Load); err != nil {
			return err
		}
	}
	load, slow, err := t.p.startLoad(t.loadCtx, t.node, t.plan, t.clock, t.dir, span, hardStop, t.holdTail, &t.meta, path, ac)
	if err != nil {
		return err
	}
	t.load, t.slow = load, slow
	t.progress("%s: load %d req/s %s keepalive=%v, %d long downloads, traffic %s", t.name, t.p.Load.Rate, t.p.Load.Method, t.p.Load.KeepAlive, t.p.Load.Slow,
		strings.Join(t.p.Load.Kinds(), " + "))
	return nil
}

// event appends one event to events.jsonl, synced: a step is on disk as
// soon as it ended.
func (t *trial) event(ev record.Event) error {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	if err := t.enc.Encode(ev); err != nil {
		return err
	}
	t.stepsRun++
	return t.events.Sync()
}

// sample appends the process table at ms to processes.jsonl: who was
// master and worker of which binary, so that every pid of the server's
// log can be named (reports: generations). Zombies and non-nginx
// processes are left out, as in final.json.
func (t *trial) sample(at string, ms float64, pids []int, s proc.Snapshot) {
	if t.procs == nil || len(s.Procs) == 0 {
		return
	}
	rec := record.ProcessSample{Ms: ms, At: at, PIDs: pids, Procs: finalFrom(s).Processes}
	t.evMu.Lock()
	defer t.evMu.Unlock()
	if err := json.NewEncoder(t.procs).Encode(rec); err != nil && t.procsErr == nil {
		t.procsErr = fmt.Errorf("write %s (%s): %w", record.ProcessesFile, at, err)
	}
}

// stepSamples records the process tables a step saw before and after.
func (t *trial) stepSamples(r nginx.StepResult) {
	t.sample("before "+r.Name, t.clock.Ms(r.Sent), r.PIDs, r.Before)
	if !r.Verified.IsZero() {
		t.sample("after "+r.Name, t.clock.Ms(r.Verified), r.PIDs, r.After)
	} else {
		t.sample("after "+r.Name, t.clock.Now(), r.PIDs, r.After)
	}
}

// keepWitness reads the server's log back into the record (server-log.jsonl,
// bounded) with witness.json saying what the read found; without a witness
// configured it writes neither, and the report says the witness was absent.
// A failed read of the log is recorded in witness.json (the report makes
// it an error); a witness.json that cannot be written is an error of the
// run: meta.json says the witness was configured, and its record is gone.
func (t *trial) keepWitness(ctx context.Context) error {
	if t.node == nil || !t.node.Witness() {
		return nil
	}
	size, saved, err := t.node.SaveWitness(ctx, t.path(record.ServerLogFile))
	w := record.WitnessRead{SizeBytes: size, ReadBytes: saved}
	if err != nil {
		w.Error = oneLine(err.Error())
	}
	if err := writeJSON(t.path(record.WitnessFile), w); err != nil {
		return fmt.Errorf("write the second witness's record: %w", err)
	}
	return nil
}

// maxErrorLogLines bounds error-log.txt: a build that crashes in a loop
// must not fill the disk.
const maxErrorLogLines = 10000

// keepErrorLog writes the error log's failure lines since the trial began
// to error-log.txt: the steps quote only the lines of their own windows,
// and a worker may die between them (reports: deaths). A log that cannot
// be read is said in the file (its first line, "# …"); a file that cannot
// be written is an error of the run.
func (t *trial) keepErrorLog(ctx context.Context) error {
	if t.node == nil {
		return nil
	}
	var b strings.Builder
	lines, err := t.node.LogSince(ctx, t.start.LogSize)
	if err != nil {
		fmt.Fprintf(&b, "# could not read the error log: %s\n", oneLine(err.Error()))
	}
	n := 0
	for _, l := range lines {
		if nginx.FailureLevel(l) == "" {
			continue
		}
		if n++; n > maxErrorLogLines {
			fmt.Fprintf(&b, "# … more failure lines left out (the first %d kept)\n", maxErrorLogLines)
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(t.path(record.ErrorLogFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", record.ErrorLogFile, err)
	}
	return nil
}

// stepEvent turns a driver's step result into its event on the trial's clock.
func (t *trial) stepEvent(r nginx.StepResult) record.Event {
	ev := record.Event{Name: r.Name, Signal: r.Signal, SentMs: t.clock.Ms(r.Sent), Verified: r.OK,
		Error: r.Err, Phase: r.Phase, LogLines: r.LogLines}
	if len(r.PIDs) > 0 {
		ev.PID = r.PIDs[0]
		ev.PIDs = append([]int(nil), r.PIDs...)
	}
	if r.OK {
		ev.VerifiedMs = t.clock.Ms(r.Verified)
	}
	return ev
}

// envFault is why the environment, not nginx, spoiled the trial: a freeze
// from outside, or the load cut at its hard stop; nil when neither.
func (t *trial) envFault(ctx context.Context) error {
	if t.stopFreezeWatch != nil {
		if frozen, first := t.stopFreezeWatch(); frozen > 0 {
			return fmt.Errorf("the container was frozen from outside (docker pause, or its freezer cgroup) for about %s from %.0f ms into the run: nginx and the harness stood still, the measurement does not hold", frozen, t.clock.Ms(first))
		}
	}
	if t.loadCtx != nil && t.loadCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("the load was cut at the trial's planned duration (%s) before its steps ended", t.hardStop)
	}
	return nil
}

// finishLoad stops the requests, waits (at most wait) for the long
// downloads, and closes the load's files.
func (t *trial) finishLoad(ctx context.Context, wait time.Duration) (loadgen.Summary, error) {
	if t.load == nil {
		return loadgen.Summary{}, nil
	}
	t.load.StopAttack()
	wctx, cancel := context.WithTimeout(ctx, wait)
	t.load.WaitDownloads(wctx)
	cancel()
	sum, err := t.load.Close()
	t.load = nil
	// The heartbeat's windows join the observer's file once the load has
	// closed it, under a deadline of their own (an interrupted run keeps
	// them too).
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err = errors.Join(err, t.keepHeartbeat(hctx))
	hcancel()
	t.closeBackend()
	var requests, failed int64
	for _, ps := range sum.Profiles {
		requests, failed = requests+ps.Requests, failed+ps.Failed
	}
	t.progress("%s: load done: %d requests, %d failed, %d dropped; downloads %d/%d complete", t.name,
		requests, failed, sum.Drops(), sum.Downloads.Completed, sum.Downloads.Started)
	return sum, err
}

// end writes final.json and, last, the end-of-run marker; an interrupted
// trial gets no marker.
func (t *trial) end(ctx context.Context, final any) error {
	if err := writeJSON(t.path(record.FinalFile), final); err != nil {
		return err
	}
	t.evMu.Lock()
	procsErr := t.procsErr
	t.evMu.Unlock()
	if procsErr != nil {
		return procsErr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return writeJSON(t.path(record.EndFile), record.End{EndMs: t.clock.Now(), StepsRun: t.stepsRun})
}

// closeBackend stops the backend, if one runs.
func (t *trial) closeBackend() {
	if t.stopBackend != nil {
		t.stopBackend()
		t.stopBackend = nil
	}
	if t.stopStandIns != nil {
		t.stopStandIns()
		t.stopStandIns = nil
		if rec := t.p.Site.upstreamRecord(context.Background(), t.node); rec != "" {
			os.WriteFile(t.path("upstream.log"), []byte(rec), 0o644)
		}
	}
}

// close stops what is still running and removes the container.
func (t *trial) close() {
	if t.load != nil {
		t.load.Close()
		t.load = nil
	}
	t.closeBackend()
	if t.stopLoad != nil {
		t.stopLoad()
	}
	if t.events != nil {
		t.events.Close()
	}
	if t.procs != nil {
		t.procs.Close()
	}
	if t.stopFreezeWatch != nil {
		t.stopFreezeWatch()
	}
	if t.node != nil {
		if err := t.node.Close(); err != nil {
			t.progress("%s: container left behind (`nginx-upgrade-harness prune` removes it): %v", t.name, err)
		}
	}
}

// fail records why the trial could not run, in one line.
func (t *trial) fail(err error) {
	os.WriteFile(t.path(record.ErrorFile), []byte(oneLine(err.Error())+"\n"), 0o644)
}
