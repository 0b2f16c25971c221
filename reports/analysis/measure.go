package analysis

import (
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Measure streams a scenario's load records — results.gob and the side
// records of connections, retries, downloads, the observer, traffic kinds,
// targets, long-held connections and nginx's own witness — into s's
// phases, timeline and figures. files are what record.ReadScenario read
// beside s; witnessRequired says the record must hold nginx's witness
// (judge.WitnessRequired). What is missing or unreadable goes to s's
// Problems; s gets no verdict here.
func Measure(dir string, s *record.Scenario, files record.Files, witnessRequired bool) {
	path := func(name string) string { return filepath.Join(dir, name) }
	meta, problem, note := files.Meta, s.AddProblem, s.AddNote
	phases := newPhaseSet(s.Steps)
	tl := newTimelineAcc()
	acc := &resultsAcc{phases: phases, timeline: tl}
	if files.Start != nil {
		acc.start = *files.Start
		if witnessRequired || record.Exists(path(record.WitnessFile)) {
			acc.witness = &witnessAcc{}
		}
		bounds := resultBounds{endMs: files.End.EndMs, haveEnd: s.Ended}
		readResults(path(loadgen.ResultsFile), acc, bounds, problem)
		readSideRecords(dir, s, meta, phases, tl, problem, note)
		readObserver(dir, s, meta, problem, note)
		readTraffic(dir, s, meta, phases, acc, problem)
		readTargets(dir, s, meta, acc, problem)
		if acc.witness != nil {
			acc.witness.readSideClients(dir, meta, problem)
		}
		s.LongConnections = readLongConnections(dir, s, meta, phases, problem)
	}

	finishScenario(s, acc, phases, tl)
	if files.Start != nil && !acc.start.IsZero() {
		w := acc.witness
		if w == nil {
			w = &witnessAcc{}
		}
		applyWitness(dir, s, w, acc.start, witnessRequired, problem)
	}
}
