package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// BuildRun builds a run directory's report: one run of each scenario, or,
// when DIR/run.json plans repeats or a baseline, every repeat of every pair,
// their aggregates and the comparison; with the provenance when recorded.
// Every verdict is recomputed from the records.
func BuildRun(dir string) (*record.Report, error) {
	var plan *record.RunPlan
	var p record.RunPlan
	if err := record.ReadJSON(filepath.Join(dir, record.PlanFile), &p); err == nil {
		plan = &p
	} else if !errors.Is(err, record.ErrMissing) {
		return nil, fmt.Errorf("read run plan: %w", err)
	}
	var r *record.Report
	if plan == nil || !plan.Layout() {
		var err error
		if r, err = build(dir, plan); err != nil {
			return nil, err
		}
		for i := range r.Scenarios {
			r.Scenarios[i].Pair = ""
		}
		r.Repeat = 1
	} else {
		r = &record.Report{Schema: record.Schema, From: plan.From, To: plan.To, Repeat: plan.Repeat, Scenarios: []record.Scenario{}}
		cand, err := buildRepeats(dir, record.PairCandidate, plan)
		if err != nil {
			return nil, err
		}
		r.Scenarios = cand
		if plan.Baseline != "" {
			base, err := buildRepeats(dir, record.PairBaseline, plan)
			if err != nil {
				return nil, err
			}
			r.Baseline = &record.Baseline{From: plan.From, To: plan.Baseline, Scenarios: base}
		}
		for _, s := range append(append([]record.Scenario{}, r.Scenarios...), record.BaselineScenarios(r)...) {
			if r.Site == nil && s.Site != nil {
				r.Site = s.Site
			}
		}
		for _, s := range append(append([]record.Scenario{}, r.Scenarios...), record.BaselineScenarios(r)...) {
			if s.Load.Rate != 0 || s.Load.Method != "" || len(s.Load.Traffic) > 0 {
				r.Load = s.Load
				break
			}
		}
		if len(r.Scenarios) == 0 && (r.Baseline == nil || len(r.Baseline.Scenarios) == 0) {
			return nil, fmt.Errorf("read run directory %s: run.json plans %d repeats but no repeat folder holds a scenario", dir, plan.Repeat)
		}
	}
	var prov record.Provenance
	if err := record.ReadJSON(filepath.Join(dir, record.ProvenanceFile), &prov); err == nil {
		r.Provenance = &prov
	} else if !errors.Is(err, record.ErrMissing) {
		return nil, fmt.Errorf("read provenance: %w", err)
	}
	if plan != nil {
		r.InsecureArchive = plan.InsecureArchive
	}
	judge.Run(r, plan)
	return r, nil
}

// buildRepeats reads DIR/<pair>/1 … DIR/<pair>/n; a repeat that never ran
// has no folder and is missing from the result (the aggregate says so).
func buildRepeats(dir, pair string, plan *record.RunPlan) ([]record.Scenario, error) {
	out := []record.Scenario{}
	for k := 1; k <= plan.Repeat; k++ {
		sub := record.RepeatDir(dir, pair, k)
		if _, err := os.Stat(sub); err != nil {
			continue
		}
		rr, err := build(sub, plan)
		if err != nil {
			if strings.Contains(err.Error(), "no scenario directory") {
				continue
			}
			return nil, err
		}
		for _, s := range rr.Scenarios {
			s.Pair, s.Repeat = pair, k
			out = append(out, s)
		}
	}
	return out, nil
}

// Render rebuilds report.json, report.md and report.html from the records in dir.
func Render(dir string) (*record.Report, error) {
	r, err := BuildRun(dir)
	if err != nil {
		return nil, fmt.Errorf("build report from %s: %w", dir, err)
	}
	if err := render.WriteAll(dir, r); err != nil {
		return nil, fmt.Errorf("write report to %s: %w", dir, err)
	}
	return r, nil
}
