package scenarios

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
)

// Files of a compare run. The top level holds CompareFile and the rendered
// report; each procedure×build has a directory laid out like a scenario's
// (meta.json, events.jsonl, results.gob, connections.jsonl, final.json, …)
// plus the files below, so that RenderCompare can rebuild the report from
// the records alone.
const (
	CompareFile      = "compare.json"          // CompareRecord
	ProcedureFile    = "procedure.json"        // ProcedureRecord
	MastersFile      = "masters.jsonl"         // one MasterSample per line, while the procedure runs and after
	ProcessesBefore  = "processes-before.json" // harness.Snapshot before the procedure
	ProcessesAfter   = "processes-after.json"  // harness.Snapshot at the end
	ProcedureStdout  = "procedure.stdout"
	ProcedureStderr  = "procedure.stderr"
	compareExpect    = ExpectZeroDrops // what each run is judged against: a procedure should lose nothing
	procedurePhase   = "procedure"
	auditPhase       = "audit"
	sampleInterval   = 100 * time.Millisecond
	defaultAudit     = 3 * time.Second
	compareSlowAfter = 4 * time.Second // long downloads run this long past the steady phase
)

// Compare is what a compare run puts side by side.
type Compare struct {
	Procedures []harness.Procedure
	// Timeout bounds each procedure (default harness.DefaultProcedureTimeout).
	Timeout time.Duration
	// Audit is how long the load goes on after the procedure ended (default 3 s).
	Audit time.Duration
	// Builds are the builds each procedure runs with (default good and broken).
	Builds []string
}

// CompareRecord is compare.json: what was compared, in the order it ran.
type CompareRecord struct {
	From   string       `json:"from"`
	To     string       `json:"to"`
	Broken string       `json:"broken"`
	Load   reports.Load `json:"load"`
	Runs   []CompareRun `json:"runs"`
}

// CompareRun names one procedure×build directory.
type CompareRun struct {
	Dir       string `json:"dir"`
	Procedure string `json:"procedure"`
	Spec      string `json:"spec"`
	Build     string `json:"build"`
}

// ProcedureRecord is procedure.json: what the procedure did, as its runner saw it.
type ProcedureRecord struct {
	Procedure    string   `json:"procedure"`
	Spec         string   `json:"spec"`
	Build        string   `json:"build"`
	Argv         []string `json:"argv,omitempty"`
	ExitCode     int      `json:"exit_code"`
	TimedOut     bool     `json:"timed_out"`
	TimeoutMs    float64  `json:"timeout_ms"`
	StartMs      float64  `json:"start_ms"` // on the run's clock
	EndMs        float64  `json:"end_ms"`
	DurationMs   float64  `json:"duration_ms"`
	Notes        []string `json:"notes,omitempty"`
	Error        string   `json:"error,omitempty"` // the procedure could not be run
	BinaryOnDisk string   `json:"binary_on_disk"`  // old, new or unknown: what a restart would run
}

// MasterSample is one line of masters.jsonl: the masters at one moment.
type MasterSample struct {
	Ms      float64         `json:"ms"`
	PidFile int             `json:"pid_file"`
	Oldbin  int             `json:"oldbin"`
	Masters []SampledMaster `json:"masters"`
}

// SampledMaster is one master in a sample.
type SampledMaster struct {
	PID     int    `json:"pid"`
	PPID    int    `json:"ppid"`
	Binary  string `json:"binary"`
	Workers int    `json:"workers"`
}

