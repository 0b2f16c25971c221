package words

import (
	"fmt"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// KnownLossWords says a known loss seen in one line: "5 in one-worker
// (reset: 5; nginx's log: never-reached-a-worker: 5), reuseport-queue-reset".
func KnownLossWords(k record.KnownLossSeen) string {
	w := fmt.Sprintf("%d in %s (%s", k.Count, k.Phase, ClassSummary(k.ByClass))
	if len(k.Witness) > 0 {
		w += "; nginx's log: " + ClassSummary(k.Witness)
	}
	return w + "), " + k.Name
}

// KnownLossLines are the known losses a run had, for people: what, where,
// why, and the remedy.
func KnownLossLines(s *record.Scenario) []string {
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

// PassesWithKnownLoss counts the passing runs that had a known loss.
func PassesWithKnownLoss(runs []record.Scenario) int {
	n := 0
	for i := range runs {
		if runs[i].PassWithKnownLoss() {
			n++
		}
	}
	return n
}

// KnownLossNote is " (1 with a known loss)" for a report's verdict line
// (or "").
func KnownLossNote(r *record.Report) string {
	if n := PassesWithKnownLoss(r.Scenarios); n > 0 {
		return fmt.Sprintf(" (%d with a known loss)", n)
	}
	return ""
}

// KnownLossVerdictWords says what the known losses did to the verdict.
func KnownLossVerdictWords(s *record.Scenario) string {
	if s.Strict {
		return "the run is strict: they fail it"
	}
	return "they do not fail the scenario; run --strict fails them"
}
