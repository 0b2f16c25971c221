package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// Builds a compare run puts through each procedure (Procedure.Build).
const (
	BuildGood   = "good"
	BuildBroken = "broken"
)

// Outcomes of a procedure (Procedure.Outcome), from the final state.
const (
	OutcomeUpgraded   = "upgraded"    // one master, the new binary serves
	OutcomeKeptOld    = "kept-old"    // the old set serves, the new binary never took over
	OutcomeRestarted  = "restarted"   // the service went down and came back
	OutcomeDown       = "down"        // nothing serves at the end
	OutcomeTwoMasters = "two-masters" // left half-way
	OutcomeFailed     = "failed"      // the procedure could not be run
)

// CompareReport is DIR/report.json of `compare` (design.md): packaging
// procedures side by side, each with a good and a broken new build.
type CompareReport struct {
	Schema int `json:"schema"`

	// InsecureArchive: the builds were resolved with --insecure-archive
	// (absent otherwise).
	InsecureArchive bool `json:"insecure_archive,omitempty"`

	From       string      `json:"from"`
	To         string      `json:"to"`
	Broken     string      `json:"broken"`
	Load       record.Load `json:"load"`
	Procedures []Procedure `json:"procedures"`

	// With --expect: what each build was expected to do, the verdict (the
	// worst of the summary rows') and its counts; Summary is a row per
	// procedure and build over its runs (with --expect or --repeat).
	Expect  *CompareExpect   `json:"expect,omitempty"`
	Verdict string           `json:"verdict,omitempty"`
	Counts  *record.Counts   `json:"counts,omitempty"`
	Repeat  int              `json:"repeat,omitempty"`
	Summary []CompareSummary `json:"summary,omitempty"`
	Missing int              `json:"missing_runs,omitempty"` // planned runs with no record (an interrupted compare)
}

// Procedure is one upgrade procedure run against one build.
type Procedure struct {
	Name       string          `json:"name"`
	Build      string          `json:"build"`
	Init       string          `json:"init"` // the init system it ran under: docker-init or systemd
	ExitCode   int             `json:"exit_code"`
	DurationMs float64         `json:"duration_ms"`
	Dropped    int             `json:"dropped"`
	Requests   record.Requests `json:"requests"`
	Final      record.Final    `json:"final"`
	Outcome    string          `json:"outcome"`

	// Extras, beyond the contract.
	Failures map[string]int `json:"failures_by_class"`
	Retried  int            `json:"retried"`
	SlowCut  int            `json:"slow_cut"`
	Verdict  string         `json:"verdict,omitempty"` // of the scenario the procedure ran in, if any
	Reasons  []string       `json:"reasons,omitempty"`
	Error    string         `json:"error,omitempty"` // why it could not be run

	Dir          string   `json:"dir,omitempty"`              // its record directory, under the compare run's
	TimedOut     bool     `json:"timed_out,omitempty"`        // the procedure hung and was killed at its timeout
	BinaryOnDisk string   `json:"binary_on_disk,omitempty"`   // old, new or unknown: what a restart would run
	Restart      []string `json:"restart_evidence,omitempty"` // why the outcome is restarted: what was seen
	Notes        []string `json:"notes,omitempty"`            // what a reader should know (policy-rc.d, a repackaged .deb…)

	Repeat int `json:"repeat,omitempty"` // its run under --repeat (1…N)
	// Under systemd: the unit nginx ran as and systemd's view before the
	// procedure (the view after is Final.Systemd).
	Unit          string              `json:"unit,omitempty"`
	SystemdBefore *record.SystemdView `json:"systemd_before,omitempty"`
	// With --expect: what its build was expected to do, and its verdict
	// against that (pass, fail, error) with the reasons.
	Expected      string   `json:"expected,omitempty"`
	Judged        string   `json:"judged,omitempty"`
	JudgedReasons []string `json:"judged_reasons,omitempty"`
}

