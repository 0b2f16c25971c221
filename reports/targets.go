package reports

import (
	"errors"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TargetPlan is one target of a user's targets file (--targets) as
// meta.json records it before the load starts.
type TargetPlan struct {
	Index     int    `json:"index"` // its place in the file, from 0: what its records carry
	Method    string `json:"method"`
	URL       string `json:"url"`
	Line      int    `json:"line"` // where it starts in the file
	BodyBytes int    `json:"body_bytes,omitempty"`
	// Profiles are the traffic kinds' profiles that send it (http2 sends
	// the https targets only).
	Profiles []string `json:"profiles"`
}

// TargetRow is one target's account in a scenario, recomputed from the
// records on disk: its requests in results.gob (every request kind that
// sent it), and the replays in retries.jsonl and streams.jsonl that hid a
// drop. Dropped counts as the scenario's Dropped does (DROPS.md).
type TargetRow struct {
	Index     int            `json:"index"`
	Target    string         `json:"target"` // METHOD URL
	Line      int            `json:"line"`
	Requests  int            `json:"requests"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Cancelled int            `json:"cancelled"`
	Dropped   int            `json:"dropped"`
	ByClass   map[string]int `json:"failed_by_class"`
	P50Ms     float64        `json:"p50_ms"`
	P99Ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
}

// targetAcc is what results.gob says of one target.
type targetAcc struct {
	requests, ok, failed, cancelled int
	byClass                         [numClasses]int
	latency                         bucketAcc // a fixed-size histogram: thousands of targets stay cheap
}

// addTarget counts a result of a targets profile under its target (its
// URL's fragment names it); the harness's own requests name none.
func (a *resultsAcc) addTarget(r *vegeta.Result, class failureClass, failed bool) {
	i, ok := loadgen.TargetIndex(r.URL)
	if !ok {
		return
	}
	if a.targets == nil {
		a.targets = map[int]*targetAcc{}
	}
	ta := a.targets[i]
	if ta == nil {
		ta = &targetAcc{}
		a.targets[i] = ta
	}
	ta.requests++
	switch {
	case failed && class == classCancelled:
		ta.cancelled++
	case failed:
		ta.failed++
		ta.byClass[class]++
	default:
		ta.ok++
	}
	b := &ta.latency
	b.requests++
	if b.hist == nil {
		b.hist = make([]uint32, latencyBins)
	}
	b.hist[latencyBin(r.Latency)]++
	b.max = max(b.max, r.Latency)
}

// readTargets builds a row per target meta.json lists: its results, and
// the drops replays hid (an HTTP/1.1 request written on a connection the
// server closed and then replayed successfully; an HTTP/2 stream replayed
// without the never-processed guarantee that then succeeded).
func readTargets(dir string, s *Scenario, meta *Meta, acc *resultsAcc, problem func(string, ...any)) {
	if len(meta.Targets) == 0 {
		return
	}
	s.Targets = make([]TargetRow, 0, len(meta.Targets))
	byIndex := map[int]int{}
	for _, tp := range meta.Targets {
		row := TargetRow{Index: tp.Index, Target: tp.Method + " " + tp.URL, Line: tp.Line, ByClass: map[string]int{}}
		if ta := acc.targets[tp.Index]; ta != nil {
			row.Requests, row.OK, row.Failed, row.Cancelled = ta.requests, ta.ok, ta.failed, ta.cancelled
			row.Dropped = ta.failed
			for c := failureClass(0); c < numClasses; c++ {
				if n := ta.byClass[c]; n > 0 {
					row.ByClass[c.String()] = n
				}
			}
			row.P50Ms = round3(ta.latency.quantile(0.50))
			row.P99Ms = round3(ta.latency.quantile(0.99))
			row.MaxMs = round3(durationToMs(ta.latency.max))
		}
		byIndex[tp.Index] = len(s.Targets)
		s.Targets = append(s.Targets, row)
	}
	var unknown int
	for i := range acc.targets {
		if _, ok := byIndex[i]; !ok {
			unknown++
		}
	}
	if unknown > 0 {
		problem("%s names %d targets meta.json does not list", loadgen.ResultsFile, unknown)
	}
	row := func(url string) *TargetRow {
		i, ok := loadgen.TargetIndex(url)
		if !ok {
			return nil
		}
		if k, ok := byIndex[i]; ok {
			return &s.Targets[k]
		}
		return nil
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	if err := readJSONL(path(RetriesFile), func(rr *RetryRecord) {
		if r := row(rr.URL); r != nil && rr.Written && rr.OK { // a failed replay is a failed request already
			r.Dropped++
		}
	}); err != nil && !errors.Is(err, errMissing) {
		problem("%v", err)
	}
	if err := readJSONL(path(loadgen.StreamsFile), func(st *loadgen.StreamRecord) {
		r := row(st.URL)
		if r == nil || st.Outcome != loadgen.StreamOK {
			return
		}
		for _, why := range st.Retries {
			if !loadgen.SafeRetry(why) {
				r.Dropped++
				return
			}
		}
	}); err != nil && !errors.Is(err, errMissing) {
		problem("%v", err)
	}
}

// maxTargetRows bounds the targets report.md and report.html list one by
// one (report.json has them all): those that dropped first, then the
// others in file order.
const maxTargetRows = 50

// targetTable is the targets as the reports list them.
type targetTable struct {
	Rows []TargetRow
	More int // targets left out (none of them dropped)
}

// shownTargets orders the rows for people: those that dropped first; nil
// without targets.
func shownTargets(all []TargetRow) *targetTable {
	if len(all) == 0 {
		return nil
	}
	rows := make([]TargetRow, 0, len(all))
	for _, r := range all {
		if r.Dropped > 0 {
			rows = append(rows, r)
		}
	}
	for _, r := range all {
		if r.Dropped == 0 {
			rows = append(rows, r)
		}
	}
	t := &targetTable{Rows: rows}
	if len(rows) > maxTargetRows && rows[maxTargetRows].Dropped == 0 {
		t.Rows, t.More = rows[:maxTargetRows], len(rows)-maxTargetRows
	}
	return t
}

func classesOrDash(byClass map[string]int) string {
	if c := classSummary(byClass); c != "" {
		return c
	}
	return "—"
}

func writeMarkdownTargets(mw *mdWriter, s *Scenario) {
	t := shownTargets(s.Targets)
	if t == nil {
		return
	}
	mw.printf("| target | line | requests | ok | dropped | failed by class | p50 (ms) | p99 (ms) |\n| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
	for _, r := range t.Rows {
		mw.printf("| %s | %d | %d | %d | %d | %s | %s | %s |\n", mdCell(r.Target), r.Line, r.Requests, r.OK, r.Dropped,
			mdCell(classesOrDash(r.ByClass)), msNum(r.P50Ms, r.Requests), msNum(r.P99Ms, r.Requests))
	}
	if t.More > 0 {
		mw.printf("\n%d more targets in report.json (none of them dropped a request).\n", t.More)
	}
	mw.printf("\n")
}
