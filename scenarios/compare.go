package scenarios

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
)

const (
	compareExpect    = ExpectZeroDrops // what each run is judged against: a procedure should lose nothing
	procedurePhase   = "procedure"
	auditPhase       = "audit"
	sampleInterval   = reports.MasterSampleMs * time.Millisecond
	defaultAudit     = 3 * time.Second
	compareSlowAfter = 4 * time.Second // long downloads run this long past the steady phase
)

// Compare is what a compare run puts side by side.
type Compare struct {
	Procedures []procedure.Procedure
	// Timeout bounds each procedure (default procedure.DefaultTimeout).
	Timeout time.Duration
	// Audit is how long the load goes on after the procedure ended (default 3 s).
	Audit time.Duration
	// Builds are the builds each procedure runs with (default good and broken).
	Builds []string
	// Expect, when set, is what each build's procedure must do: the
	// compare run then has a verdict (compare --expect).
	Expect *reports.CompareExpect
	// Repeat runs each procedure with each build that many times (default
	// 1), for the procedures whose outcome is a race.
	Repeat int
	// Unit is the user's nginx.service for the procedures under systemd
	// (nil: the one Debian's package ships); UnitName names it.
	Unit     []byte
	UnitName string
}

// PrepareCompareImages builds (or finds) the pair images old→new and old→broken.
func PrepareCompareImages(ctx context.Context, pool *dockertest.Pool, p Params, progress Progress) (Images, error) {
	return PrepareImages(ctx, pool, []Scenario{{Name: "good"}, {Name: "broken", Broken: true}}, p, progress)
}

// PrepareSystemdImages builds (or finds) the systemd variants of im's
// pair images, after checking that this Docker can run systemd as PID 1.
func PrepareSystemdImages(ctx context.Context, pool *dockertest.Pool, im Images, progress Progress) (Images, error) {
	w := progressWriter{progress}
	var err error
	if im.Good != "" {
		if im.GoodSystemd, err = image.EnsureSystemdImage(ctx, pool, im.Good, w); err != nil {
			return im, err
		}
	}
	if im.Broken != "" {
		if im.BrokenSystemd, err = image.EnsureSystemdImage(ctx, pool, im.Broken, w); err != nil {
			return im, err
		}
	}
	return im, nil
}

// NeedsSystemd tells whether some procedure runs under systemd.
func (c Compare) NeedsSystemd() bool {
	for _, p := range c.Procedures {
		if p.Systemd() {
			return true
		}
	}
	return false
}

// RunCompare runs every procedure with each build, one container at a
// time, and renders the compare report after each, so that what is on disk
// is complete up to the run that ended last. A procedure that could not be
// run gets its row with outcome failed; the error is for a compare that
// could not go on (an unwritable directory).
func RunCompare(ctx context.Context, pool *dockertest.Pool, c Compare, p Params, im Images, dir string, progress Progress) (*reports.CompareReport, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	builds := c.Builds
	if len(builds) == 0 {
		builds = []string{reports.BuildGood, reports.BuildBroken}
	}
	repeat := max(c.Repeat, 1)
	rec := reports.CompareRecord{From: p.From.Spec, To: p.To.Spec, Broken: p.Broken.Spec,
		Load:            p.Load.Record(),
		Expect:          c.Expect,
		InsecureArchive: p.InsecureArchive}
	if repeat > 1 {
		rec.Repeat = repeat
	}
	used := map[string]int{}
	for _, proc := range c.Procedures {
		for _, b := range builds {
			for k := 1; k <= repeat; k++ {
				name := proc.Name() + "-" + b
				if used[name]++; used[name] > 1 {
					name = fmt.Sprintf("%s-%d", name, used[name])
				}
				plan := p.comparePlan(name, proc, b, c)
				run := reports.CompareRun{Dir: name, Procedure: proc.Name(), Spec: proc.Spec, Build: b, Plan: &plan}
				if repeat > 1 {
					run.Repeat = k
				}
				rec.Runs = append(rec.Runs, run)
			}
		}
	}
	if err := writeJSON(filepath.Join(dir, reports.CompareFile), rec); err != nil {
		return nil, err
	}
	i := 0
	for _, proc := range c.Procedures {
		for _, b := range builds {
			for k := 0; k < repeat; k++ {
				run := rec.Runs[i]
				i++
				if ctx.Err() != nil {
					break
				}
				image := im.Good
				if b == reports.BuildBroken {
					image = im.Broken
				}
				if proc.Systemd() {
					image = im.GoodSystemd
					if b == reports.BuildBroken {
						image = im.BrokenSystemd
					}
				}
				if err := RunProcedure(ctx, pool, proc, b, p, image, filepath.Join(dir, run.Dir), c, run.Repeat, progress); err != nil {
					progress("%s: could not run: %v", run.Dir, err)
				}
				if _, err := reports.RenderCompare(dir); err != nil {
					return nil, err
				}
			}
		}
	}
	return reports.RenderCompare(dir)
}