// NewProcedure fills a procedure's load figures from the scenario it ran
// in; the caller sets Build, ExitCode, DurationMs and Outcome.
func NewProcedure(name string, s *record.Scenario) Procedure {
	p := Procedure{
		Name: name, Dropped: s.Dropped, Requests: s.Requests, Failures: map[string]int{},
		Retried: s.Retried, SlowCut: s.Slow.Cut, Verdict: s.Verdict, Reasons: s.Reasons, Error: s.Error,
	}
	for _, f := range s.Failures {
		p.Failures[f.Class] += f.Count
	}
	if s.Final != nil {
		p.Final = *s.Final
	}
	return p
}

// OutcomeOf names what a procedure left behind. ran is false when the
// procedure could not be run at all; wentDown tells that the load saw the
// service unreachable for a while (a restart, not a graceful upgrade).
func OutcomeOf(f *record.Final, ran, wentDown bool) string {
	switch {
	case !ran || f == nil:
		return OutcomeFailed
	case f.Masters >= 2:
		return OutcomeTwoMasters
	case f.Masters == 0 || !f.Serving:
		return OutcomeDown
	case wentDown:
		return OutcomeRestarted
	case f.ServingBinary == "new":
		return OutcomeUpgraded
	case f.ServingBinary == "old":
		return OutcomeKeptOld
	}
	return OutcomeFailed
}

// CompareExpect is what a packager expects of each build's procedure runs
// (compare --expect): recorded in compare.json, so that `report DIR`
// judges a compare run as it was judged when it ran.
type CompareExpect struct {
	Spec   string                 `json:"spec"` // as given: "default", "good=restarted+drops"
	Builds map[string]BuildExpect `json:"builds"`
}

// BuildExpect is what one build's procedure must do.
type BuildExpect struct {
	Outcomes []string `json:"outcomes"` // the outcomes accepted
	// Drops: losses (and stalls) are accepted; otherwise 0 dropped and no
	// stall over the run's --max-stall.
	Drops bool `json:"drops,omitempty"`
	// NonZeroExit: the procedure must say it failed (exit non-zero, or
	// killed at its timeout) — a build that cannot start.
	NonZeroExit bool `json:"nonzero_exit,omitempty"`
}

// DefaultCompareExpect is --expect default: the good build upgraded with
// nothing lost and no stall; the broken build kept the old one serving,
// nothing lost, and the procedure said it failed.
func DefaultCompareExpect() *CompareExpect {
	return &CompareExpect{Spec: "default", Builds: map[string]BuildExpect{
		BuildGood:   {Outcomes: []string{OutcomeUpgraded}},
		BuildBroken: {Outcomes: []string{OutcomeKeptOld}, NonZeroExit: true},
	}}
}

// compareOutcomes are the outcomes an expectation may name.
var compareOutcomes = []string{OutcomeUpgraded, OutcomeKeptOld, OutcomeRestarted, OutcomeDown, OutcomeTwoMasters}

// ParseCompareExpect reads --expect: "default", or a comma-separated list
// of BUILD=OUTCOME[|OUTCOME…][+drops][+exit0] that replaces the default
// for the builds it names (e.g. "good=upgraded|restarted+drops"). +drops
// accepts losses and stalls; +exit0 accepts a procedure that exits 0 with
// the broken build.
func ParseCompareExpect(spec string) (*CompareExpect, error) {
	e := DefaultCompareExpect()
	e.Spec = spec
	if spec == "default" {
		return e, nil
	}
	for _, part := range strings.Split(spec, ",") {
		build, rest, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || rest == "" {
			return nil, fmt.Errorf("--expect %q: want default or BUILD=OUTCOME[|OUTCOME][+drops][+exit0], e.g. good=restarted+drops", spec)
		}
		if build != BuildGood && build != BuildBroken {
			return nil, fmt.Errorf("--expect %q: unknown build %q (want %s or %s)", spec, build, BuildGood, BuildBroken)
		}
		words := strings.Split(rest, "+")
		be := BuildExpect{NonZeroExit: build == BuildBroken}
		for _, o := range strings.Split(words[0], "|") {
			if !slices.Contains(compareOutcomes, o) {
				return nil, fmt.Errorf("--expect %q: unknown outcome %q (want %s)", spec, o, strings.Join(compareOutcomes, ", "))
			}
			be.Outcomes = append(be.Outcomes, o)
		}
		for _, w := range words[1:] {
			switch w {
			case "drops":
				be.Drops = true
			case "exit0":
				be.NonZeroExit = false
			default:
				return nil, fmt.Errorf("--expect %q: unknown modifier +%s (want +drops or +exit0)", spec, w)
			}
		}
		e.Builds[build] = be
	}
	return e, nil
}

