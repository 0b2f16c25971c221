package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Run plays one scenario in its own container under load and writes every
// record to dir/<scenario>: meta.json, events.jsonl, the load's files,
// final.json, end.json, and error.txt when it could not run. The returned
// error is for a scenario that could not run; a scenario that ran and lost
// requests returns nil — the verdict is the report's business.
func Run(ctx context.Context, pool *dockertest.Pool, sc Scenario, p Params, image string, dir string, progress Progress) (err error) {
	sdir := filepath.Join(dir, sc.Name)
	to := p.To
	if sc.Broken {
		to = p.Broken
	}
	steady := p.steady()
	plan := p.Load.plan()
	meta := p.newMeta(sc.Name, sc.Expect, to, plan, loadgen.NewClock())
	p.planScenario(&meta, sc)
	meta.PlanDigest = p.Plan(sc).Digest
	extra := append(faultNodeOptions(sc.Faults), nginx.WithLabel(harness.Label+".scenario", sc.Name))
	if p.Site != nil {
		var opts []nginx.NodeOption
		var notes []string
		if sc, opts, notes, err = siteScenario(sc, p.Site); err != nil {
			return err
		}
		extra = append(extra, opts...)
		meta.Notes = append(meta.Notes, notes...)
	}
	if sc.ConfigEdit != nil {
		base := p.Config
		if base == nil {
			base = []byte(nginx.DefaultConfig)
		}
		conf, err := sc.ConfigEdit(base)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		extra = append(extra, nginx.WithConfig(conf))
		meta.Notes = append(meta.Notes, sc.ConfigNote)
	}
	for k, v := range sc.Sysctls {
		extra = append(extra, nginx.WithSysctl(k, v))
		meta.Notes = append(meta.Notes, fmt.Sprintf("sysctl %s=%s in this scenario's container", k, v))
	}
	t, err := newTrial(ctx, pool, sc.Name, sdir, p, plan, meta, progress, p.nodeOptions(image, extra...)...)
	if err != nil {
		os.WriteFile(filepath.Join(sdir, record.ErrorFile), []byte(oneLine(err.Error())+"\n"), 0o644)
		return err
	}
	defer t.close()
	defer func() {
		if err != nil {
			t.fail(err)
		}
	}()

	cost := stepCostOn(t.node.ExecCost())
	span := slowSpanOn(sc, steady, cost, p.shutdownTimeout())
	if cost > stepCost {
		t.meta.Notes = append(t.meta.Notes, fmt.Sprintf("a slow host: its execs at rest take %s, so a step is planned at %s (not %s) and the long downloads last %s",
			t.node.ExecCost().Round(time.Millisecond), cost.Round(100*time.Millisecond), stepCost, span.Round(100*time.Millisecond)))
	}
	drainStart, drainEnd := drainWindow(sc.Moves)
	if drainEnd >= 0 && p.Load.Slow > 0 {
		t.holdTail = holdTail
	}
	if err := t.startLoad(ctx, span, plannedDuration(sc, steady)); err != nil {
		return err
	}
	hold := &downloadHold{load: t.load, held: t.holdTail > 0}
	defer hold.stop()
	phase := "steady"
	t.progress("%s: steady for %s", sc.Name, steady)
	if err := p.watch(t.loadCtx, steady, t.load, sc.Name, &phase); err != nil && ctx.Err() != nil {
		return err
	}

	faults, err := newFaultLog(t)
	if err != nil {
		return err
	}
	driver := nginx.NewDriver(t.node)
	var faultErr error
	for i, m := range sc.Moves {
		if t.loadCtx.Err() != nil {
			break
		}
		t.progress("%s: %s%s", sc.Name, m.Step.Name, signalNote(m.Step.Signal))
		step := m.Step
		if i == drainEnd {
			// Released once the step is sent, never before: a download
			// that ends before it proves nothing of the drain.
			step.Sent = func() {
				if hold.release() {
					t.progress("%s: the long downloads may read their last %d MiB now", sc.Name, t.holdTail>>20)
				}
			}
		}
		r := driver.Run(ctx, step)
		if i == drainStart {
			hold.releaseAfter(r.Sent, p.shutdownTimeout(), tailTime(t.holdTail, t.slow.BytesPerSec))
		}
		t.stepSamples(r)
		ev := t.stepEvent(r)
		if m.ExpectFail {
			ev.Expected, ev.ExpectedCause = record.ExpectFail, p.expectedCause(m)
		}
		if err := t.event(ev); err != nil {
			return err
		}
		if r.OK && r.Phase != "" {
			phase = r.Phase
		}
		var stepErr error
		switch {
		case r.OK && !m.ExpectFail:
			t.progress("%s: %s verified in %s; phase %s", sc.Name, r.Name, r.Verified.Sub(r.Sent).Round(time.Millisecond), phaseName(r))
		case !r.OK && m.ExpectFail:
			t.progress("%s: %s failed as expected: %s", sc.Name, r.Name, r.Err)
		case r.OK && m.ExpectFail:
			stepErr = fmt.Errorf("%s verified but was expected to fail", r.Name)
		default:
			stepErr = fmt.Errorf("%s", r.Err)
		}
		if r.DockerFault {
			// The environment failed (a Docker call, the container's
			// state): the scenario could not run, whatever was expected.
			faultErr = fmt.Errorf("%s", r.Err)
			t.progress("%s: %s: %v", sc.Name, r.Name, faultErr)
			break
		}
		if stepErr != nil {
			t.progress("%s: %s: %v", sc.Name, r.Name, stepErr)
			break
		}
		faults.strike(ctx, sc, m.Step.Name, r.OK)
		if m.StartSlow > 0 && p.Load.Slow > 0 {
			t.progress("%s: starting %d long downloads on the workers that accept now", sc.Name, m.StartSlow)
			if err := t.load.StartDownloads(m.StartSlow, t.slow.BytesPerSec/3); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			break
		}
		if m.Audit > 0 {
			t.progress("%s: audit %s", sc.Name, m.Audit)
			if p.watch(t.loadCtx, m.Audit, t.load, sc.Name, &phase) != nil {
				break
			}
		}
	}

	faults.healAll(context.WithoutCancel(ctx), sc)
	hold.release()
	if err := hold.err(); err != nil {
		return err
	}
	if faultErr == nil {
		faultErr = t.envFault(ctx)
	}
	// A record lost is an error of the run: the faults' record is what
	// tells a death the plan made from one it did not.
	recordErr := faults.writeErr()
	wait := quitTimeout
	if faultErr != nil {
		wait = 0 // the environment failed: the downloads cannot finish, cut them now
	}
	if _, err := t.finishLoad(ctx, wait); err != nil {
		return err
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer fcancel()
	final := finalState(fctx, t.node, sc, t.start)
	if faultErr == nil && recordErr == nil {
		lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		recordErr = t.keepErrorLog(lctx)
		lcancel()
	}
	// The log is read after the final state, under a deadline of its own:
	// a large one takes seconds. Not when the environment failed: the
	// engine or the container does not answer, and the run is an error.
	if faultErr == nil {
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		werr := t.keepWitness(wctx)
		wcancel()
		if werr != nil {
			return werr
		}
	}
	if faultErr != nil {
		writeJSON(t.path(record.FinalFile), final)
		return faultErr
	}
	if recordErr != nil {
		writeJSON(t.path(record.FinalFile), final)
		return recordErr
	}
	return t.end(ctx, final)
}

// loadMargin is what the load may run past the planned duration of its
// scenario before it is cut.
const loadMargin = 30 * time.Second

// plannedDuration is the longest a scenario's load may run: the steady
// phase, every step's timeout and audit, the wait for the long downloads,
// and a margin.
func plannedDuration(sc Scenario, steady time.Duration) time.Duration {
	d := steady + quitTimeout + loadMargin
	for _, m := range sc.Moves {
		t := m.Step.Timeout
		if t == 0 {
			t = 10 * time.Second
		}
		d += t + m.Audit + 10*time.Second
	}
	return d
}

func phaseName(r nginx.StepResult) string {
	if r.Phase == "" {
		return "unchanged"
	}
	return r.Phase
}

func signalNote(sig string) string {
	if sig == "" {
		return ""
	}
	return " (" + sig + ")"
}

// watch lets the load run for d, feeding p.Live a status line of it.
func (p Params) watch(ctx context.Context, d time.Duration, load loadControl, name string, phase *string) error {
	if p.Live == nil {
		return sleep(ctx, d)
	}
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		s := load.Snapshot()
		var req, failed int64
		for _, ps := range s.Profiles {
			req, failed = req+ps.Requests, failed+ps.Failed
		}
		p.Live(fmt.Sprintf("%s [%s] %d requests, %d failed, %d retried, %d connections opened, downloads %d/%d done, %d cut",
			name, *phase, req, failed, s.Retried, s.Opened, s.Downloads.Completed, s.Downloads.Started, s.Downloads.Cut))
		if err := sleep(ctx, min(left, 500*time.Millisecond)); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// RunSuite runs the scenarios one after another into dir and renders the
// reports after each one, so that what is on disk is always complete up to
// the scenario that ran last. It stops early when ctx ends (Ctrl-C) and
// still renders what was measured.
func RunSuite(ctx context.Context, pool *dockertest.Pool, scs []Scenario, p Params, im Images, dir string, progress Progress) (*record.Report, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		image := im.Good
		if sc.Broken {
			image = im.Broken
		}
		if err := Run(ctx, pool, sc, p, image, dir, progress); err != nil {
			progress("%s: could not run: %v", sc.Name, err)
		}
		if _, err := Render(dir); err != nil {
			return nil, err
		}
	}
	return Render(dir)
}

// Render rebuilds report.json, report.md and report.html from the records
// in dir (reports.Render).
func Render(dir string) (*record.Report, error) { return reports.Render(dir) }
