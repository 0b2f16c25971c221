package reports

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// Files and folders of a matrix run directory.
const (
	MatrixFile = "matrix.json" // MatrixPlan: the whole matrix, and which cells this directory runs
	CellsDir   = "cells"       // DIR/cells/<cell id>/ is a run directory of its own
	CellFile   = "cell.json"   // CellRecord, in each cell's folder
)

// GateMatrix is the gate of a matrix report: every cell must pass.
const GateMatrix = "matrix"

// MatrixCell is one combination of a matrix: the builds, the configuration,
// the traffic, the faults and the scenarios one cell runs.
type MatrixCell struct {
	Index int    `json:"index"` // in the whole matrix's order, from 0
	ID    string `json:"id"`    // a slug of the combination: the cell's folder
	// Key names the combination with the builds by their place in the
	// matrix file (from#1, to#2) instead of their spec, so that runs of the
	// same matrix over successive builds line up (report trend).
	Key          string   `json:"key"`
	From         string   `json:"from"`
	To           string   `json:"to"`
	Config       string   `json:"config"`                  // the configuration's name ("default": the harness's own)
	ConfigPath   string   `json:"config_path,omitempty"`   // as the matrix file gives it
	ConfigSHA256 string   `json:"config_sha256,omitempty"` // of the file's content
	Traffic      []string `json:"traffic"`
	Faults       []string `json:"faults"` // empty: no fault
	Scenarios    []string `json:"scenarios"`
}

// Shard is one of N slices of a matrix (--shard I/N): the cells whose
// index is I-1 modulo N.
type Shard struct {
	Index int `json:"index"` // from 1
	Count int `json:"count"`
}

// Owns tells whether the shard runs the cell of index i.
func (s *Shard) Owns(i int) bool { return s == nil || i%s.Count == s.Index-1 }

