package judge

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// retriedClass counts, in KnownLossSeen.ByClass, the requests net/http
// replayed after a server close.
const retriedClass = "retried"

// knownLossJudgement is which phases' losses a run's known losses explain,
// and why the others do not.
type knownLossJudgement struct {
	seen      []record.KnownLossSeen
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
func judgeKnownLosses(s *record.Scenario) knownLossJudgement {
	j := knownLossJudgement{explained: map[string]bool{}}
	if len(s.KnownLosses) == 0 || s.Expect != record.ExpectZeroDrops {
		return j
	}
	type match struct {
		phase record.Phase
		seen  record.KnownLossSeen
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
func fitKnownLoss(s *record.Scenario, p record.Phase, k record.KnownLoss) (record.KnownLossSeen, string) {
	seen := record.KnownLossSeen{Name: k.Name, Phase: p.Name, ByClass: map[string]int{}, Why: k.Why, Remedy: k.Remedy}
	if w := analysis.TrafficDropWords(p); len(w) > 0 {
		return seen, strings.Join(w, ", ")
	}
	if p.SlowCut > 0 {
		return seen, words.Plural(p.SlowCut, "long download") + " cut"
	}
	for _, c := range words.SortedClasses(p.ByClass) {
		if c == record.ClassCancelled || p.ByClass[c] == 0 {
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
			return seen, words.Plural(p.Retried, "request") + " replayed by the client after a server close (it has none)"
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
			if d.Phase != p.Name || d.Class == record.WitnessCanceled {
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
func phaseLost(p record.Phase) int {
	n := p.Retried + p.SlowCut + p.StreamsRetriedUnsafe + p.WebSocketsDropped + p.MessagesLost + p.UploadsCut
	for c, k := range p.ByClass {
		if c != record.ClassCancelled {
			n += k
		}
	}
	return n
}

func phaseIndex(s *record.Scenario, name string) int {
	for i, p := range s.Phases {
		if p.Name == name {
			return i
		}
	}
	return len(s.Phases)
}

// knownLossReasons are the strict run's failures: each known loss seen.
func knownLossReasons(seen []record.KnownLossSeen) []string {
	var out []string
	for _, k := range seen {
		out = append(out, fmt.Sprintf("%s lost in %s (%s): the known loss %s, failed because the run is strict",
			words.Plural(k.Count, "request"), k.Phase, words.ClassSummary(k.ByClass), k.Name))
	}
	return out
}
