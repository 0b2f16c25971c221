package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Build reads every scenario directory under dir (a run directory) and
// returns the report, scenarios ordered by their start. A scenario whose
// files are missing or cut short still gets its entry, with verdict error
// and the reason; only an unreadable dir, or one with no scenario in it, is
// an error.
func Build(dir string) (*record.Report, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read run directory: %w", err)
	}
	type built struct {
		s     record.Scenario
		meta  *record.Meta
		start time.Time
	}
	var all []built
	for _, e := range entries {
		if !e.IsDir() || !isScenarioDir(filepath.Join(dir, e.Name())) {
			continue
		}
		s, meta, err := BuildScenario(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		b := built{s: *s, meta: meta}
		if meta != nil {
			b.start, _ = time.Parse(time.RFC3339Nano, meta.StartWall)
		}
		all = append(all, b)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("read run directory %s: no scenario directory in it (none holds %s, %s, %s or %s)",
			dir, record.MetaFile, record.EventsFile, loadgen.ResultsFile, record.ErrorFile)
	}
	// Scenarios in the order they ran; those without a start last, by name.
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.start.IsZero() != b.start.IsZero() {
			return !a.start.IsZero()
		}
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.s.Name < b.s.Name
	})
	r := &record.Report{Schema: record.Schema, Scenarios: make([]record.Scenario, 0, len(all))}
	for _, b := range all {
		if b.meta != nil && r.From == "" && r.To == "" {
			r.From, r.To, r.Load = b.meta.From, b.meta.To, b.meta.Load
			r.FromBuild, r.ToBuild = b.meta.FromBuild, b.meta.ToBuild
		}
		if r.Site == nil && b.s.Site != nil {
			r.Site = b.s.Site
		}
		r.Scenarios = append(r.Scenarios, b.s)
	}
	r.Repeat = 1
	judge.Run(r, nil)
	return r, nil
}

func isScenarioDir(dir string) bool {
	for _, f := range []string{record.MetaFile, record.EventsFile, loadgen.ResultsFile, record.ErrorFile} {
		if record.Exists(filepath.Join(dir, f)) {
			return true
		}
	}
	return false
}

