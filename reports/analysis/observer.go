package analysis

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// The observer is healthy in a window (loadgen.ObserverRecord) when the
// load sent what it had scheduled at most ObserverMaxLateMs late, the Go
// runtime woke a sleeping goroutine at most ObserverMaxHiccupMs late, and
// the control probe — a responder of the harness's own on the host's
// 127.0.0.1, which neither nginx nor any fault touches — waited at most
// ObserverMaxProbeMs and missed no answer. Measured here on a machine whose
// two cores ran a load average of 11 (another harness's suite beside it),
// the worst window of 15 s at 500 req/s was 32, 46 and 32 ms: the limits
// are about twice that and a tenth of the default stall limit.
const (
	ObserverMaxLateMs   = 100.0
	ObserverMaxHiccupMs = 100.0
	ObserverMaxProbeMs  = 100.0
)

func healthy(r *loadgen.ObserverRecord) bool {
	return r.LateMs <= ObserverMaxLateMs && r.HiccupMs <= ObserverMaxHiccupMs && r.ProbeMs <= ObserverMaxProbeMs && r.ProbeMissed == 0
}

// readObserver reads observer.jsonl into s.Observer. A record made before
// the observer (no plan in meta.json) gets a note and is judged as before;
// one whose plan names the file and lacks it, or has it unreadable, has a
// problem: its stalls cannot be judged.
func readObserver(dir string, s *record.Scenario, meta *record.Meta, problem, note func(string, ...any)) {
	if meta.Observer == nil {
		note("recorded before the observer's health was measured (no observer in %s): a stall above the limit is judged nginx's without it", record.MetaFile)
		return
	}
	name := meta.Observer.File
	if name == "" {
		name = loadgen.ObserverFile
	}
	// One record per window, merged: a supplement line adds to its window.
	byWindow := map[int64]*loadgen.ObserverRecord{}
	err := record.ReadJSONL(filepath.Join(dir, name), func(r *loadgen.ObserverRecord) {
		k := int64(math.Floor(r.StartMs/100 + 1e-9))
		m := byWindow[k]
		if m == nil {
			c := *r
			c.Supplement = false
			byWindow[k] = &c
			return
		}
		m.LateMs, m.HiccupMs, m.ProbeMs = max(m.LateMs, r.LateMs), max(m.HiccupMs, r.HiccupMs), max(m.ProbeMs, r.ProbeMs)
		m.Hits, m.Probes, m.ProbeMissed = m.Hits+r.Hits, m.Probes+r.Probes, m.ProbeMissed+r.ProbeMissed
	})
	switch {
	case err == nil:
	case errors.Is(err, record.ErrMissing):
		problem("%s missing: the observer's health was not recorded, so no stall can be told from the machine's", name)
		return
	default:
		problem("%v: the observer's health is not wholly recorded", err)
	}
	if len(byWindow) == 0 && err == nil {
		problem("%s holds no window: the observer's health was not recorded, so no stall can be told from the machine's", name)
	}
	s.Observer = summariseObserver(byWindow)
}

