package record

import (
	"path/filepath"
	"strconv"
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

	// Plans are what each scenario was meant to do, each with its digest
	// (empty in a run.json written before plans were): every scenario's
	// record is held against its own (CheckPlan).
	Plans []ScenarioPlan `json:"plans,omitempty"`
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

// Counts are verdicts counted.
type Counts struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
}
