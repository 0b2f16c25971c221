package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Files at the top of a run directory, written by the CLI before any
// scenario starts.
const (
	PlanFile       = "run.json"        // RunPlan: repeats and the baseline pair
	ProvenanceFile = "provenance.json" // Provenance
)

// Pair names of a run with repeats or a baseline: its records are in
// DIR/<pair>/<repeat>/<scenario>/.
const (
	PairCandidate = "candidate"
	PairBaseline  = "baseline"
)

// RunPlan is DIR/run.json: what a run meant to do, so that `report DIR`
// knows where to look and what is missing. A run without it is one run of
// each scenario, with its records in DIR/<scenario>/.
type RunPlan struct {
	Repeat    int      `json:"repeat"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Baseline  string   `json:"baseline,omitempty"` // the build the baseline pair upgrades --from to
	Scenarios []string `json:"scenarios"`
	// CandidateOnly are the scenarios run on the candidate side only: their
	// pair does not involve --to (broken-build), so a baseline says nothing.
	CandidateOnly []string `json:"candidate_only,omitempty"`
	Alpha         float64  `json:"alpha"`

	// InsecureArchive: the builds were resolved with --insecure-archive.
	InsecureArchive bool `json:"insecure_archive,omitempty"`
}

// Layout says whether the plan's records are in DIR/<pair>/<repeat>/.
func (p RunPlan) Layout() bool { return p.Repeat > 1 || p.Baseline != "" }

// RepeatDir is where repeat k (from 1) of pair puts its scenario folders.
func RepeatDir(dir, pair string, k int) string { return filepath.Join(dir, pair, strconv.Itoa(k)) }

// Provenance is what a run was, for whoever reads its report later.
type Provenance struct {
	Tool         Tool              `json:"tool"`
	CommandLine  []string          `json:"command_line"`
	Start        string            `json:"start"`      // RFC 3339
	DurationS    *float64          `json:"duration_s"` // null: the run did not finish
	Kernel       string            `json:"kernel"`
	Docker       *string           `json:"docker"` // the engine's version
	Images       []ImageProvenance `json:"images"`
	Builds       []BuildRef        `json:"builds"`      // each spec the run named and what it resolved to
	ConfigFile   *string           `json:"config_file"` // null: the harness's own
	ConfigSHA256 string            `json:"config_sha256"`
}

// Tool is this tool's version and commit.
type Tool struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// ImageProvenance is one pair image and the two binaries in it.
type ImageProvenance struct {
	From string          `json:"from"`
	To   string          `json:"to"`
	Ref  string          `json:"ref"`
	ID   string          `json:"id"`
	Old  *BinaryIdentity `json:"old"` // null: could not be read
	New  *BinaryIdentity `json:"new"`
}

// BinaryIdentity is an nginx executable: where it is, its SHA-256 and what
// `nginx -V` says of it.
type BinaryIdentity struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	V      string `json:"nginx_v"`
}

// Aggregate sums one scenario's runs on one pair.
type Aggregate struct {
	Scenario string `json:"scenario"`
	Pair     string `json:"pair"`
	From     string `json:"from"`
	To       string `json:"to"`
	Runs     int    `json:"runs"`
	Planned  int    `json:"planned"`
	Counts   Counts `json:"counts"` // each run's own verdict
	Requests int    `json:"requests"`
	Dropped  int    `json:"dropped"`
	// DropsPer10k is Dropped per 10,000 requests, pooled over the runs, with
	// its 95% Wilson score interval (null without a request), widened by
	// Dispersion: how much more the runs' drop counts vary than a Poisson
	// process's (Pearson's χ² per degree of freedom, at least 1; null with
	// fewer than 2 runs). The counts are divided by it — drops that come in
	// clusters are worth fewer independent observations.
	DropsPer10k *float64  `json:"drops_per_10k"`
	CI95        *Interval `json:"ci95_per_10k"`
	Dispersion  *float64  `json:"dispersion"`
	// PerRun are each run's figures, to see the spread the pooled rate hides.
	PerRun []RunFigures `json:"per_run"`
	// StallMs is the spread of each run's longest stall (null without a run).
	StallMs *Spread `json:"stall_ms"`
}

// Interval is a confidence interval.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Spread is the minimum, median and maximum of a figure over runs.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// RunFigures are one run's figures in an Aggregate.
type RunFigures struct {
	Repeat   int     `json:"repeat"`
	Verdict  string  `json:"verdict"`
	Requests int     `json:"requests"`
	Dropped  int     `json:"dropped"`
	StallMs  float64 `json:"stall_ms"`
}

// Comparison judges one scenario's candidate runs against its baseline runs.
type Comparison struct {
	Scenario string   `json:"scenario"`
	Verdict  string   `json:"verdict"`
	Reasons  []string `json:"reasons"`
	// Test names the test the verdict rests on; "own-verdicts" for a scenario
	// judged by its runs' own verdicts (a positive control, or one whose pair
	// does not involve the candidate build).
	Test      string     `json:"test"`
	Candidate *Aggregate `json:"candidate"`
	Baseline  *Aggregate `json:"baseline"`
	PValue    *float64   `json:"p_value"` // one-sided: the candidate drops more (or fails more often)
	Alpha     *float64   `json:"alpha"`
	// Dispersion is the between-run dispersion of both pairs' drop counts
	// the rate test divided the counts by (1: runs as alike as Poisson).
	Dispersion *float64 `json:"dispersion"`
	RateRatio  *float64 `json:"rate_ratio"` // candidate's rate / baseline's (null when the baseline's is 0)
}

// Tests a comparison can rest on.
const (
	TestExactRate   = "one-sided exact conditional test of two Poisson rates, counts divided by the between-run dispersion"
	TestFailRate    = "one-sided Fisher exact test on how many runs failed their own verdict"
	TestOwnVerdicts = "own-verdicts"
)

// BuildRun builds a run directory's report: one run of each scenario, or,
// when DIR/run.json plans repeats or a baseline, every repeat of every pair,
// their aggregates and the comparison; with the provenance when recorded.
// Every verdict is recomputed from the records.
func BuildRun(dir string) (*Report, error) {
	var plan *RunPlan
	var p RunPlan
	if err := readJSON(filepath.Join(dir, PlanFile), &p); err == nil {
		plan = &p
	} else if !errors.Is(err, errMissing) {
		return nil, fmt.Errorf("read run plan: %w", err)
	}
	var r *Report
	if plan == nil || !plan.Layout() {
		var err error
		if r, err = Build(dir); err != nil {
			return nil, err
		}
		for i := range r.Scenarios {
			r.Scenarios[i].Pair = ""
		}
		r.Repeat = 1
	} else {
		r = &Report{Schema: Schema, From: plan.From, To: plan.To, Repeat: plan.Repeat, Scenarios: []Scenario{}}
		cand, err := buildRepeats(dir, PairCandidate, plan.Repeat)
		if err != nil {
			return nil, err
		}
		r.Scenarios = cand
		if plan.Baseline != "" {
			base, err := buildRepeats(dir, PairBaseline, plan.Repeat)
			if err != nil {
				return nil, err
			}
			r.Baseline = &Baseline{From: plan.From, To: plan.Baseline, Scenarios: base}
		}
		for _, s := range append(append([]Scenario{}, r.Scenarios...), baselineScenarios(r)...) {
			if r.Site == nil && s.Site != nil {
				r.Site = s.Site
			}
		}
		for _, s := range append(append([]Scenario{}, r.Scenarios...), baselineScenarios(r)...) {
			if s.Load.Rate != 0 || s.Load.Method != "" || len(s.Load.Traffic) > 0 {
				r.Load = s.Load
				break
			}
		}
		if len(r.Scenarios) == 0 && (r.Baseline == nil || len(r.Baseline.Scenarios) == 0) {
			return nil, fmt.Errorf("read run directory %s: run.json plans %d repeats but no repeat folder holds a scenario", dir, plan.Repeat)
		}
	}
	var prov Provenance
	if err := readJSON(filepath.Join(dir, ProvenanceFile), &prov); err == nil {
		r.Provenance = &prov
	} else if !errors.Is(err, errMissing) {
		return nil, fmt.Errorf("read provenance: %w", err)
	}
	if plan != nil {
		r.InsecureArchive = plan.InsecureArchive
	}
	judgeRun(r, plan)
	return r, nil
}

func baselineScenarios(r *Report) []Scenario {
	if r.Baseline == nil {
		return nil
	}
	return r.Baseline.Scenarios
}

// buildRepeats reads DIR/<pair>/1 … DIR/<pair>/n; a repeat that never ran
// has no folder and is missing from the result (the aggregate says so).
func buildRepeats(dir, pair string, n int) ([]Scenario, error) {
	out := []Scenario{}
	for k := 1; k <= n; k++ {
		sub := RepeatDir(dir, pair, k)
		if _, err := os.Stat(sub); err != nil {
			continue
		}
		rr, err := Build(sub)
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

// judgeRun fills the aggregates, the comparisons, the top-level verdict and
// its counts.
func judgeRun(r *Report, plan *RunPlan) {
	planned := 1
	if plan != nil && plan.Repeat > 0 {
		planned = plan.Repeat
	}
	candAgg := aggregate(r.Scenarios, PairCandidate, planned)
	r.Aggregates = candAgg
	if r.Baseline != nil {
		baseAgg := aggregate(r.Baseline.Scenarios, PairBaseline, planned)
		r.Aggregates = append(r.Aggregates, baseAgg...)
		r.Gate = GateBaseline
		r.Comparisons = compare(r, plan, candAgg, baseAgg)
		verdicts := make([]string, len(r.Comparisons))
		for i, c := range r.Comparisons {
			verdicts[i] = c.Verdict
		}
		r.Verdict, r.Counts = worst(verdicts)
		return
	}
	r.Gate = GateScenarios
	verdicts := make([]string, len(r.Scenarios))
	for i, s := range r.Scenarios {
		verdicts[i] = s.Verdict
	}
	if plan != nil {
		// A repeat that never ran is a gate that could not be judged.
		for _, a := range candAgg {
			for i := a.Runs; i < a.Planned; i++ {
				verdicts = append(verdicts, VerdictError)
			}
		}
	}
	r.Verdict, r.Counts = worst(verdicts)
}

// worst is the run's verdict over verdicts: fail if any failed (retrying
// will not help), else error if any is an error, else pass; error when
// there is nothing to judge.
func worst(verdicts []string) (string, Counts) {
	var c Counts
	for _, v := range verdicts {
		switch v {
		case VerdictPass:
			c.Pass++
		case VerdictFail:
			c.Fail++
		default:
			c.Error++
		}
	}
	switch {
	case c.Fail > 0:
		return VerdictFail, c
	case c.Error > 0 || c.Pass == 0:
		return VerdictError, c
	}
	return VerdictPass, c
}

// aggregate sums the runs of each scenario (in the order they first ran).
func aggregate(runs []Scenario, pair string, planned int) []Aggregate {
	var order []string
	by := map[string]*Aggregate{}
	stalls := map[string][]float64{}
	for _, s := range runs {
		a := by[s.Name]
		if a == nil {
			a = &Aggregate{Scenario: s.Name, Pair: pair, From: s.From, To: s.To, Planned: planned, PerRun: []RunFigures{}}
			by[s.Name] = a
			order = append(order, s.Name)
		}
		a.Runs++
		switch s.Verdict {
		case VerdictPass:
			a.Counts.Pass++
		case VerdictFail:
			a.Counts.Fail++
		default:
			a.Counts.Error++
		}
		a.Requests += s.Requests.Total
		a.Dropped += s.Dropped
		a.PerRun = append(a.PerRun, RunFigures{Repeat: s.Repeat, Verdict: s.Verdict, Requests: s.Requests.Total, Dropped: s.Dropped, StallMs: s.Stall.Ms})
		stalls[s.Name] = append(stalls[s.Name], s.Stall.Ms)
	}
	out := make([]Aggregate, 0, len(order))
	for _, name := range order {
		a := by[name]
		phi, ok := dispersion(runCounts(a.PerRun))
		if ok {
			v := round3(phi)
			a.Dispersion = &v
		}
		if a.Requests > 0 {
			rate := round3(float64(a.Dropped) / float64(a.Requests) * 1e4)
			lo, hi := wilsonReal(float64(a.Dropped)/phi, float64(a.Requests)/phi, z95)
			a.DropsPer10k = &rate
			a.CI95 = &Interval{Low: round3(lo * 1e4), High: round3(hi * 1e4)}
		}
		if st := stalls[name]; len(st) > 0 {
			sort.Float64s(st)
			med := st[len(st)/2]
			if len(st)%2 == 0 {
				med = (st[len(st)/2-1] + st[len(st)/2]) / 2
			}
			a.StallMs = &Spread{Min: st[0], Median: round3(med), Max: st[len(st)-1]}
		}
		out = append(out, *a)
	}
	return out
}

// runCounts are each run's drops and requests.
func runCounts(runs []RunFigures) [][2]int {
	out := make([][2]int, len(runs))
	for i, r := range runs {
		out[i] = [2]int{r.Dropped, r.Requests}
	}
	return out
}

// compare judges each scenario of the candidate against the baseline: error
// if a run is missing or its measurement invalid; fail if a candidate run
// broke the path itself (a step not as expected, a final state wrong, a
// stall above the limit) or if the candidate drops significantly more than
// the baseline (one-sided exact test at Alpha); else pass. A positive
// control, or a scenario run on the candidate side only, is judged by its
// runs' own verdicts.
func compare(r *Report, plan *RunPlan, cand, base []Aggregate) []Comparison {
	alpha := Alpha
	if plan != nil && plan.Alpha > 0 {
		alpha = plan.Alpha
	}
	baseBy := map[string]*Aggregate{}
	for i := range base {
		baseBy[base[i].Scenario] = &base[i]
	}
	runsOf := func(runs []Scenario, name string) []Scenario {
		var out []Scenario
		for _, s := range runs {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	candidateOnly := map[string]bool{}
	if plan != nil {
		for _, n := range plan.CandidateOnly {
			candidateOnly[n] = true
		}
	}
	var out []Comparison
	for i := range cand {
		ca := &cand[i]
		c := Comparison{Scenario: ca.Scenario, Candidate: ca, Reasons: []string{}}
		cruns := runsOf(r.Scenarios, ca.Scenario)
		own := candidateOnly[ca.Scenario] || baseBy[ca.Scenario] == nil
		if ca.Runs < ca.Planned {
			c.Reasons = append(c.Reasons, fmt.Sprintf("only %d of %d candidate runs were recorded", ca.Runs, ca.Planned))
		}
		if own {
			c.Test = TestOwnVerdicts
			verdicts := []string{}
			for _, s := range cruns {
				verdicts = append(verdicts, s.Verdict)
				for _, why := range s.Reasons {
					c.Reasons = append(c.Reasons, fmt.Sprintf("run %d: %s", s.Repeat, why))
				}
			}
			if ca.Runs < ca.Planned {
				verdicts = append(verdicts, VerdictError)
			}
			c.Verdict, _ = worst(verdicts)
			out = append(out, c)
			continue
		}
		ba := baseBy[ca.Scenario]
		c.Baseline = ba
		c.Test = TestExactRate
		control := len(cruns) > 0 && cruns[0].Expect == ExpectDrops
		if control {
			c.Test = TestFailRate
		}
		invalid := ca.Runs < ca.Planned
		if ba == nil || ba.Runs < ba.Planned {
			n := 0
			if ba != nil {
				n = ba.Runs
			}
			c.Reasons = append(c.Reasons, fmt.Sprintf("only %d of %d baseline runs were recorded", n, ca.Planned))
			invalid = true
		}
		for _, s := range append(cruns, runsOf(baselineScenarios(r), ca.Scenario)...) {
			if s.Verdict == VerdictError {
				invalid = true
				c.Reasons = append(c.Reasons, fmt.Sprintf("%s run %d is invalid: %s", s.Pair, s.Repeat, strings.Join(s.Reasons, "; ")))
			}
		}
		if invalid {
			c.Verdict = VerdictError
			out = append(out, c)
			continue
		}
		if control {
			// A positive control must drop where its step drops; under
			// keep-alive the race of a graceful step may add drops
			// elsewhere, on the baseline as on the candidate, and fail runs
			// of both on their own: the gate is that the candidate fails
			// no more often.
			p := round6(hypergeometricUpperTail(ca.Counts.Fail, ca.Runs, ba.Counts.Fail, ba.Runs))
			c.PValue, c.Alpha = &p, &alpha
			measured := fmt.Sprintf("%d of %d candidate runs failed their own verdict, %d of %d baseline runs (one-sided p = %s, α = %g)",
				ca.Counts.Fail, ca.Runs, ba.Counts.Fail, ba.Runs, fmtP(p), alpha)
			if p < alpha {
				c.Verdict = VerdictFail
				c.Reasons = append(c.Reasons, "the candidate fails the control significantly more often: "+measured)
			} else {
				c.Verdict = VerdictPass
				c.Reasons = append(c.Reasons, "no worse than the baseline: "+measured)
			}
			for _, s := range cruns {
				for _, why := range s.Reasons {
					c.Reasons = append(c.Reasons, fmt.Sprintf("candidate run %d: %s", s.Repeat, why))
				}
			}
			out = append(out, c)
			continue
		}
		var broke []string
		for _, s := range cruns {
			for _, why := range pathFailures(&s) {
				broke = append(broke, fmt.Sprintf("candidate run %d: %s", s.Repeat, why))
			}
		}
		phi, _ := dispersion(runCounts(ca.PerRun), runCounts(ba.PerRun))
		phiR := round3(phi)
		c.Dispersion = &phiR
		p := round6(rateWorsePDispersed(ca.Dropped, ca.Requests, ba.Dropped, ba.Requests, phi))
		c.PValue, c.Alpha = &p, &alpha
		if ba.Dropped > 0 && ba.Requests > 0 && ca.Requests > 0 {
			ratio := round3((float64(ca.Dropped) / float64(ca.Requests)) / (float64(ba.Dropped) / float64(ba.Requests)))
			c.RateRatio = &ratio
		}
		measured := fmt.Sprintf("candidate %s per 10,000 requests against baseline %s (one-sided p = %s, α = %g, dispersion %.2f)",
			rateWithCI(ca), rateWithCI(ba), fmtP(p), alpha, phi)
		switch {
		case len(broke) > 0:
			c.Verdict = VerdictFail
			c.Reasons = append(broke, c.Reasons...)
		case p < alpha:
			c.Verdict = VerdictFail
			c.Reasons = append(c.Reasons, "the candidate drops significantly more: "+measured)
		default:
			c.Verdict = VerdictPass
			c.Reasons = append(c.Reasons, "no worse than the baseline: "+measured)
		}
		out = append(out, c)
	}
	return out
}

// pathFailures are what breaks an upgrade path whatever the baseline does:
// a step that did not do what the scenario expects, a wrong final state, a
// stall above the limit.
func pathFailures(s *Scenario) []string {
	var out []string
	for _, st := range s.Steps {
		if !stepAsExpected(st) {
			out = append(out, fmt.Sprintf("step %s: %s", stepLabel(st), stepOutcome(st)))
		}
	}
	if s.Final != nil {
		for _, e := range s.Final.CheckErrors {
			out = append(out, "final state: "+e)
		}
	}
	stalls, _ := stallReasons(s) // a stall the observer was blind to is not the path's
	return append(out, stalls...)
}

// rateWithCI writes "3.1 [1.2, 6.4]" (drops per 10,000 requests, 95% CI).
func rateWithCI(a *Aggregate) string {
	if a == nil || a.DropsPer10k == nil {
		return "— (no request)"
	}
	return fmt.Sprintf("%s [%s, %s] (%s in %d)", fmtRate(*a.DropsPer10k), fmtRate(a.CI95.Low), fmtRate(a.CI95.High),
		plural(a.Dropped, "drop"), a.Requests)
}

func fmtRate(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}

func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }

// thresholdsOf states the limits a scenario's verdict applies, from its plan.
func thresholdsOf(m *Meta) Thresholds {
	t := Thresholds{MinRateFraction: MinRateFraction, MinRatePhaseMs: MinRatePhaseMs, SteadyMs: m.SteadyMs, ExpectDrops: m.ExpectDrops,
		SilentWindowMs: 100}
	if m.MaxStallMs > 0 {
		v := m.MaxStallMs
		t.MaxStallMs = &v
	}
	if m.Load.Rate > 0 {
		t.SilentWindowMs = max(100, round3(3*1000/float64(m.Load.Rate)))
	}
	if m.Observer != nil {
		t.Observer = &ObserverLimits{WindowMs: m.Observer.WindowMs, MaxLateMs: ObserverMaxLateMs, MaxHiccupMs: ObserverMaxHiccupMs,
			MaxProbeMs: ObserverMaxProbeMs}
	}
	return t
}
