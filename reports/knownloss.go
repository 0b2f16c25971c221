package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// KnownLoss is a loss a path is known to cause, for a stated reason: the
// phases it falls in, what the client sees of it (failure classes, and
// whether net/http replays it), what nginx's own log must make of each one,
// and at most how many. A zero-drops scenario whose every loss is a known
// one passes with the known loss reported beside the verdict; any loss of
// another class, in another phase, or above the bound fails as before, and
// a strict run (run --strict) fails the known ones too.
type KnownLoss struct {
	Name    string   `json:"name"`    // what it is: "reuseport-queue-reset", "keepalive-close-race"
	Phases  []string `json:"phases"`  // the phases it may fall in
	Classes []string `json:"classes"` // the client's failure classes it may show
	// Retried: requests net/http replayed after the server closed the
	// connection under them are part of it (the keep-alive close race).
	Retried bool `json:"retried,omitempty"`
	// Witness: when nginx's log was kept, every drop in those phases must
	// be reconciled as one of these (e.g. never-reached-a-worker): a
	// request a worker read and lost is not this loss.
	Witness []string `json:"witness_classes,omitempty"`
	// Max bounds the loss over all its phases (0: no bound).
	Max    int    `json:"max,omitempty"`
	Why    string `json:"why"`
	Remedy string `json:"remedy,omitempty"`
}

// KnownLossSeen is a known loss a run had: where, how many, of what.
type KnownLossSeen struct {
	Name    string         `json:"name"`
	Phase   string         `json:"phase"`
	Count   int            `json:"count"`
	ByClass map[string]int `json:"by_class"`          // the client's classes, "retried" for replays
	Witness map[string]int `json:"witness,omitempty"` // nginx's log's classes (empty: no log kept)
	Why     string         `json:"why"`
	Remedy  string         `json:"remedy,omitempty"`
}

// retriedClass counts, in KnownLossSeen.ByClass, the requests net/http
// replayed after a server close.
const retriedClass = "retried"

// knownLossJudgement is which phases' losses a run's known losses explain,
// and why the others do not.
type knownLossJudgement struct {
	seen      []KnownLossSeen
	explained map[string]bool // phase name → every loss in it is known
	// notKnown says, for a phase a known loss names but does not explain,
	// what set it apart (another class, the log's word, the bound).
	notKnown []string
}

// judgeKnownLosses matches every phase that lost something against the
// scenario's known losses. A phase is explained when one known loss names
// it and every loss in it fits that loss: failed requests of its classes
// only, replays only if it allows them, nothing else lost (no cut download,
// no other kind's drop), every drop the server's log reconciled of its
// witness classes — and its phases together stay within its bound.
func judgeKnownLosses(s *Scenario) knownLossJudgement {
	j := knownLossJudgement{explained: map[string]bool{}}
	if len(s.KnownLosses) == 0 || s.Expect != ExpectZeroDrops {
		return j
	}
	type match struct {
		phase Phase
		seen  KnownLossSeen
	}
	matched := make([][]match, len(s.KnownLosses))
	for _, p := range s.Phases {
		if phaseLost(p) == 0 {
			continue
		}
		var why []string
		for i, k := range s.KnownLosses {
			if !slices.Contains(k.Phases, p.Name) {
				continue
			}
			seen, miss := fitKnownLoss(s, p, k)
			if miss != "" {
				why = append(why, fmt.Sprintf("not the known loss %s: %s", k.Name, miss))
				continue
			}
			matched[i] = append(matched[i], match{p, seen})
			why = nil
			break
		}
		for _, w := range why {
			j.notKnown = append(j.notKnown, fmt.Sprintf("%d lost in %s, %s", phaseLost(p), p.Name, w))
		}
	}
	for i, k := range s.KnownLosses {
		total := 0
		for _, m := range matched[i] {
			total += m.seen.Count
		}
		if k.Max > 0 && total > k.Max {
			var where []string
			for _, m := range matched[i] {
				where = append(where, m.phase.Name)
			}
			j.notKnown = append(j.notKnown, fmt.Sprintf("%d lost in %s, above the bound of %d of the known loss %s: more than it explains",
				total, strings.Join(where, ", "), k.Max, k.Name))
			continue
		}
		for _, m := range matched[i] {
			j.explained[m.phase.Name] = true
			j.seen = append(j.seen, m.seen)
		}
	}
	sort.SliceStable(j.seen, func(a, b int) bool { return phaseIndex(s, j.seen[a].Phase) < phaseIndex(s, j.seen[b].Phase) })
	return j
}

