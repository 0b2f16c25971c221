package reports

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
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

// ObserverPlan is meta.json's word that the run recorded the observer's
// health (loadgen.ObserverFile); a record without it was made before the
// observer, and its stalls are judged as they were then.
type ObserverPlan struct {
	File            string  `json:"file"`
	WindowMs        float64 `json:"window_ms"`
	ProbeIntervalMs float64 `json:"probe_interval_ms"`
	HiccupSleepMs   float64 `json:"hiccup_sleep_ms"`
}

// NewObserverPlan is the plan of loadgen's observer.
func NewObserverPlan() *ObserverPlan {
	return &ObserverPlan{File: loadgen.ObserverFile, WindowMs: float64(loadgen.ObserverWindow.Milliseconds()),
		ProbeIntervalMs: float64(loadgen.ProbeInterval.Milliseconds()), HiccupSleepMs: float64(loadgen.HiccupInterval.Milliseconds())}
}

// Observer is the observer's health over the run, as report.json gives it:
// what the record covers, the worst of each measure, and the spans of
// windows in which the observer was not healthy (what the stall rule
// subtracts from a stall).
type Observer struct {
	Windows   int     `json:"windows"`
	FromMs    float64 `json:"from_ms"` // the record covers [FromMs, ToMs)
	ToMs      float64 `json:"to_ms"`
	Unhealthy int     `json:"unhealthy_windows"`
	// The worst window's measures (loadgen.ObserverRecord).
	WorstLateMs   float64 `json:"worst_late_ms"`
	WorstHiccupMs float64 `json:"worst_hiccup_ms"`
	WorstProbeMs  float64 `json:"worst_probe_ms"`
	ProbeMissed   int     `json:"probe_missed"`
	// Blind are the runs of consecutive unhealthy windows, each with its
	// worst measures.
	Blind []ObserverSpan `json:"blind"`
}

// ObserverSpan is a run of windows in which the observer was not healthy.
type ObserverSpan struct {
	StartMs     float64 `json:"start_ms"`
	EndMs       float64 `json:"end_ms"`
	LateMs      float64 `json:"late_ms"`
	HiccupMs    float64 `json:"hiccup_ms"`
	ProbeMs     float64 `json:"probe_ms"`
	ProbeMissed int     `json:"probe_missed"`
}

func healthy(r *loadgen.ObserverRecord) bool {
	return r.LateMs <= ObserverMaxLateMs && r.HiccupMs <= ObserverMaxHiccupMs && r.ProbeMs <= ObserverMaxProbeMs && r.ProbeMissed == 0
}