// BuildScenario reads one scenario directory and judges it. The error is
// only for what no report can be made of (an unreadable directory); the
// Meta is nil when meta.json could not be read.
func BuildScenario(dir string) (*record.Scenario, *record.Meta, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("read scenario %s: %w", dir, err)
	}
	s := &record.Scenario{
		Name:     filepath.Base(dir),
		Reasons:  []string{},
		Steps:    []record.Step{},
		Phases:   []record.Phase{},
		Failures: []record.Failure{},
		Drops:    []string{},
		Problems: []string{},
		Traffic:  []record.TrafficRow{},
	}
	// A file is read by several readers: a bad one is said once.
	problem := func(format string, args ...any) {
		if p := fmt.Sprintf(format, args...); !slices.Contains(s.Problems, p) {
			s.Problems = append(s.Problems, p)
		}
	}
	note := func(format string, args ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, args...)) }
	path := func(name string) string { return filepath.Join(dir, name) }

	if record.Exists(path(record.ErrorFile)) {
		line, err := record.ReadFirstLine(path(record.ErrorFile))
		if err != nil {
			line = fmt.Sprintf("(%s unreadable: %v)", record.ErrorFile, err)
		}
		s.Error = line
	}

	var meta *record.Meta
	var m record.Meta
	if err := record.ReadJSON(path(record.MetaFile), &m); err != nil {
		problem("%v: the run's clock and expectation are unknown", err)
	} else {
		meta = &m
		if m.Scenario != "" {
			s.Name = m.Scenario
		}
		s.Expect, s.Load, s.LoadPath, s.StartWall = m.Expect, m.Load, m.LoadPath, m.StartWall
		s.SteadyMs, s.PlannedSteps, s.MaxStallMs, s.ExpectDrops = m.SteadyMs, m.PlannedSteps, m.MaxStallMs, m.ExpectDrops
		s.KnownLosses, s.Strict = m.KnownLosses, m.Strict
		s.Notes = append(s.Notes, m.Notes...)
		s.Site = m.Site
		s.From, s.To, s.Thresholds = m.From, m.To, judge.Thresholds(&m)
		s.FromBuild, s.ToBuild = m.FromBuild, m.ToBuild
	}

	var events []record.Event
	if err := record.ReadJSONL(path(record.EventsFile), func(e *record.Event) { events = append(events, *e) }); err != nil {
		problem("%v", err)
	}
	// Steps are appended as they end; the clock orders them.
	sort.SliceStable(events, func(i, j int) bool { return events[i].SentMs < events[j].SentMs })
	for _, e := range events {
		phase := e.Phase
		if phase == "" {
			phase = e.Name
		}
		s.Steps = append(s.Steps, record.Step{
			Name: e.Name, Signal: e.Signal, PID: e.PID, PIDs: e.PIDs, SentMs: e.SentMs, VerifiedMs: e.VerifiedMs,
			Verified: e.Verified, Error: e.Error, Expected: e.Expected, ExpectedCause: e.ExpectedCause,
			Phase: phase, LogLines: e.LogLines,
		})
	}
	// A run stops at a step that failed unexpectedly: the steps after it
	// were never meant to run then.
	stoppedAtFailure := len(s.Steps) > 0 && !s.Steps[len(s.Steps)-1].Verified && s.Steps[len(s.Steps)-1].Expected != record.ExpectFail
	if meta != nil && meta.PlannedSteps != nil && len(events) < len(meta.PlannedSteps) && s.Error == "" && !stoppedAtFailure {
		var missing []string
		for _, ps := range meta.PlannedSteps[len(events):] {
			missing = append(missing, ps.Name)
		}
		problem("%d of %d planned steps recorded: %s never ran", len(events), len(meta.PlannedSteps), strings.Join(missing, ", "))
	}

	var final record.Final
	switch err := record.ReadJSON(path(record.FinalFile), &final); {
	case err == nil:
		s.Final = &final
	case errors.Is(err, record.ErrMissing):
		if s.Error == "" {
			problem("%s missing: the final state was never read, so nothing can be said of what nginx was left in", record.FinalFile)
		}
	default:
		problem("%v", err)
	}

	s.Faults = []record.FaultRecord{}
	byName := map[string]int{}
	switch err := record.ReadJSONL(path(record.FaultsFile), func(f *record.FaultRecord) {
		if i, ok := byName[f.Name+"@"+f.Step]; ok {
			s.Faults[i] = *f
			return
		}
		byName[f.Name+"@"+f.Step] = len(s.Faults)
		s.Faults = append(s.Faults, *f)
	}); {
	case err == nil, errors.Is(err, record.ErrMissing):
	default:
		problem("%v", err)
	}
	for _, f := range s.Faults {
		if f.Error != "" {
			problem("fault %s could not be injected or healed: %s", f.Name, f.Error)
		}
	}

	var end record.End
	switch err := record.ReadJSON(path(record.EndFile), &end); {
	case err == nil:
		s.Ended = true
	case errors.Is(err, record.ErrMissing):
		if s.Error == "" {
			problem("no end-of-run marker (%s): the run was killed or interrupted before it finished, whatever its files hold", record.EndFile)
		}
	default:
		problem("%v", err)
	}

	phases := analysis.NewPhaseSet(s.Steps)
	tl := analysis.NewTimelineAcc()
	acc := &analysis.ResultsAcc{Phases: phases, Timeline: tl}
	keepsWitness := false
	if meta != nil {
		start, err := time.Parse(time.RFC3339Nano, meta.StartWall)
		if err != nil {
			problem("meta.json start_wall %q: %v", meta.StartWall, err)
		} else {
			acc.Start = start
			keepsWitness = judge.WitnessRequired(dir, s, meta, problem, note)
			if keepsWitness || record.Exists(path(record.WitnessFile)) {
				acc.Witness = &analysis.WitnessAcc{}
			}
			bounds := analysis.ResultBounds{EndMs: end.EndMs, HaveEnd: s.Ended}
			analysis.ReadResults(path(loadgen.ResultsFile), acc, bounds, problem)
			analysis.ReadSideRecords(dir, s, meta, phases, tl, problem, note)
			analysis.ReadObserver(dir, s, meta, problem, note)
			analysis.ReadTraffic(dir, s, meta, phases, acc, problem)
			analysis.ReadTargets(dir, s, meta, acc, problem)
			if acc.Witness != nil {
				acc.Witness.ReadSideClients(dir, meta, problem)
			}
			s.LongConnections = analysis.ReadLongConnections(dir, s, meta, phases, problem)
		}
	}

	analysis.FinishScenario(s, acc, phases, tl)
	if meta != nil && !acc.Start.IsZero() {
		w := acc.Witness
		if w == nil {
			w = &analysis.WitnessAcc{}
		}
		analysis.ApplyWitness(dir, s, w, acc.Start, keepsWitness, problem)
	}
	s.Verdict, s.Reasons = judge.Scenario(s)
	return s, meta, nil
}