// Words says an expectation for people: "upgraded, 0 dropped, no stall".
func (b BuildExpect) Words() string {
	w := strings.Join(b.Outcomes, " or ")
	if !b.Drops {
		w += ", 0 dropped, no stall"
	} else {
		w += ", losses accepted"
	}
	if b.NonZeroExit {
		w += ", the procedure exits non-zero"
	}
	return w
}

// judgeProcedure judges one procedure run against what its build is
// expected to do. As for a scenario, a failed premise (the load did not
// hold its rate, a record is incomplete) gates a pass but never hides what
// was seen: a miss is fail with the premises beside it ("also: …").
func judgeProcedure(row *Procedure, s *record.Scenario, e *CompareExpect) {
	be, ok := e.Builds[row.Build]
	if !ok {
		row.Judged, row.JudgedReasons = record.VerdictError, []string{fmt.Sprintf("no expectation for the %s build", row.Build)}
		return
	}
	row.Expected = be.Words()
	var miss []string
	if !slices.Contains(be.Outcomes, row.Outcome) && row.Outcome != OutcomeFailed {
		miss = append(miss, fmt.Sprintf("ended %s, expected %s", row.Outcome, strings.Join(be.Outcomes, " or ")))
	}
	var blind []string // stalls the observer could not see: the machine's, not the procedure's
	if !be.Drops {
		if row.Dropped > 0 {
			miss = append(miss, fmt.Sprintf("%s dropped (%s)", words.Plural(row.Dropped, "request"), procedureFailures(*row)))
		}
		stalls, unseen := judge.StallReasons(s)
		miss, blind = append(miss, stalls...), unseen
	}
	if be.NonZeroExit && row.Outcome != OutcomeFailed && row.ExitCode == 0 && !row.TimedOut {
		miss = append(miss, "the procedure exited 0 with a build that cannot start: it must say it failed")
	}
	premises := append(comparePremises(row, s), blind...)
	// A process that died of something the procedure did not do is a
	// finding (docs/reports.md, deaths are findings); beside a failed
	// premise only a crash is.
	crashes, others := judge.Deaths(s)
	miss = append(miss, crashes...)
	if len(premises) == 0 {
		miss = append(miss, others...)
	} else {
		premises = append(premises, others...)
	}
	switch {
	case len(miss) > 0:
		for _, p := range premises {
			miss = append(miss, "also: "+p)
		}
		row.Judged, row.JudgedReasons = record.VerdictFail, miss
	case len(premises) > 0:
		row.Judged, row.JudgedReasons = record.VerdictError, premises
	default:
		row.Judged, row.JudgedReasons = record.VerdictPass, []string{}
	}
}

// comparePremises are what a procedure run needs to be judged: it ran, its
// record is complete, and the load covered it at its rate.
func comparePremises(row *Procedure, s *record.Scenario) []string {
	var out []string
	if row.Outcome == OutcomeFailed {
		e := row.Error
		if e == "" {
			e = "no final state recorded"
		}
		out = append(out, "could not run: "+e)
	}
	out = append(out, s.Problems...)
	if s.Requests.Total == 0 {
		out = append(out, "no results: the load sent no request")
	} else {
		out = append(out, judge.CoverageReasons(s)...)
	}
	if s.Slow.Cancelled > 0 {
		out = append(out, fmt.Sprintf("%s cancelled by the harness before it ended", words.Plural(s.Slow.Cancelled, "long download")))
	}
	return out
}

