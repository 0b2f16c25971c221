package analysis

import (
	"fmt"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
	"github.com/tsenart/vegeta/v12/lib"
)

// clockSlack is how far a result's end may pass the end-of-run marker:
// results are stamped by the wall clock and the marker by the monotonic
// one, which may drift apart by a few milliseconds over a run.
const clockSlack = time.Second

// resultBounds are what a result of this run must fall within on the run's
// clock: from its start (meta.json start_wall: the clock starts before the
// load) to the end-of-run marker (end.json end_ms: written once the load
// has closed and every result is on disk).
type resultBounds struct {
	endMs   float64 // kept in ms: a doctored end_ms may be past what a Duration holds
	haveEnd bool    // false: no marker, no upper bound (its absence is a problem of its own)
}

// impossibleResults counts the results no run of this record can have
// written, keeping the first in words; they are left out of every figure.
type impossibleResults struct {
	n     int
	first string
}

// check says why r, at t on the run's clock, cannot be a result of this
// run; "" when it can. The sum is taken in float ms: a latency of
// MaxInt64 must not wrap around into a short one.
func (b resultBounds) check(r *vegeta.Result, t time.Duration) string {
	switch {
	case t < 0:
		return fmt.Sprintf("stamped %s before meta.json start_wall: the record's two clocks disagree", words.FmtMs(-DurationToMs(t)))
	case r.Latency < 0:
		return fmt.Sprintf("latency %s is negative", r.Latency)
	case b.haveEnd && DurationToMs(t)+DurationToMs(r.Latency) > b.endMs+DurationToMs(clockSlack):
		return fmt.Sprintf("sent at %s with a latency of %s, it ends after the run's end marker (end.json end_ms %s)",
			words.FmtMs(DurationToMs(t)), r.Latency, words.FmtMs(b.endMs))
	}
	return ""
}

func (ir *impossibleResults) add(seq int, why string) {
	if ir.n == 0 {
		ir.first = fmt.Sprintf("result %d %s", seq, why)
	}
	ir.n++
}

// reason is the one line that names results.gob, or "".
func (ir *impossibleResults) reason(file string, read int) string {
	if ir.n == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %d of %d results cannot be of this run, left out of every figure (the first: %s)",
		file, ir.n, read, ir.first)
}
