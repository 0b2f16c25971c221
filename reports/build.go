package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
func Build(dir string) (*record.Report, error) { return build(dir, nil) }

// build is Build with the run's plan (run.json; nil: none was read), which
// every scenario's record is held against.
func build(dir string, plan *record.RunPlan) (*record.Report, error) {
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
		s, meta, err := buildScenario(filepath.Join(dir, e.Name()), plan)
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

// startMaster is the one master of the first process table the run took
// (0: none, or more than one).
func startMaster(dir string, s *record.Scenario) int {
	samples := analysis.ReadSamples(dir, s, func(string, ...any) {})
	if len(samples) == 0 || samples[0].At != "start" {
		return 0
	}
	master := 0
	for _, p := range samples[0].Procs {
		if p.Role == "master" {
			if master != 0 {
				return 0
			}
			master = p.PID
		}
	}
	return master
}

func isScenarioDir(dir string) bool {
	for _, f := range []string{record.MetaFile, record.EventsFile, loadgen.ResultsFile, record.ErrorFile} {
		if record.Exists(filepath.Join(dir, f)) {
			return true
		}
	}
	return false
}

// BuildScenario reads one scenario directory, measures it and judges it.
// The error is only for what no report can be made of (an unreadable
// directory); the Meta is nil when meta.json could not be read.
func BuildScenario(dir string) (*record.Scenario, *record.Meta, error) {
	return buildScenario(dir, nil)
}

func buildScenario(dir string, plan *record.RunPlan) (*record.Scenario, *record.Meta, error) {
	s, files, err := record.ReadScenario(dir)
	if err != nil {
		return nil, nil, err
	}
	if files.Meta != nil {
		judge.Plan(s, *files.Meta, plan)
	}
	if files.Meta != nil {
		s.Thresholds = judge.Thresholds(files.Meta)
	}
	if s.Final != nil && s.Final.Processes != nil {
		judge.Final(s.Final)
	}
	if s.Final != nil && files.Meta != nil {
		// A compare procedure's end is judged by its row (no planned steps).
		if note := judge.Recheck(s.Final, files.Meta.FinalWant, startMaster(dir, s)); note != "" && files.Meta.PlannedSteps != nil {
			s.AddNote("%s", note)
		}
	}
	keepsWitness := files.Start != nil && judge.WitnessRequired(dir, s, files.Meta)
	analysis.Measure(dir, s, files, keepsWitness)
	v := judge.Scenario(s)
	s.Verdict, s.Reasons = v.Verdict, v.Reasons
	return s, files.Meta, nil
}