// fitKnownLoss says whether every loss of phase p is the known loss k, and
// if not, what is not.
func fitKnownLoss(s *Scenario, p Phase, k KnownLoss) (KnownLossSeen, string) {
	seen := KnownLossSeen{Name: k.Name, Phase: p.Name, ByClass: map[string]int{}, Why: k.Why, Remedy: k.Remedy}
	if w := trafficDropWords(p); len(w) > 0 {
		return seen, strings.Join(w, ", ")
	}
	if p.SlowCut > 0 {
		return seen, plural(p.SlowCut, "long download") + " cut"
	}
	for _, c := range sortedClasses(p.ByClass) {
		if c == ClassCancelled || p.ByClass[c] == 0 {
			continue
		}
		if !slices.Contains(k.Classes, c) {
			return seen, fmt.Sprintf("%d failed with %s (it shows %s)", p.ByClass[c], c, strings.Join(k.Classes, ", "))
		}
		seen.ByClass[c] = p.ByClass[c]
		seen.Count += p.ByClass[c]
	}
	if p.Retried > 0 {
		if !k.Retried {
			return seen, plural(p.Retried, "request") + " replayed by the client after a server close (it has none)"
		}
		seen.ByClass[retriedClass] = p.Retried
		seen.Count += p.Retried
	}
	if w := s.Witness; len(k.Witness) > 0 && w != nil && w.Present {
		if w.DropsCount > len(w.Drops) {
			return seen, fmt.Sprintf("nginx's log reconciled %d drops, more than the %d listed one by one: not every one can be checked",
				w.DropsCount, len(w.Drops))
		}
		seen.Witness = map[string]int{}
		for _, d := range w.Drops {
			if d.Phase != p.Name || d.Class == WitnessCanceled {
				continue
			}
			if !slices.Contains(k.Witness, d.Class) {
				return seen, fmt.Sprintf("nginx's log shows request %s as %s (it is %s)", d.ID, d.Class, strings.Join(k.Witness, ", "))
			}
			seen.Witness[d.Class]++
		}
	}
	return seen, ""
}

// phaseLost is every loss of a phase, in the units dropped counts.
func phaseLost(p Phase) int {
	n := p.Retried + p.SlowCut + p.StreamsRetriedUnsafe + p.WebSocketsDropped + p.MessagesLost + p.UploadsCut
	for c, k := range p.ByClass {
		if c != ClassCancelled {
			n += k
		}
	}
	return n
}

func phaseIndex(s *Scenario, name string) int {
	for i, p := range s.Phases {
		if p.Name == name {
			return i
		}
	}
	return len(s.Phases)
}

// KnownLossWords says a known loss seen in one line: "5 in one-worker
// (reset: 5; nginx's log: never-reached-a-worker: 5), reuseport-queue-reset".
func KnownLossWords(k KnownLossSeen) string {
	w := fmt.Sprintf("%d in %s (%s", k.Count, k.Phase, classSummary(k.ByClass))
	if len(k.Witness) > 0 {
		w += "; nginx's log: " + classSummary(k.Witness)
	}
	return w + "), " + k.Name
}

// knownLossReasons are the strict run's failures: each known loss seen.
func knownLossReasons(seen []KnownLossSeen) []string {
	var out []string
	for _, k := range seen {
		out = append(out, fmt.Sprintf("%s lost in %s (%s): the known loss %s, failed because the run is strict",
			plural(k.Count, "request"), k.Phase, classSummary(k.ByClass), k.Name))
	}
	return out
}

// PassWithKnownLoss tells a pass that lost only what it is known to lose
// from a clean pass.
func (s *Scenario) PassWithKnownLoss() bool {
	return s.Verdict == VerdictPass && len(s.KnownLossSeen) > 0
}

// KnownLossLines are the known losses a run had, for people: what, where,
// why, and the remedy.
func KnownLossLines(s *Scenario) []string {
	var out []string
	for _, k := range s.KnownLossSeen {
		line := fmt.Sprintf("known loss: %s — %s", KnownLossWords(k), k.Why)
		if k.Remedy != "" {
			line += "; remedy: " + k.Remedy
		}
		out = append(out, line)
	}
	return out
}

// passesWithKnownLoss counts the passing runs that had a known loss.
func passesWithKnownLoss(runs []Scenario) int {
	n := 0
	for i := range runs {
		if runs[i].PassWithKnownLoss() {
			n++
		}
	}
	return n
}

// knownLossNote is ", 1 with a known loss" for a verdict line (or "").
func knownLossNote(runs []Scenario) string {
	if n := passesWithKnownLoss(runs); n > 0 {
		return fmt.Sprintf(" (%d with a known loss)", n)
	}
	return ""
}

// KnownLossNote is knownLossNote of a report's scenario runs.
func KnownLossNote(r *Report) string { return knownLossNote(r.Scenarios) }

// knownLossVerdictWords says what the known losses did to the verdict.
func knownLossVerdictWords(s *Scenario) string {
	if s.Strict {
		return "the run is strict: they fail it"
	}
	return "they do not fail the scenario; run --strict fails them"
}