// summariseObserver folds the windows into the report's summary.
func summariseObserver(byWindow map[int64]*loadgen.ObserverRecord) *record.Observer {
	o := &record.Observer{Blind: []record.ObserverSpan{}}
	if len(byWindow) == 0 {
		return o
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for k := range byWindow {
		lo, hi = min(lo, k), max(hi, k)
	}
	o.FromMs, o.ToMs = float64(lo)*100, float64(hi+1)*100
	var cur *record.ObserverSpan
	for k := lo; k <= hi; k++ {
		r := byWindow[k]
		if r == nil {
			// A hole in the grid: nothing says the observer could see.
			r = &loadgen.ObserverRecord{StartMs: float64(k) * 100, EndMs: float64(k+1) * 100, ProbeMissed: 1}
		} else {
			o.Windows++
		}
		o.WorstLateMs, o.WorstHiccupMs, o.WorstProbeMs = max(o.WorstLateMs, r.LateMs), max(o.WorstHiccupMs, r.HiccupMs), max(o.WorstProbeMs, r.ProbeMs)
		o.ProbeMissed += r.ProbeMissed
		if healthy(r) {
			cur = nil
			continue
		}
		o.Unhealthy++
		if cur == nil {
			o.Blind = append(o.Blind, record.ObserverSpan{StartMs: r.StartMs})
			cur = &o.Blind[len(o.Blind)-1]
		}
		cur.EndMs = float64(k+1) * 100
		cur.LateMs, cur.HiccupMs, cur.ProbeMs = max(cur.LateMs, r.LateMs), max(cur.HiccupMs, r.HiccupMs), max(cur.ProbeMs, r.ProbeMs)
		cur.ProbeMissed += r.ProbeMissed
	}
	return o
}

// ObserverSaw judges a stalled span [from, to] against the observer: seen
// is the part of it in windows where the observer was healthy (the record
// covers it and no measure was past its limit); evidence, when the rest is
// not empty, says what the observer saw there in words.
func ObserverSaw(o *record.Observer, from, to float64) (seenMs float64, evidence string) {
	span := to - from
	if span <= 0 {
		return 0, ""
	}
	unseen := 0.0
	// Outside the record: nothing says the observer could see.
	uncovered := math.Max(0, math.Min(to, o.FromMs)-from) + math.Max(0, to-math.Max(from, o.ToMs))
	if o.ToMs <= o.FromMs {
		uncovered = span
	}
	unseen += math.Min(span, uncovered)
	var worst record.ObserverSpan
	for _, b := range o.Blind {
		ov := math.Min(to, b.EndMs) - math.Max(from, b.StartMs)
		if ov <= 0 {
			continue
		}
		unseen += ov
		worst.LateMs, worst.HiccupMs, worst.ProbeMs = max(worst.LateMs, b.LateMs), max(worst.HiccupMs, b.HiccupMs), max(worst.ProbeMs, b.ProbeMs)
		worst.ProbeMissed += b.ProbeMissed
	}
	unseen = math.Min(unseen, span)
	if unseen == 0 {
		return span, ""
	}
	var saw []string
	if worst.LateMs > ObserverMaxLateMs {
		saw = append(saw, fmt.Sprintf("the load ran %s late", words.FmtMs(worst.LateMs)))
	}
	if worst.HiccupMs > ObserverMaxHiccupMs {
		saw = append(saw, fmt.Sprintf("the Go runtime woke %s late", words.FmtMs(worst.HiccupMs)))
	}
	if worst.ProbeMs > ObserverMaxProbeMs {
		saw = append(saw, fmt.Sprintf("the control probe waited %s", words.FmtMs(worst.ProbeMs)))
	}
	if worst.ProbeMissed > 0 {
		saw = append(saw, fmt.Sprintf("%s went unanswered", words.Plural(worst.ProbeMissed, "control probe")))
	}
	if uncovered > 0 {
		saw = append(saw, fmt.Sprintf("the observer's record has nothing for %s of it", words.FmtMs(math.Min(span, uncovered))))
	}
	return span - unseen, words.JoinAnd(saw)
}

// observerStallReason judges one stall above the limit: "" when the
// observer saw more than the limit of it healthy (nginx's stall, a fail),
// else why it is the machine's (an error).
func observerStallReason(s *record.Scenario, p record.Phase, what string, ms, from float64) string {
	if s.Observer == nil {
		return ""
	}
	seen, evidence := ObserverSaw(s.Observer, from, from+ms)
	if seen > s.MaxStallMs {
		return ""
	}
	return fmt.Sprintf("%s of %s in %s (%s–%s), but %s: the machine, not nginx — the observer was healthy for only %s of it, not above the limit of %s",
		what, words.FmtMs(ms), p.Name, words.FmtMs(from), words.FmtMs(from+ms), evidence, words.FmtMs(seen), words.FmtMs(s.MaxStallMs))
}

// BlindStall says why a phase's stall above the limit is the machine's:
// each of its long request and its long gap that is above the limit was
// seen healthy for no more than the limit. Nil when either was seen longer
// (nginx's stall), or without an observer's record (judged as before).
func BlindStall(s *record.Scenario, p record.Phase) []string {
	if s.Observer == nil {
		return nil
	}
	var why []string
	for _, c := range []struct {
		what      string
		ms, start float64
	}{{"the longest request", p.MaxMs, p.MaxStartMs}, {"the longest gap without a response", p.GapMs, p.GapStartMs}} {
		if c.ms <= s.MaxStallMs {
			continue
		}
		r := observerStallReason(s, p, c.what, c.ms, c.start)
		if r == "" {
			return nil
		}
		why = append(why, r)
	}
	return why
}
