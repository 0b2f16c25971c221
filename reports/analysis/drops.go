package analysis

import (
	"fmt"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// DropReasons says what was lost, phase by phase, but for the phases whose
// every loss is a known one.
func DropReasons(s *record.Scenario, known map[string]bool) []string {
	out := []string{}
	for _, p := range s.Phases {
		if known[p.Name] {
			continue
		}
		if p.Failed > 0 {
			out = append(out, fmt.Sprintf("%s failed in %s (%s)", words.Plural(p.Failed, "request"), p.Name, words.ClassSummary(p.ByClass)))
		}
		out = append(out, CloseLosses(p)...)
	}
	return out
}

// CloseLosses says what a phase lost besides failed requests: requests
// replayed after a server close, cut downloads, the other kinds' drops.
func CloseLosses(p record.Phase) []string {
	var out []string
	if p.Retried > 0 {
		out = append(out, fmt.Sprintf("%s retried by the client after the server closed the connection under them in %s",
			words.Plural(p.Retried, "request"), p.Name))
	}
	if p.SlowCut > 0 {
		out = append(out, fmt.Sprintf("%s cut in %s", words.Plural(p.SlowCut, "long download"), p.Name))
	}
	for _, w := range TrafficDropWords(p) {
		out = append(out, w+" in "+p.Name)
	}
	return out
}