func (s *Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// MatrixPlan is DIR/matrix.json: the whole matrix as the file defined it,
// and the cells this directory was to run — a shard's, or all of them — so
// that a cell that never ran is told from one the matrix excludes.
type MatrixPlan struct {
	Schema int    `json:"schema"`
	File   string `json:"file"` // the matrix file, as given
	// Digest identifies the matrix (its cells, their configurations' content
	// and the load): shards are merged only when theirs agree.
	Digest   string       `json:"digest"`
	Load     record.Load  `json:"load"`
	Cells    []MatrixCell `json:"cells"`
	Excluded []string     `json:"excluded"` // combinations the file's exclude list removed, by id
	Shard    *Shard       `json:"shard"`    // null: the whole matrix
	Run      []string     `json:"run"`      // ids of the cells this directory runs
	// MergedFrom are the shard directories `report merge` took the cells from.
	MergedFrom []string `json:"merged_from,omitempty"`
	Engines    []string `json:"engines,omitempty"` // the Docker engines the cells were spread over

	// InsecureArchive: the builds were resolved with --insecure-archive.
	InsecureArchive bool `json:"insecure_archive,omitempty"`
}

// CellRecord is DIR/cells/<id>/cell.json: where and when a cell ran.
type CellRecord struct {
	ID        string   `json:"id"`
	Engine    string   `json:"engine"`
	Start     string   `json:"start"`      // RFC 3339
	DurationS *float64 `json:"duration_s"` // null: the cell did not finish
	Error     string   `json:"error,omitempty"`
	// Finding is nginx's own refusal that ended the cell before any
	// scenario: a new build that rejects the configuration tree the old
	// build serves ([emerg] …). A cell with a finding fails.
	Finding string `json:"finding,omitempty"`
	// NotRun are the scenarios of the cell its configuration cannot prove
	// ("NAME: why"), left out before it started and named.
	NotRun []string `json:"not_run,omitempty"`
}

// MatrixReport is a matrix directory's report.json: a row per cell, each
// verdict recomputed from the cell's records.
type MatrixReport struct {
	Schema int `json:"schema"`

	// InsecureArchive: the builds were resolved with --insecure-archive
	// (absent otherwise); each cell's own report says it too.
	InsecureArchive bool `json:"insecure_archive,omitempty"`

	Kind    string        `json:"kind"` // "matrix"
	Verdict string        `json:"verdict"`
	Counts  record.Counts `json:"counts"`
	Gate    string        `json:"gate"`
	Matrix  MatrixInfo    `json:"matrix"`
	Load    record.Load   `json:"load"`
	// Provenance is the run's (DIR/provenance.json: tool, command line,
	// start, duration, kernel, Docker); null when not recorded — a merged
	// report's shards each keep their own.
	Provenance *record.Provenance `json:"provenance"`
	Cells      []CellResult       `json:"cells"`
}

// MatrixInfo says which matrix, and which part of it, a report covers.
type MatrixInfo struct {
	File       string   `json:"file"`
	Digest     string   `json:"digest"`
	Cells      int      `json:"cells"` // in the whole matrix
	Excluded   int      `json:"excluded"`
	Shard      *Shard   `json:"shard"`
	MergedFrom []string `json:"merged_from,omitempty"`
	Engines    []string `json:"engines,omitempty"`
	DurationS  *float64 `json:"duration_s"` // sum of the cells' durations
}

// CellResult is one cell's row: its combination and what its records say.
type CellResult struct {
	MatrixCell
	Verdict   string         `json:"verdict"`
	Reasons   []string       `json:"reasons"`
	Dropped   int            `json:"dropped"`
	Requests  int            `json:"requests"`
	StallMs   *float64       `json:"stall_ms"`   // the longest stall of its scenarios; null: nothing measured
	DurationS *float64       `json:"duration_s"` // null: not recorded
	Engine    string         `json:"engine,omitempty"`
	Report    string         `json:"report,omitempty"` // the cell's report.md, relative to the matrix directory
	Error     string         `json:"error,omitempty"`  // why the cell has no measurement
	Scenarios []CellScenario `json:"scenarios"`
	// NotRun are the scenarios its configuration cannot prove, each with
	// why (a configuration tree without long downloads, say).
	NotRun []string `json:"not_run,omitempty"`
}

// CellScenario is one scenario of a cell.
type CellScenario struct {
	Name    string   `json:"name"`
	Verdict string   `json:"verdict"`
	Dropped int      `json:"dropped"`
	StallMs float64  `json:"stall_ms"`
	Reasons []string `json:"reasons"`
}

// Causes of an error cell that has no records.
const (
	NotRunInterrupted = "not run: the run ended before this cell started (interrupted, or no engine left that answers)"
	NotRunByShard     = "not run by any shard"
	NotFinished       = "running: the cell has not finished"
)

// ReadMatrixPlan reads DIR/matrix.json; ok is false when dir has none.
func ReadMatrixPlan(dir string) (plan *MatrixPlan, ok bool, err error) {
	var p MatrixPlan
	if err := record.ReadJSON(filepath.Join(dir, MatrixFile), &p); err != nil {
		if errors.Is(err, record.ErrMissing) {
			return nil, false, nil
		}
		return nil, true, fmt.Errorf("read matrix plan: %w", err)
	}
	return &p, true, nil
}

// IsMatrixDir tells whether dir is a matrix run (it holds matrix.json).
func IsMatrixDir(dir string) bool { return record.Exists(filepath.Join(dir, MatrixFile)) }

// CellDir is where cell id keeps its records.
func CellDir(dir, id string) string { return filepath.Join(dir, CellsDir, id) }

// MatrixOptions change how a matrix report is built.
type MatrixOptions struct {
	// Finished leaves out of the reading the cells still running (no
	// duration in cell.json yet): their records are being written.
	Finished bool
	// Write re-renders each cell's own report (its report.json, .md and
	// .html: the drill-down) while reading it.
	Write bool
}

// BuildMatrix reads a matrix directory: each cell this directory runs is
// rebuilt from its records (its verdict recomputed, never copied); a cell
// with no records is an error naming why.
func BuildMatrix(dir string, opt MatrixOptions) (*MatrixReport, error) {
	plan, ok, err := ReadMatrixPlan(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: not a matrix directory (no %s)", dir, MatrixFile)
	}
	missing := NotRunInterrupted
	if len(plan.MergedFrom) > 0 {
		missing = NotRunByShard
	}
	run := map[string]bool{}
	for _, id := range plan.Run {
		run[id] = true
	}
	r := &MatrixReport{Schema: record.Schema, Kind: "matrix", Gate: GateMatrix, Load: plan.Load, Cells: []CellResult{},
		Matrix: MatrixInfo{File: plan.File, Digest: plan.Digest, Cells: len(plan.Cells), Excluded: len(plan.Excluded),
			Shard: plan.Shard, MergedFrom: plan.MergedFrom, Engines: plan.Engines}, InsecureArchive: plan.InsecureArchive}
	var prov record.Provenance
	if err := record.ReadJSON(filepath.Join(dir, record.ProvenanceFile), &prov); err == nil {
		r.Provenance = &prov
	}
	var verdicts []string
	var total float64
	timed := false
	for _, c := range plan.Cells {
		if !run[c.ID] {
			continue
		}
		cr := buildCell(dir, c, missing, plan.InsecureArchive, opt)
		if cr.DurationS != nil {
			total += *cr.DurationS
			timed = true
		}
		verdicts = append(verdicts, cr.Verdict)
		r.Cells = append(r.Cells, cr)
	}
	if timed {
		r.Matrix.DurationS = &total
	}
	r.Verdict, r.Counts = judge.Worst(verdicts)
	return r, nil
}

func buildCell(dir string, c MatrixCell, missing string, insecure bool, opt MatrixOptions) CellResult {
	cr := CellResult{MatrixCell: c, Reasons: []string{}, Scenarios: []CellScenario{}}
	cdir := CellDir(dir, c.ID)
	fail := func(cause string) CellResult {
		cr.Verdict, cr.Error = record.VerdictError, cause
		cr.Reasons = append(cr.Reasons, cause)
		return cr
	}
	if _, err := os.Stat(cdir); err != nil {
		return fail(missing)
	}
	var rec CellRecord
	if err := record.ReadJSON(filepath.Join(cdir, CellFile), &rec); err == nil {
		cr.Engine, cr.DurationS, cr.NotRun = rec.Engine, rec.DurationS, rec.NotRun
		if rec.DurationS == nil && opt.Finished {
			return fail(NotFinished)
		}
	}
	if rec.Finding != "" {
		// nginx refused before any scenario: the finding is the record.
		cr.Verdict = record.VerdictFail
		cr.Reasons = append(cr.Reasons, rec.Finding)
		return cr
	}
	notRun := map[string]bool{}
	for _, nr := range rec.NotRun {
		name, _, _ := strings.Cut(nr, ":")
		notRun[name] = true
	}
	build := func(cdir string) (*record.Report, error) {
		r, err := BuildRun(cdir)
		if err != nil {
			return nil, err
		}
		r.InsecureArchive = insecure
		if opt.Write {
			if err := render.WriteAll(cdir, r); err != nil {
				return nil, fmt.Errorf("write report to %s: %w", cdir, err)
			}
		}
		return r, nil
	}
	allNotRun := len(c.Scenarios) > 0
	for _, name := range c.Scenarios {
		allNotRun = allNotRun && notRun[name]
	}
	if allNotRun {
		// Nothing was measured: the combination cannot be proven here.
		return fail("not run against this configuration: " + strings.Join(rec.NotRun, "; ") +
			" (exclude the combination in the matrix file)")
	}
	rr, err := build(cdir)
	if err != nil {
		if rec.Error != "" {
			return fail(rec.Error)
		}
		return fail(OneLineErr(err))
	}
	cr.Report = filepath.ToSlash(filepath.Join(CellsDir, c.ID, record.ReportMarkdown))
	cr.Verdict = rr.Verdict
	var stall *float64
	for _, s := range rr.Scenarios {
		cr.Dropped += s.Dropped
		cr.Requests += s.Requests.Total
		if s.Ended || s.Requests.Total > 0 {
			if stall == nil || s.Stall.Ms > *stall {
				v := s.Stall.Ms
				stall = &v
			}
		}
		cs := CellScenario{Name: s.Name, Verdict: s.Verdict, Dropped: s.Dropped, StallMs: s.Stall.Ms, Reasons: s.Reasons}
		if cs.Reasons == nil {
			cs.Reasons = []string{}
		}
		cr.Scenarios = append(cr.Scenarios, cs)
		for _, reason := range s.Reasons {
			cr.Reasons = append(cr.Reasons, s.Name+": "+reason)
		}
		if s.Error != "" && cr.Error == "" {
			cr.Error = s.Error
		}
	}
	cr.StallMs = stall
	// A scenario the cell was to run and that left no folder at all.
	have := map[string]bool{}
	for _, s := range rr.Scenarios {
		have[s.Name] = true
	}
	for _, name := range c.Scenarios {
		if !have[name] && !haveFaulted(have, name) && !notRun[name] {
			cr.Verdict = record.VerdictError
			cr.Reasons = append(cr.Reasons, name+": no record (the cell ended before it ran)")
		}
	}
	if rec.Error != "" && cr.Error == "" {
		cr.Error = rec.Error
	}
	return cr
}

// haveFaulted tells whether a scenario ran under a fault-extended name
// (upgrade+kill-new-worker).
func haveFaulted(have map[string]bool, name string) bool {
	for n := range have {
		if strings.HasPrefix(n, name+"+") {
			return true
		}
	}
	return false
}

// OneLineErr is an error's message on one line.
func OneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// CellRecordStart writes a cell's cell.json as it starts.
func CellRecordStart(cdir, id, engine string, start time.Time) error {
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	return writeJSONAtomic(filepath.Join(cdir, CellFile), CellRecord{ID: id, Engine: engine, Start: start.UTC().Format(time.RFC3339Nano)})
}

// CellRecordEnd rewrites a cell's cell.json with its duration and, when it
// could not run, why.
func CellRecordEnd(cdir, id, engine string, start time.Time, cause string) error {
	return CellRecordEndWith(cdir, CellRecord{ID: id, Engine: engine, Error: cause}, start)
}

// CellRecordEndWith writes DIR/cell.json at the end of a cell: rec (its
// id, engine, error, finding, scenarios not run) with its start and
// duration.
func CellRecordEndWith(cdir string, rec CellRecord, start time.Time) error {
	d := time.Since(start).Seconds()
	rec.Start, rec.DurationS = start.UTC().Format(time.RFC3339Nano), &d
	return writeJSONAtomic(filepath.Join(cdir, CellFile), rec)
}

// WriteMatrixPlan writes DIR/matrix.json.
func WriteMatrixPlan(dir string, p *MatrixPlan) error {
	return writeJSONAtomic(filepath.Join(dir, MatrixFile), p)
}

func writeJSONAtomic(path string, v any) error {
	return record.WriteFileAtomic(path, func(w io.Writer) error { return record.WriteIndentedJSON(w, v) })
}