// readObserver reads observer.jsonl into s.Observer. A record made before
// the observer (no plan in meta.json) gets a note and is judged as before;
// one whose plan names the file and lacks it, or has it unreadable, has a
// problem: its stalls cannot be judged.
func readObserver(dir string, s *Scenario, meta *Meta, problem, note func(string, ...any)) {
	if meta.Observer == nil {
		note("recorded before the observer's health was measured (no observer in %s): a stall above the limit is judged nginx's without it", MetaFile)
		return
	}
	name := meta.Observer.File
	if name == "" {
		name = loadgen.ObserverFile
	}
	// One record per window, merged: a supplement line adds to its window.
	byWindow := map[int64]*loadgen.ObserverRecord{}
	err := readJSONL(filepath.Join(dir, name), func(r *loadgen.ObserverRecord) {
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
	case errors.Is(err, errMissing):
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
func summariseObserver(byWindow map[int64]*loadgen.ObserverRecord) *Observer {
	o := &Observer{Blind: []ObserverSpan{}}
	if len(byWindow) == 0 {
		return o
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for k := range byWindow {
		lo, hi = min(lo, k), max(hi, k)
	}
	o.FromMs, o.ToMs = float64(lo)*100, float64(hi+1)*100
	var cur *ObserverSpan
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
			o.Blind = append(o.Blind, ObserverSpan{StartMs: r.StartMs})
			cur = &o.Blind[len(o.Blind)-1]
		}
		cur.EndMs = float64(k+1) * 100
		cur.LateMs, cur.HiccupMs, cur.ProbeMs = max(cur.LateMs, r.LateMs), max(cur.HiccupMs, r.HiccupMs), max(cur.ProbeMs, r.ProbeMs)
		cur.ProbeMissed += r.ProbeMissed
	}
	return o
}

// observerSaw judges a stalled span [from, to] against the observer: seen
// is the part of it in windows where the observer was healthy (the record
// covers it and no measure was past its limit); evidence, when the rest is
// not empty, says what the observer saw there in words.
func observerSaw(o *Observer, from, to float64) (seenMs float64, evidence string) {
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
	var worst ObserverSpan
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
	var words []string
	if worst.LateMs > ObserverMaxLateMs {
		words = append(words, fmt.Sprintf("the load ran %s late", fmtMs(worst.LateMs)))
	}
	if worst.HiccupMs > ObserverMaxHiccupMs {
		words = append(words, fmt.Sprintf("the Go runtime woke %s late", fmtMs(worst.HiccupMs)))
	}
	if worst.ProbeMs > ObserverMaxProbeMs {
		words = append(words, fmt.Sprintf("the control probe waited %s", fmtMs(worst.ProbeMs)))
	}
	if worst.ProbeMissed > 0 {
		words = append(words, fmt.Sprintf("%s went unanswered", plural(worst.ProbeMissed, "control probe")))
	}
	if uncovered > 0 {
		words = append(words, fmt.Sprintf("the observer's record has nothing for %s of it", fmtMs(math.Min(span, uncovered))))
	}
	return span - unseen, joinAnd(words)
}

// observerStallReason judges one stall above the limit: "" when the
// observer saw more than the limit of it healthy (nginx's stall, a fail),
// else why it is the machine's (an error).
func observerStallReason(s *Scenario, p Phase, what string, ms, from float64) string {
	if s.Observer == nil {
		return ""
	}
	seen, evidence := observerSaw(s.Observer, from, from+ms)
	if seen > s.MaxStallMs {
		return ""
	}
	return fmt.Sprintf("%s of %s in %s (%s–%s), but %s: the machine, not nginx — the observer was healthy for only %s of it, not above the limit of %s",
		what, fmtMs(ms), p.Name, fmtMs(from), fmtMs(from+ms), evidence, fmtMs(seen), fmtMs(s.MaxStallMs))
}

func joinAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// blindStall says why a phase's stall above the limit is the machine's:
// each of its long request and its long gap that is above the limit was
// seen healthy for no more than the limit. Nil when either was seen longer
// (nginx's stall), or without an observer's record (judged as before).
func blindStall(s *Scenario, p Phase) []string {
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

// ObserverLimits are the limits of a healthy window, as report.json states
// them beside the stall limit.
type ObserverLimits struct {
	WindowMs    float64 `json:"window_ms"`
	MaxLateMs   float64 `json:"max_late_ms"`
	MaxHiccupMs float64 `json:"max_hiccup_ms"`
	MaxProbeMs  float64 `json:"max_probe_ms"`
}

// plotObserver is the observer's band under the plot: green where the
// record covers the run and the observer was healthy, red where it was
// blind (each blind span titled with what it saw), blank where nothing was
// recorded.
type plotObserver struct {
	Y       float64
	Covered plotBar
	Blind   []plotBar
	Caption string
}

func observerBand(o *Observer, top float64, x func(float64) float64) *plotObserver {
	b := &plotObserver{Y: top, Caption: fmt.Sprintf("observer: green could see, red blind (load over %s late, runtime or probe over %s)",
		fmtMs(ObserverMaxLateMs), fmtMs(ObserverMaxProbeMs))}
	if o.ToMs > o.FromMs {
		b.Covered = plotBar{X: x(o.FromMs), Y: top, W: math.Max(1, x(o.ToMs)-x(o.FromMs)), H: genRow - 3,
			Title: fmt.Sprintf("observer recorded %s–%s: %d windows, %d blind", fmtMs(o.FromMs), fmtMs(o.ToMs), o.Windows, o.Unhealthy)}
	}
	for _, sp := range o.Blind {
		_, words := observerSaw(&Observer{FromMs: o.FromMs, ToMs: o.ToMs, Blind: []ObserverSpan{sp}}, sp.StartMs, sp.EndMs)
		b.Blind = append(b.Blind, plotBar{X: x(sp.StartMs), Y: top, W: math.Max(1.5, x(sp.EndMs)-x(sp.StartMs)), H: genRow - 3,
			Title: fmt.Sprintf("%s–%s: %s", fmtMs(sp.StartMs), fmtMs(sp.EndMs), words)})
	}
	return b
}

// observerLine sums the observer up for report.md ("" without a record).
func observerLine(o *Observer) string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("Observer: %d windows of 100 ms recorded, %d blind (worst: the load %s late, the runtime %s, the control probe %s; %d control probes missed).",
		o.Windows, o.Unhealthy, fmtMs(o.WorstLateMs), fmtMs(o.WorstHiccupMs), fmtMs(o.WorstProbeMs), o.ProbeMissed)
}