// comparePlan is what a compare run (a procedure with a build) is meant to
// do, as compare.json records it before the first run (sealed with its
// digest): the load, the steady window, the procedure, the build and what
// compare --expect wants of it — computed as its meta.json's plan is.
func (p Params) comparePlan(name string, proc procedure.Procedure, build string, c Compare) record.ScenarioPlan {
	meta := record.Meta{Scenario: name, Expect: compareExpect, Load: p.Load.Record(), SteadyMs: float64(p.steady().Milliseconds())}
	plan := record.PlanOf(meta)
	plan.Source = record.PlanCompare
	plan.Row = reports.RowPlanOf(proc.Name(), proc.Spec, build, c.Expect)
	return plan.Sealed()
}

// RunProcedure runs one procedure with one build in a fresh container
// under load and records everything in sdir. The error is for a procedure
// that could not be run; one that ran and failed returns nil (its exit
// code and what it left are in the records).
func RunProcedure(ctx context.Context, pool *dockertest.Pool, proc procedure.Procedure, build string, p Params, image, sdir string, c Compare, runIndex int, progress Progress) (err error) {
	name := filepath.Base(sdir)
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = procedure.DefaultTimeout
	}
	audit := c.Audit
	if audit <= 0 {
		audit = defaultAudit
	}
	steady := p.steady()
	to := p.To
	if build == reports.BuildBroken {
		to = p.Broken
	}
	rec := reports.ProcedureRecord{Procedure: proc.Name(), Spec: proc.Spec, Build: build, ExitCode: -1,
		TimeoutMs: float64(timeout.Milliseconds()), BinaryOnDisk: "unknown", Init: record.InitDocker}
	nodeOpts := []nginx.NodeOption{nginx.WithLabel(harness.Label+".procedure", name)}
	if proc.Systemd() {
		if image == "" {
			return fmt.Errorf("%s: no systemd image prepared (PrepareSystemdImages)", name)
		}
		rec.Init = record.InitSystemd
		nodeOpts = append(nodeOpts, nginx.WithSystemd())
		rec.Unit = "Debian's " + nginx.Unit
		if c.Unit != nil {
			nodeOpts = append(nodeOpts, nginx.WithUnit(c.Unit))
			sum := sha256.Sum256(c.Unit)
			rec.Unit = fmt.Sprintf("%s as %s (sha256 %s)", c.UnitName, nginx.UnitOverride, hex.EncodeToString(sum[:])[:12])
		}
	}
	plan := p.Load.plan()
	meta := p.newMeta(name, compareExpect, to, plan, loadgen.NewClock())
	// A procedure's steps are its own business: none is planned here.
	meta.SteadyMs = float64(steady.Milliseconds())
	meta.PlanDigest = p.comparePlan(name, proc, build, c).Digest
	t, err := newTrial(ctx, pool, name, sdir, p, plan, meta, progress,
		p.nodeOptions(image, nodeOpts...)...)
	if err != nil {
		rec.Error = oneLine(err.Error())
		os.WriteFile(filepath.Join(sdir, record.ErrorFile), []byte(rec.Error+"\n"), 0o644)
		writeJSON(filepath.Join(sdir, reports.ProcedureFile), rec)
		return err
	}
	defer t.close()
	defer func() {
		if err != nil {
			rec.Error = oneLine(err.Error())
			t.fail(err)
		}
		if werr := writeJSON(t.path(reports.ProcedureFile), rec); werr != nil && err == nil {
			err = werr
		}
	}()
	if err := writeJSON(t.path(reports.ProcessesBefore), t.start); err != nil {
		return err
	}
	if t.node.Systemd() {
		v, err := t.node.SystemdView(ctx)
		if err != nil {
			return fmt.Errorf("read systemd's view before the procedure: %w", err)
		}
		rec.SystemdBefore = &v
	}

	popts := procedure.Options{Broken: build == reports.BuildBroken, Timeout: timeout, Run: runIndex,
		OnStep: func(r nginx.StepResult) {
			ev := t.stepEvent(r)
			if ev.Phase == "" && len(r.PIDs) == 0 && r.Signal == "" {
				ev.Phase = procedurePhase
			}
			if r.Signal == "USR2" && build == reports.BuildBroken {
				ev.Expected = record.ExpectFail
				ev.ExpectedCause = p.expectedCause(Move{ExpectCause: NewMasterFailureCause})
			}
			t.event(ev)
			t.progress("%s: %s verified=%t %s", name, r.Name, r.OK, r.Err)
		}}
	t.progress("%s: preparing %s", name, proc.Spec)
	prepared, err := proc.Prepare(ctx, t.node, popts)
	if err != nil {
		return err
	}
	rec.Notes = prepared.Notes()

	// The long downloads are in flight when the procedure starts and end a
	// few seconds into it (or are cut by it).
	hardStop := steady + timeout + audit + quitTimeout + loadMargin
	if err := t.startLoad(ctx, steady+compareSlowAfter, hardStop); err != nil {
		return err
	}
	if err := sleep(ctx, steady); err != nil {
		return err
	}

	stopSampling := sampleMasters(ctx, t.node, t.clock, t.path(reports.MastersFile))
	t.progress("%s: running %s (timeout %s)", name, proc.Spec, timeout)
	res := prepared.Run(ctx)
	rec.StartMs, rec.EndMs = t.clock.Ms(res.Started), t.clock.Ms(res.Ended)
	rec.DurationMs = round1(rec.EndMs - rec.StartMs)
	rec.Argv, rec.ExitCode, rec.TimedOut, rec.Notes = res.Argv, res.Exit, res.TimedOut, res.Notes
	os.WriteFile(t.path(reports.ProcedureStdout), []byte(res.Stdout), 0o644)
	os.WriteFile(t.path(reports.ProcedureStderr), []byte(res.Stderr), 0o644)
	if proc.External() || res.Err != nil {
		ev := record.Event{Name: proc.Name(), SentMs: rec.StartMs, Phase: procedurePhase,
			Verified: res.Err == nil && res.Exit == 0}
		switch {
		case res.Err != nil:
			ev.Error = res.Err.Error()
		case res.TimedOut:
			ev.Error = fmt.Sprintf("timed out after %s and was killed (exit %d)", timeout, res.Exit)
		case res.Exit != 0:
			ev.Error = fmt.Sprintf("exit %d: %s", res.Exit, harness.LastLine(res.Stderr+res.Stdout))
		}
		if ev.Verified {
			ev.VerifiedMs = rec.EndMs
		}
		if build == reports.BuildBroken {
			// A procedure given a build that cannot start must say so: exit
			// non-zero, or be stopped by its timeout.
			ev.Expected, ev.ExpectedCause = record.ExpectFail, `^(exit [1-9]|timed out)`
		}
		t.event(ev)
	}
	t.progress("%s: %s ended after %s: exit %d timed_out=%t", name, proc.Spec, res.Duration.Round(time.Millisecond), res.Exit, res.TimedOut)
	if res.Err != nil {
		stopSampling()
		return res.Err
	}
	t.event(record.Event{Name: auditPhase, SentMs: rec.EndMs, VerifiedMs: rec.EndMs, Verified: true, Phase: auditPhase})
	t.progress("%s: audit %s", name, audit)
	sleep(ctx, audit)

	_, lerr := t.finishLoad(ctx, quitTimeout)
	stopSampling()
	if lerr != nil {
		return lerr
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer fcancel()
	final, after := compareFinal(fctx, t.node)
	rec.BinaryOnDisk = binaryOnDisk(fctx, t.node)
	if err := writeJSON(t.path(reports.ProcessesAfter), after); err != nil {
		return err
	}
	// nginx's own log of the procedure's requests, as a scenario keeps it:
	// meta.json says the witness was configured, so its record must be there.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	werr := t.keepWitness(wctx)
	wcancel()
	if werr != nil {
		return werr
	}
	return t.end(ctx, final)
}