// PrepareCompareImages builds (or finds) the pair images old→new and old→broken.
func PrepareCompareImages(ctx context.Context, pool *dockertest.Pool, p Params, progress Progress) (Images, error) {
	return PrepareImages(ctx, pool, []Scenario{{Name: "good"}, {Name: "broken", Broken: true}}, p, progress)
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
	rec := CompareRecord{From: p.From.Spec, To: p.To.Spec, Broken: p.Broken.Spec,
		Load: reports.Load{Rate: p.Load.Rate, Method: p.Load.Method, Keepalive: p.Load.KeepAlive, Slow: p.Load.Slow}}
	used := map[string]int{}
	for _, proc := range c.Procedures {
		for _, b := range builds {
			name := proc.Name() + "-" + b
			if used[name]++; used[name] > 1 {
				name = fmt.Sprintf("%s-%d", name, used[name])
			}
			rec.Runs = append(rec.Runs, CompareRun{Dir: name, Procedure: proc.Name(), Spec: proc.Spec, Build: b})
		}
	}
	if err := writeJSON(filepath.Join(dir, CompareFile), rec); err != nil {
		return nil, err
	}
	i := 0
	for _, proc := range c.Procedures {
		for _, b := range builds {
			run := rec.Runs[i]
			i++
			if ctx.Err() != nil {
				break
			}
			image := im.Good
			if b == reports.BuildBroken {
				image = im.Broken
			}
			if err := RunProcedure(ctx, pool, proc, b, p, image, filepath.Join(dir, run.Dir), c, progress); err != nil {
				progress("%s: could not run: %v", run.Dir, err)
			}
			if _, err := RenderCompare(dir); err != nil {
				return nil, err
			}
		}
	}
	return RenderCompare(dir)
}

