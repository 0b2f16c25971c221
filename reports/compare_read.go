package reports

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// Reading a compare run's records into its report: what `report DIR`
// needs, without the package that runs Docker.

// Files of a compare run. The top level holds CompareFile and the rendered
// report; each procedure×build has a directory laid out like a scenario's
// (meta.json, events.jsonl, results.gob, connections.jsonl, final.json, …)
// plus the files below, so that RenderCompare can rebuild the report from
// the records alone.
// MasterSampleMs is how often masters.jsonl samples the masters.
const MasterSampleMs = 100

const (
	CompareFile     = "compare.json"          // CompareRecord
	ProcedureFile   = "procedure.json"        // ProcedureRecord
	MastersFile     = "masters.jsonl"         // one MasterSample per line, while the procedure runs and after
	ProcessesBefore = "processes-before.json" // proc.Snapshot before the procedure
	ProcessesAfter  = "processes-after.json"  // proc.Snapshot at the end
	ProcedureStdout = "procedure.stdout"
	ProcedureStderr = "procedure.stderr"
)

// CompareRecord is compare.json: what was compared, in the order it ran.
type CompareRecord struct {
	From   string       `json:"from"`
	To     string       `json:"to"`
	Broken string       `json:"broken"`
	Load   record.Load  `json:"load"`
	Runs   []CompareRun `json:"runs"`
	// Expect is compare --expect (nil: a measurement, no verdict); Repeat
	// is compare --repeat (each procedure and build run that many times).
	Expect *CompareExpect `json:"expect,omitempty"`
	Repeat int            `json:"repeat,omitempty"`

	// InsecureArchive: the builds were resolved with --insecure-archive.
	InsecureArchive bool `json:"insecure_archive,omitempty"`
}