// sampleMasters writes a reports.MasterSample every sampleInterval until the
// returned function is called (which waits for the last line).
func sampleMasters(ctx context.Context, node *nginx.Node, clock loadgen.Clock, path string) func() {
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		enc := json.NewEncoder(w)
		for sctx.Err() == nil {
			s, err := node.Snapshot(sctx)
			if err == nil {
				ms := reports.MasterSample{Ms: round1(clock.Now()), PidFile: s.PidFile, Oldbin: s.Oldbin, Masters: []reports.SampledMaster{}}
				for _, m := range s.Masters() {
					ms.Masters = append(ms.Masters, reports.SampledMaster{PID: m.PID, PPID: m.PPID, Binary: m.Binary, Workers: len(s.Workers(m.PID))})
				}
				enc.Encode(ms)
				w.Flush()
			}
			select {
			case <-sctx.Done():
			case <-time.After(sampleInterval):
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// compareFinal reads what the procedure left: the process table, the pid
// file, the serving binary (from the master's executable) and whether
// nginx answers. Nothing is expected of it: no check errors.
func compareFinal(ctx context.Context, node *nginx.Node) (record.Final, proc.Snapshot) {
	s, err := node.Snapshot(ctx)
	if err != nil {
		return record.Final{ServingBinary: "unknown", CheckErrors: []string{"could not read the process table: " + err.Error()}}, s
	}
	f := finalFrom(s)
	f.Serving = node.Probe(ctx) == nil
	if node.Systemd() {
		v, err := node.SystemdView(ctx)
		if err != nil {
			f.CheckErrors = append(f.CheckErrors, "could not read systemd's view: "+err.Error())
		} else {
			f.Systemd = &v
		}
	}
	judge.Final(&f)
	return f, s
}

// binaryOnDisk names the binary at the path nginx runs from: what a
// restart would start.
func binaryOnDisk(ctx context.Context, node *nginx.Node) string {
	b, err := node.ReadFile(ctx, node.Binary())
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	switch bi := node.Builds(); h {
	case bi.NewSHA256:
		return "new"
	case bi.OldSHA256:
		return "old"
	}
	return "unknown"
}
func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