// RunProcedure runs one procedure with one build in a fresh container
// under load and records everything in sdir. The error is for a procedure
// that could not be run; one that ran and failed returns nil (its exit
// code and what it left are in the records).
func RunProcedure(ctx context.Context, pool *dockertest.Pool, proc harness.Procedure, build string, p Params, image, sdir string, c Compare, progress Progress) (err error) {
	name := filepath.Base(sdir)
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = harness.DefaultProcedureTimeout
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
	rec := ProcedureRecord{Procedure: proc.Name(), Spec: proc.Spec, Build: build, ExitCode: -1,
		TimeoutMs: float64(timeout.Milliseconds()), BinaryOnDisk: "unknown"}
	meta := p.newMeta(name, compareExpect, to, loadgen.NewClock())
	// A procedure's steps are its own business: none is planned here.
	meta.SteadyMs = float64(steady.Milliseconds())
	t, err := newTrial(ctx, pool, name, sdir, p, meta, progress,
		p.nodeOptions(image, harness.WithLabel(harness.Label+".procedure", name))...)
	if err != nil {
		rec.Error = oneLine(err.Error())
		os.WriteFile(filepath.Join(sdir, reports.ErrorFile), []byte(rec.Error+"\n"), 0o644)
		writeJSON(filepath.Join(sdir, ProcedureFile), rec)
		return err
	}
	defer t.close()
	defer func() {
		if err != nil {
			rec.Error = oneLine(err.Error())
			t.fail(err)
		}
		if werr := writeJSON(t.path(ProcedureFile), rec); werr != nil && err == nil {
			err = werr
		}
	}()
	if err := writeJSON(t.path(ProcessesBefore), t.start); err != nil {
		return err
	}

	popts := harness.ProcedureOptions{Broken: build == reports.BuildBroken, Timeout: timeout,
		OnStep: func(r harness.StepResult) {
			ev := t.stepEvent(r)
			if ev.Phase == "" && len(r.PIDs) == 0 && r.Signal == "" {
				ev.Phase = procedurePhase
			}
			if r.Signal == "USR2" && build == reports.BuildBroken {
				ev.Expected = reports.ExpectFail
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

	stopSampling := sampleMasters(ctx, t.node, t.clock, t.path(MastersFile))
	t.progress("%s: running %s (timeout %s)", name, proc.Spec, timeout)
	res := prepared.Run(ctx)
	rec.StartMs, rec.EndMs = t.clock.Ms(res.Started), t.clock.Ms(res.Ended)
	rec.DurationMs = round1(rec.EndMs - rec.StartMs)
	rec.Argv, rec.ExitCode, rec.TimedOut, rec.Notes = res.Argv, res.Exit, res.TimedOut, res.Notes
	os.WriteFile(t.path(ProcedureStdout), []byte(res.Stdout), 0o644)
	os.WriteFile(t.path(ProcedureStderr), []byte(res.Stderr), 0o644)
	if proc.Kind != harness.ProcManual || res.Err != nil {
		ev := reports.Event{Name: proc.Name(), SentMs: rec.StartMs, Phase: procedurePhase,
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
			ev.Expected, ev.ExpectedCause = reports.ExpectFail, `^(exit [1-9]|timed out)`
		}
		t.event(ev)
	}
	t.progress("%s: %s ended after %s: exit %d timed_out=%t", name, proc.Spec, res.Duration.Round(time.Millisecond), res.Exit, res.TimedOut)
	if res.Err != nil {
		stopSampling()
		return res.Err
	}
	t.event(reports.Event{Name: auditPhase, SentMs: rec.EndMs, VerifiedMs: rec.EndMs, Verified: true, Phase: auditPhase})
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
	if err := writeJSON(t.path(ProcessesAfter), after); err != nil {
		return err
	}
	return t.end(ctx, final)
}

// sampleMasters writes a MasterSample every sampleInterval until the
// returned function is called (which waits for the last line).
func sampleMasters(ctx context.Context, node *harness.Node, clock loadgen.Clock, path string) func() {
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
				ms := MasterSample{Ms: round1(clock.Now()), PidFile: s.PidFile, Oldbin: s.Oldbin, Masters: []SampledMaster{}}
				for _, m := range s.Masters() {
					ms.Masters = append(ms.Masters, SampledMaster{PID: m.PID, PPID: m.PPID, Binary: m.Binary, Workers: len(s.Workers(m.PID))})
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
func compareFinal(ctx context.Context, node *harness.Node) (reports.Final, harness.Snapshot) {
	s, err := node.Snapshot(ctx)
	if err != nil {
		return reports.Final{ServingBinary: "unknown", CheckErrors: []string{"could not read the process table: " + err.Error()}}, s
	}
	f := finalFrom(s)
	f.Serving = node.Probe(ctx) == nil
	return f, s
}

// binaryOnDisk names the binary at the path nginx runs from: what a
// restart would start.
func binaryOnDisk(ctx context.Context, node *harness.Node) string {
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

// RenderCompare rebuilds the compare report from the records in dir and
// writes report.json, report.md and report.html.
func RenderCompare(dir string) (*reports.CompareReport, error) {
	c, err := BuildCompare(dir)
	if err != nil {
		return nil, err
	}
	if err := reports.WriteCompareAll(dir, c); err != nil {
		return nil, fmt.Errorf("write compare report to %s: %w", dir, err)
	}
	return c, nil
}

// BuildCompare reads a compare run's records into its report; runs that
// have not happened (an interrupted compare) are left out.
func BuildCompare(dir string) (*reports.CompareReport, error) {
	var rec CompareRecord
	if err := readJSONFile(filepath.Join(dir, CompareFile), &rec); err != nil {
		return nil, fmt.Errorf("read compare run %s: %w", dir, err)
	}
	c := &reports.CompareReport{Schema: reports.Schema, From: rec.From, To: rec.To, Broken: rec.Broken,
		Load: rec.Load, Procedures: []reports.Procedure{}}
	for _, run := range rec.Runs {
		sdir := filepath.Join(dir, run.Dir)
		if _, err := os.Stat(sdir); err != nil {
			continue
		}
		row, err := BuildProcedure(sdir)
		if err != nil {
			return nil, err
		}
		if row.Name == "" {
			row.Name, row.Build = run.Procedure, run.Build
		}
		c.Procedures = append(c.Procedures, row)
	}
	return c, nil
}

// BuildProcedure reads one procedure×build directory into its row.
func BuildProcedure(sdir string) (reports.Procedure, error) {
	s, _, err := reports.BuildScenario(sdir)
	if err != nil {
		return reports.Procedure{}, err
	}
	var rec ProcedureRecord
	recErr := readJSONFile(filepath.Join(sdir, ProcedureFile), &rec)
	row := reports.NewProcedure(rec.Procedure, s)
	row.Build, row.ExitCode, row.DurationMs = rec.Build, rec.ExitCode, rec.DurationMs
	row.Dir, row.TimedOut, row.BinaryOnDisk = filepath.Base(sdir), rec.TimedOut, rec.BinaryOnDisk
	row.Notes = append(row.Notes, rec.Notes...)
	if rec.TimedOut {
		row.Notes = append(row.Notes, fmt.Sprintf("the procedure hung: killed after its timeout of %s", fmtMs(rec.TimeoutMs)))
	}
	if recErr != nil {
		row.Error = strings.TrimSpace(strings.Join([]string{row.Error, recErr.Error()}, "; "))
	} else if rec.Error != "" {
		row.Error = rec.Error
	}
	var before harness.Snapshot
	readJSONFile(filepath.Join(sdir, ProcessesBefore), &before)
	var samples []MasterSample
	readJSONLFile(filepath.Join(sdir, MastersFile), func(m MasterSample) { samples = append(samples, m) })
	wentDown, evidence := RestartEvidence(before, samples, s.Timeline)
	row.Restart = evidence
	ran := recErr == nil && rec.Error == "" && s.Error == "" && s.Final != nil
	row.Outcome = reports.OutcomeOf(s.Final, ran, wentDown)
	return row, nil
}

// RestartEvidence tells, from the masters sampled while the procedure ran
// and the requests that failed, whether the service went down and came
// back: a moment with no master followed by one, or a change of master
// that no USR2 explains (a USR2 always shows two masters at once, the new
// one a child of the old). It says what it saw, in words.
func RestartEvidence(before harness.Snapshot, samples []MasterSample, tl *reports.Timeline) (bool, []string) {
	var evidence []string
	wentDown := false
	downFrom := -1.0
	sawTwo := false
	known := map[int]bool{}
	for _, m := range before.Masters() {
		known[m.PID] = true
	}
	var firstMaster, lastMaster int
	if ms := before.Masters(); len(ms) == 1 {
		firstMaster = ms[0].PID
	}
	var foreign []string
	for _, s := range samples {
		if len(s.Masters) == 0 {
			if downFrom < 0 {
				downFrom = s.Ms
			}
			continue
		}
		if downFrom >= 0 {
			wentDown = true
			w := fmt.Sprintf("no nginx master from %s to %s", fmtMs(downFrom), fmtMs(s.Ms))
			if n := failedBetween(tl, downFrom-float64(sampleInterval.Milliseconds()), s.Ms); n > 0 {
				w += fmt.Sprintf(", %d requests failed meanwhile", n)
			}
			evidence = append(evidence, w)
			downFrom = -1
		}
		if len(s.Masters) >= 2 {
			sawTwo = true
		}
		for _, m := range s.Masters {
			if !known[m.PID] && !known[m.PPID] {
				foreign = append(foreign, fmt.Sprintf("master %d appeared at %s with parent %d, not a master", m.PID, fmtMs(s.Ms), m.PPID))
			}
		}
		for _, m := range s.Masters {
			known[m.PID] = true
		}
		if len(s.Masters) == 1 {
			lastMaster = s.Masters[0].PID
		}
	}
	if !sawTwo && firstMaster != 0 && lastMaster != 0 && lastMaster != firstMaster {
		wentDown = true
		e := fmt.Sprintf("the master changed from %d to %d with never two masters at once: not a USR2 upgrade", firstMaster, lastMaster)
		if len(foreign) > 0 {
			e += " (" + strings.Join(foreign, "; ") + ")"
		}
		evidence = append(evidence, e)
	}
	return wentDown, evidence
}

func failedBetween(tl *reports.Timeline, from, to float64) int {
	if tl == nil || tl.BucketMs <= 0 {
		return 0
	}
	n := 0
	for i, f := range tl.Failed {
		start := tl.StartMs + float64(i)*tl.BucketMs
		if start+tl.BucketMs > from && start < to {
			n += f
		}
	}
	return n
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s missing", filepath.Base(path))
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// readJSONLFile reads a JSON-lines file, stopping quietly at a line cut
// short (a run killed half-way).
func readJSONLFile[T any](path string, each func(T)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		each(v)
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func fmtMs(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
