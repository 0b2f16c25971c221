package analysis

import (
	"errors"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// targetAcc is what results.gob says of one target.
type targetAcc struct {
	requests, ok, failed, cancelled int
	byClass                         [numClasses]int
	latency                         bucketAcc // a fixed-size histogram: thousands of targets stay cheap
}

// readTargets builds a row per target meta.json lists: its results, and
// the drops replays hid (an HTTP/1.1 request written on a connection the
// server closed and then replayed successfully; an HTTP/2 stream replayed
// without the never-processed guarantee that then succeeded).
func readTargets(dir string, s *record.Scenario, meta *record.Meta, targets map[int]*targetAcc, problem func(string, ...any)) {
	if len(meta.Targets) == 0 {
		return
	}
	s.Targets = make([]record.TargetRow, 0, len(meta.Targets))
	byIndex := map[int]int{}
	for _, tp := range meta.Targets {
		row := record.TargetRow{Index: tp.Index, Target: tp.Method + " " + tp.URL, Line: tp.Line, ByClass: map[string]int{}}
		if ta := targets[tp.Index]; ta != nil {
			row.Requests, row.OK, row.Failed, row.Cancelled = ta.requests, ta.ok, ta.failed, ta.cancelled
			row.Dropped = ta.failed
			for c := failureClass(0); c < numClasses; c++ {
				if n := ta.byClass[c]; n > 0 {
					row.ByClass[c.String()] = n
				}
			}
			row.P50Ms = Round3(ta.latency.quantile(0.50))
			row.P99Ms = Round3(ta.latency.quantile(0.99))
			row.MaxMs = Round3(DurationToMs(ta.latency.max))
		}
		byIndex[tp.Index] = len(s.Targets)
		s.Targets = append(s.Targets, row)
	}
	var unknown int
	for i := range targets {
		if _, ok := byIndex[i]; !ok {
			unknown++
		}
	}
	if unknown > 0 {
		problem("%s names %d targets meta.json does not list", loadgen.ResultsFile, unknown)
	}
	row := func(url string) *record.TargetRow {
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
	if err := record.ReadJSONL(path(record.RetriesFile), func(rr *record.RetryRecord) {
		if r := row(rr.URL); r != nil && rr.Written && rr.OK { // a failed replay is a failed request already
			r.Dropped++
		}
	}); err != nil && !errors.Is(err, record.ErrMissing) {
		problem("%v", err)
	}
	if err := record.ReadJSONL(path(loadgen.StreamsFile), func(st *loadgen.StreamRecord) {
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
	}); err != nil && !errors.Is(err, record.ErrMissing) {
		problem("%v", err)
	}
}