// CompareRun names one procedure×build directory.
type CompareRun struct {
	Dir       string `json:"dir"`
	Procedure string `json:"procedure"`
	Spec      string `json:"spec"`
	Build     string `json:"build"`
	Repeat    int    `json:"repeat,omitempty"` // 1…N under --repeat N
	// Plan is what the run was meant to do, with its digest (nil: a
	// compare.json written before plans were); its meta.json names the
	// digest, and the report holds both to it and to Expect.
	Plan *record.ScenarioPlan `json:"plan,omitempty"`
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
	Init         string   `json:"init,omitempty"`  // the container's PID 1: docker-init or systemd
	// Under systemd: the unit nginx ran as (Debian's, or the user's file
	// and its sha256) and systemd's view of it before the procedure.
	Unit          string              `json:"unit,omitempty"`
	SystemdBefore *record.SystemdView `json:"systemd_before,omitempty"`
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

// RenderCompare rebuilds the compare report from the records in dir and
// writes report.json, report.md and report.html.
func RenderCompare(dir string) (*CompareReport, error) {
	c, err := BuildCompare(dir)
	if err != nil {
		return nil, err
	}
	if err := WriteCompareAll(dir, c); err != nil {
		return nil, fmt.Errorf("write compare report to %s: %w", dir, err)
	}
	return c, nil
}

// BuildCompare reads a compare run's records into its report; runs that
// have not happened (an interrupted compare) are left out.
func BuildCompare(dir string) (*CompareReport, error) {
	var rec CompareRecord
	if err := readJSONFile(filepath.Join(dir, CompareFile), &rec); err != nil {
		return nil, fmt.Errorf("read compare run %s: %w", dir, err)
	}
	c := &CompareReport{Schema: record.Schema, From: rec.From, To: rec.To, Broken: rec.Broken,
		Load: rec.Load, Procedures: []Procedure{}, Expect: rec.Expect, Repeat: rec.Repeat, InsecureArchive: rec.InsecureArchive}
	for _, run := range rec.Runs {
		sdir := filepath.Join(dir, run.Dir)
		if _, err := os.Stat(sdir); err != nil {
			continue
		}
		row, s, err := buildProcedure(sdir)
		if err != nil {
			return nil, err
		}
		holdToPlan(sdir, s, &row, run, rec.Expect)
		if row.Name == "" {
			row.Name, row.Build = run.Procedure, run.Build
		}
		row.Repeat = run.Repeat
		if rec.Expect != nil {
			judgeProcedure(&row, s, rec.Expect)
		}
		c.Procedures = append(c.Procedures, row)
	}
	if rec.Expect != nil || rec.Repeat > 1 {
		c.Summary = summarize(c.Procedures, rec.Expect)
	}
	if rec.Expect != nil {
		var verdicts []string
		for _, s := range c.Summary {
			verdicts = append(verdicts, s.Verdict)
		}
		// Runs planned but not recorded (an interrupted compare) leave the
		// gate without its evidence.
		if recorded := len(c.Procedures); recorded < len(rec.Runs) {
			verdicts = append(verdicts, record.VerdictError)
			c.Missing = len(rec.Runs) - recorded
		}
		v, counts := judge.Worst(verdicts)
		c.Verdict, c.Counts = v, &counts
	}
	return c, nil
}

// holdToPlan holds a compare run's record against the plan compare.json
// holds for it: the plan's digest, meta.json's (CheckPlan), and the row's
// procedure, build and expectation against compare.json's own. Each
// disagreement is a problem of the run (its row is error). A compare.json
// written before plans were is judged as before, with a note.
func holdToPlan(sdir string, s *record.Scenario, row *Procedure, run CompareRun, e *CompareExpect) {
	if run.Plan == nil {
		row.Notes = append(row.Notes, "compare.json holds no plan of this run (written before plans were): its meta.json and expectation could not be held against one")
		return
	}
	var meta record.Meta
	if err := record.ReadJSON(filepath.Join(sdir, record.MetaFile), &meta); err == nil {
		for _, p := range record.CheckPlan(run.Plan, meta, s.Steps) {
			s.AddProblem("%s", p)
		}
	}
	want := RowPlanOf(run.Procedure, run.Spec, run.Build, e)
	if got, _ := json.Marshal(run.Plan.Row); string(got) != string(mustJSON(want)) {
		s.AddProblem("compare.json's plan of %s says %s, its runs and expectation say %s", run.Dir, got, mustJSON(want))
	}
}

// RowPlanOf is a compare row's plan: its procedure and build, and what e
// wants of that build.
func RowPlanOf(procedure, spec, build string, e *CompareExpect) *record.RowPlan {
	r := &record.RowPlan{Procedure: procedure, Spec: spec, Build: build}
	if e != nil {
		if be, ok := e.Builds[build]; ok {
			r.Expect = &record.RowExpectation{Outcomes: be.Outcomes, Drops: be.Drops, NonZeroExit: be.NonZeroExit}
		}
	}
	return r
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// BuildProcedure reads one procedure×build directory into its row.
func BuildProcedure(sdir string) (Procedure, error) {
	row, _, err := buildProcedure(sdir)
	return row, err
}

func buildProcedure(sdir string) (Procedure, *record.Scenario, error) {
	s, _, err := BuildScenario(sdir)
	if err != nil {
		return Procedure{}, nil, err
	}
	var rec ProcedureRecord
	recErr := readJSONFile(filepath.Join(sdir, ProcedureFile), &rec)
	row := NewProcedure(rec.Procedure, s)
	row.Build, row.ExitCode, row.DurationMs = rec.Build, rec.ExitCode, rec.DurationMs
	row.Dir, row.TimedOut, row.BinaryOnDisk = filepath.Base(sdir), rec.TimedOut, rec.BinaryOnDisk
	row.Notes = append(row.Notes, rec.Notes...)
	row.Init, row.Unit, row.SystemdBefore = rec.Init, rec.Unit, rec.SystemdBefore
	if row.Init == "" {
		row.Init = record.InitDocker
	}
	if rec.TimedOut {
		row.Notes = append(row.Notes, fmt.Sprintf("the procedure hung: killed after its timeout of %s", words.FmtMs(rec.TimeoutMs)))
	}
	if recErr != nil {
		row.Error = strings.TrimSpace(strings.Join([]string{row.Error, recErr.Error()}, "; "))
	} else if rec.Error != "" {
		row.Error = rec.Error
	}
	var before proc.Snapshot
	readJSONFile(filepath.Join(sdir, ProcessesBefore), &before)
	var samples []MasterSample
	readJSONLFile(filepath.Join(sdir, MastersFile), func(m MasterSample) { samples = append(samples, m) })
	wentDown, evidence := RestartEvidence(before, samples, s.Timeline)
	row.Restart = evidence
	ran := recErr == nil && rec.Error == "" && s.Error == "" && s.Final != nil
	row.Outcome = OutcomeOf(s.Final, ran, wentDown)
	return row, s, nil
}

// RestartEvidence tells, from the masters sampled while the procedure ran
// and the requests that failed, whether the service went down and came
// back: a moment with no master followed by one, or a change of master
// that no USR2 explains (a USR2 always shows two masters at once, the new
// one a child of the old: a sample of the child with the old master as
// its parent shows both, even where the old one is no longer listed). It
// says what it saw, in words.
func RestartEvidence(before proc.Snapshot, samples []MasterSample, tl *record.Timeline) (bool, []string) {
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
	swapped := false
	prev := make([]SampledMaster, 0, len(before.Masters()))
	for _, m := range before.Masters() {
		prev = append(prev, SampledMaster{PID: m.PID, PPID: m.PPID})
	}
	for _, s := range samples {
		if len(s.Masters) == 0 {
			if downFrom < 0 {
				downFrom = s.Ms
			}
			prev = nil // the gap is the evidence
			continue
		}
		if downFrom >= 0 {
			wentDown = true
			w := fmt.Sprintf("no nginx master from %s to %s", words.FmtMs(downFrom), words.FmtMs(s.Ms))
			if n := failedBetween(tl, downFrom-MasterSampleMs, s.Ms); n > 0 {
				w += fmt.Sprintf(", %d requests failed meanwhile", n)
			}
			evidence = append(evidence, w)
			downFrom = -1
		}
		if len(s.Masters) >= 2 {
			sawTwo = true
		}
		for _, m := range s.Masters {
			// A master whose parent is a master known before: its parent
			// was alive when it was sampled (a master's child is given to
			// init the moment it exits), so two masters were, whether or
			// not a sample caught both. Measured beside a busy core: the
			// sampler ran every 0.4 s (1.4 s at worst), and the postinst's
			// USR2 child 299 was first seen with parent 40, 40 no longer
			// listed as a master.
			if m.PPID != m.PID && known[m.PPID] {
				sawTwo = true
			}
			if !known[m.PID] && !known[m.PPID] {
				foreign = append(foreign, fmt.Sprintf("master %d appeared at %s with parent %d, not a master", m.PID, words.FmtMs(s.Ms), m.PPID))
				// A master no master forked, while every master of the
				// sample before is gone: a stop and a start between two
				// samples, whatever USR2 came after.
				if len(prev) > 0 && !anyIn(prev, s.Masters) {
					wentDown, swapped = true, true
					evidence = append(evidence, fmt.Sprintf("the master changed from %d to %d between two samples (at %s), the new one with parent %d, not a master: a stop and a start, not a USR2",
						prev[0].PID, m.PID, words.FmtMs(s.Ms), m.PPID))
				}
			}
		}
		prev = s.Masters
		for _, m := range s.Masters {
			known[m.PID] = true
		}
		if len(s.Masters) == 1 {
			lastMaster = s.Masters[0].PID
		}
	}
	if !sawTwo && !swapped && firstMaster != 0 && lastMaster != 0 && lastMaster != firstMaster {
		wentDown = true
		e := fmt.Sprintf("the master changed from %d to %d with never two masters at once: not a USR2 upgrade", firstMaster, lastMaster)
		if len(foreign) > 0 {
			e += " (" + strings.Join(foreign, "; ") + ")"
		}
		evidence = append(evidence, e)
	}
	return wentDown, evidence
}

// anyIn tells whether one of the masters of a is in b.
func anyIn(a, b []SampledMaster) bool {
	for _, x := range a {
		for _, y := range b {
			if x.PID == y.PID {
				return true
			}
		}
	}
	return false
}

func failedBetween(tl *record.Timeline, from, to float64) int {
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