// CompareSummary is one procedure with one build over its runs (compare
// --repeat): how many ended in each outcome, with the drops of each, and
// the verdict of the row under --expect (a varying outcome is flaky: fail).
type CompareSummary struct {
	Procedure string                    `json:"procedure"`
	Build     string                    `json:"build"`
	Runs      int                       `json:"runs"`
	Outcomes  map[string]OutcomeSummary `json:"outcomes"`
	Flaky     bool                      `json:"flaky"`
	Expected  string                    `json:"expected,omitempty"`
	Verdict   string                    `json:"verdict,omitempty"` // under --expect
	Reasons   []string                  `json:"reasons,omitempty"`
}

// OutcomeSummary is the runs that ended in one outcome.
type OutcomeSummary struct {
	Runs    int   `json:"runs"`
	Dropped []int `json:"dropped"` // per run, in run order
}

// summarize groups the rows by procedure and build, in the order they ran,
// and judges each group under e (nil: no expectation).
func summarize(rows []Procedure, e *CompareExpect) []CompareSummary {
	var out []CompareSummary
	index := map[string]int{}
	for _, r := range rows {
		key := r.Name + "\x00" + r.Build
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, CompareSummary{Procedure: r.Name, Build: r.Build, Outcomes: map[string]OutcomeSummary{}})
		}
		s := &out[i]
		s.Runs++
		o := s.Outcomes[r.Outcome]
		o.Runs++
		o.Dropped = append(o.Dropped, r.Dropped)
		s.Outcomes[r.Outcome] = o
	}
	for i := range out {
		s := &out[i]
		s.Flaky = len(s.Outcomes) > 1
		if e == nil {
			continue
		}
		if be, ok := e.Builds[s.Build]; ok {
			s.Expected = be.Words()
		}
		var verdicts, reasons []string
		for _, r := range rows {
			if r.Name == s.Procedure && r.Build == s.Build {
				verdicts = append(verdicts, r.Judged)
				for _, why := range r.JudgedReasons {
					if s.Runs > 1 {
						why = fmt.Sprintf("run %d: %s", r.Repeat, why)
					}
					reasons = append(reasons, why)
				}
			}
		}
		v, _ := judge.Worst(verdicts)
		if s.Flaky {
			v = record.VerdictFail
			reasons = append([]string{"flaky: " + s.OutcomeWords()}, reasons...)
		}
		s.Verdict, s.Reasons = v, reasons
	}
	return out
}

// OutcomeWords says how the runs ended: "upgraded in 3 runs (0, 0, 0
// dropped), down in 2 runs (1613, 1596 dropped)".
func (s CompareSummary) OutcomeWords() string {
	names := make([]string, 0, len(s.Outcomes))
	for o := range s.Outcomes {
		names = append(names, o)
	}
	sort.Slice(names, func(i, j int) bool {
		if s.Outcomes[names[i]].Runs != s.Outcomes[names[j]].Runs {
			return s.Outcomes[names[i]].Runs > s.Outcomes[names[j]].Runs
		}
		return names[i] < names[j]
	})
	var parts []string
	for _, o := range names {
		os := s.Outcomes[o]
		var d []string
		for _, n := range os.Dropped {
			d = append(d, fmt.Sprint(n))
		}
		parts = append(parts, fmt.Sprintf("%s in %s (%s dropped)", o, words.Plural(os.Runs, "run"), strings.Join(d, ", ")))
	}
	return strings.Join(parts, ", ")
}

func procedureFailures(p Procedure) string {
	parts := []string{}
	if s := words.ClassSummary(p.Failures); s != "" {
		parts = append(parts, s)
	}
	if p.Retried > 0 {
		parts = append(parts, fmt.Sprintf("retried: %d", p.Retried))
	}
	if p.SlowCut > 0 {
		parts = append(parts, fmt.Sprintf("downloads cut: %d", p.SlowCut))
	}
	return strings.Join(parts, ", ")
}
