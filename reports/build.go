package reports

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Build reads every scenario directory under dir (a run directory) and
// returns the report, scenarios ordered by their start. A scenario whose
// files are missing or cut short still gets its entry, with verdict error
// and the reason; only an unreadable dir, or one with no scenario in it, is
// an error.
func Build(dir string) (*Report, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read run directory: %w", err)
	}
	type built struct {
		s     Scenario
		meta  *Meta
		start time.Time
	}
	var all []built
	for _, e := range entries {
		if !e.IsDir() || !isScenarioDir(filepath.Join(dir, e.Name())) {
			continue
		}
		s, meta, err := BuildScenario(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		b := built{s: *s, meta: meta}
		if meta != nil {
			b.start, _ = time.Parse(time.RFC3339Nano, meta.StartWall)
		}
		all = append(all, b)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("read run directory %s: no scenario directory in it (none holds %s, %s, %s or %s)",
			dir, MetaFile, EventsFile, loadgen.ResultsFile, ErrorFile)
	}
	// Scenarios in the order they ran; those without a start last, by name.
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.start.IsZero() != b.start.IsZero() {
			return !a.start.IsZero()
		}
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.s.Name < b.s.Name
	})
	r := &Report{Schema: Schema, Scenarios: make([]Scenario, 0, len(all))}
	for _, b := range all {
		if b.meta != nil && r.From == "" && r.To == "" {
			r.From, r.To, r.Load = b.meta.From, b.meta.To, b.meta.Load
			r.FromBuild, r.ToBuild = b.meta.FromBuild, b.meta.ToBuild
		}
		if r.Site == nil && b.s.Site != nil {
			r.Site = b.s.Site
		}
		r.Scenarios = append(r.Scenarios, b.s)
	}
	r.Repeat = 1
	judgeRun(r, nil)
	return r, nil
}

func isScenarioDir(dir string) bool {
	for _, f := range []string{MetaFile, EventsFile, loadgen.ResultsFile, ErrorFile} {
		if exists(filepath.Join(dir, f)) {
			return true
		}
	}
	return false
}

// BuildScenario reads one scenario directory and judges it. The error is
// only for what no report can be made of (an unreadable directory); the
// Meta is nil when meta.json could not be read.
func BuildScenario(dir string) (*Scenario, *Meta, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("read scenario %s: %w", dir, err)
	}
	s := &Scenario{
		Name:     filepath.Base(dir),
		Reasons:  []string{},
		Steps:    []Step{},
		Phases:   []Phase{},
		Failures: []Failure{},
		Drops:    []string{},
		Problems: []string{},
		Traffic:  []TrafficRow{},
	}
	// A file is read by several readers: a bad one is said once.
	problem := func(format string, args ...any) {
		if p := fmt.Sprintf(format, args...); !slices.Contains(s.Problems, p) {
			s.Problems = append(s.Problems, p)
		}
	}
	note := func(format string, args ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, args...)) }
	path := func(name string) string { return filepath.Join(dir, name) }

	if exists(path(ErrorFile)) {
		line, err := readFirstLine(path(ErrorFile))
		if err != nil {
			line = fmt.Sprintf("(%s unreadable: %v)", ErrorFile, err)
		}
		s.Error = line
	}

	var meta *Meta
	var m Meta
	if err := readJSON(path(MetaFile), &m); err != nil {
		problem("%v: the run's clock and expectation are unknown", err)
	} else {
		meta = &m
		if m.Scenario != "" {
			s.Name = m.Scenario
		}
		s.Expect, s.Load, s.LoadPath, s.StartWall = m.Expect, m.Load, m.LoadPath, m.StartWall
		s.SteadyMs, s.PlannedSteps, s.MaxStallMs, s.ExpectDrops = m.SteadyMs, m.PlannedSteps, m.MaxStallMs, m.ExpectDrops
		s.KnownLosses, s.Strict = m.KnownLosses, m.Strict
		s.Notes = append(s.Notes, m.Notes...)
		s.Site = m.Site
		s.From, s.To, s.Thresholds = m.From, m.To, thresholdsOf(&m)
		s.FromBuild, s.ToBuild = m.FromBuild, m.ToBuild
	}

	var events []Event
	if err := readJSONL(path(EventsFile), func(e *Event) { events = append(events, *e) }); err != nil {
		problem("%v", err)
	}
	// Steps are appended as they end; the clock orders them.
	sort.SliceStable(events, func(i, j int) bool { return events[i].SentMs < events[j].SentMs })
	for _, e := range events {
		phase := e.Phase
		if phase == "" {
			phase = e.Name
		}
		s.Steps = append(s.Steps, Step{
			Name: e.Name, Signal: e.Signal, PID: e.PID, PIDs: e.PIDs, SentMs: e.SentMs, VerifiedMs: e.VerifiedMs,
			Verified: e.Verified, Error: e.Error, Expected: e.Expected, ExpectedCause: e.ExpectedCause,
			Phase: phase, LogLines: e.LogLines,
		})
	}
	// A run stops at a step that failed unexpectedly: the steps after it
	// were never meant to run then.
	stoppedAtFailure := len(s.Steps) > 0 && !s.Steps[len(s.Steps)-1].Verified && s.Steps[len(s.Steps)-1].Expected != ExpectFail
	if meta != nil && meta.PlannedSteps != nil && len(events) < len(meta.PlannedSteps) && s.Error == "" && !stoppedAtFailure {
		var missing []string
		for _, ps := range meta.PlannedSteps[len(events):] {
			missing = append(missing, ps.Name)
		}
		problem("%d of %d planned steps recorded: %s never ran", len(events), len(meta.PlannedSteps), strings.Join(missing, ", "))
	}

	var final Final
	switch err := readJSON(path(FinalFile), &final); {
	case err == nil:
		s.Final = &final
	case errors.Is(err, errMissing):
		if s.Error == "" {
			problem("%s missing: the final state was never read, so nothing can be said of what nginx was left in", FinalFile)
		}
	default:
		problem("%v", err)
	}

	s.Faults = []FaultRecord{}
	byName := map[string]int{}
	switch err := readJSONL(path(FaultsFile), func(f *FaultRecord) {
		if i, ok := byName[f.Name+"@"+f.Step]; ok {
			s.Faults[i] = *f
			return
		}
		byName[f.Name+"@"+f.Step] = len(s.Faults)
		s.Faults = append(s.Faults, *f)
	}); {
	case err == nil, errors.Is(err, errMissing):
	default:
		problem("%v", err)
	}
	for _, f := range s.Faults {
		if f.Error != "" {
			problem("fault %s could not be injected or healed: %s", f.Name, f.Error)
		}
	}

	var end End
	switch err := readJSON(path(EndFile), &end); {
	case err == nil:
		s.Ended = true
	case errors.Is(err, errMissing):
		if s.Error == "" {
			problem("no end-of-run marker (%s): the run was killed or interrupted before it finished, whatever its files hold", EndFile)
		}
	default:
		problem("%v", err)
	}

	phases := newPhaseSet(s.Steps)
	tl := newTimelineAcc()
	acc := &resultsAcc{phases: phases, timeline: tl}
	keepsWitness := false
	if meta != nil {
		start, err := time.Parse(time.RFC3339Nano, meta.StartWall)
		if err != nil {
			problem("meta.json start_wall %q: %v", meta.StartWall, err)
		} else {
			acc.start = start
			keepsWitness = witnessRequired(dir, s, meta, problem, note)
			if keepsWitness || exists(path(WitnessFile)) {
				acc.witness = &witnessAcc{}
			}
			bounds := resultBounds{endMs: end.EndMs, haveEnd: s.Ended}
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
	}

	finishScenario(s, acc, phases, tl)
	if meta != nil && !acc.start.IsZero() {
		w := acc.witness
		if w == nil {
			w = &witnessAcc{}
		}
		applyWitness(dir, s, w, acc.start, keepsWitness, problem)
	}
	s.Verdict, s.Reasons = Judge(s)
	return s, meta, nil
}

// readResults streams results.gob once through acc. A file cut short (a run
// killed half-way) keeps what was decoded and records the problem; results
// outside the run's bounds are left out, and named in one problem.
func readResults(path string, acc *resultsAcc, bounds resultBounds, problem func(string, ...any)) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		problem("%s missing: no request was recorded", loadgen.ResultsFile)
		return
	}
	if err != nil {
		problem("%s: %v", loadgen.ResultsFile, err)
		return
	}
	defer f.Close()
	dec := vegeta.NewDecoder(bufio.NewReaderSize(f, 256<<10))
	var r vegeta.Result
	var bad impossibleResults
	read := 0
	defer func() {
		if why := bad.reason(loadgen.ResultsFile, read); why != "" {
			problem("%s", why)
		}
	}()
	for {
		// gob leaves out zero fields: reset, or the last error leaks into the next result.
		r = vegeta.Result{}
		err := dec.Decode(&r)
		if err == io.EOF {
			return
		}
		if err != nil {
			what := "unreadable"
			if errors.Is(err, io.ErrUnexpectedEOF) {
				what = "truncated"
			}
			problem("%s %s after %d results (%v): the run did not finish writing it", loadgen.ResultsFile, what, read, err)
			return
		}
		read++
		if why := bounds.check(&r, r.Timestamp.Sub(acc.start)); why != "" {
			bad.add(read, why)
			acc.addToWitness(&r)
			continue
		}
		acc.add(&r)
	}
}

// readSideRecords streams retries, connections and downloads into the phases.
func readSideRecords(dir string, s *Scenario, meta *Meta, phases *phaseSet, tl *timelineAcc,
	problem, note func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }

	retriesErr := readJSONL(path(RetriesFile), func(r *RetryRecord) {
		// A replay of a request that was never written on the closed
		// connection lost nothing. One that was written and then failed
		// anyway is already a failed request (or a cut download): count it
		// once. What is left is the close the retry hid: a drop.
		if !r.Written || !r.OK {
			return
		}
		t := msToDuration(r.Ms)
		phases.at(t).retried++
		tl.bucket(t).retried++
		tl.addPoint(t, 0, CauseRetried)
		s.Retried++
	})

	c := &s.Connections
	connsErr := readJSONL(path(loadgen.ConnectionsFile), func(r *loadgen.ConnRecord) {
		p := phases.at(msToDuration(r.EndMs))
		p.conns[r.Outcome]++
		c.Retried += r.Retried
		switch r.Outcome {
		case loadgen.ConnRefused:
			c.Refused++
			return
		case loadgen.ConnDialError:
			c.DialError++
			return
		case loadgen.ConnClosedByServerIdle:
			c.ClosedByServerIdle++
		case loadgen.ConnClosedUnderRequest:
			c.ClosedUnderRequest++
		case loadgen.ConnResetUnderRequest:
			c.Reset++
			c.ResetUnderRequest++
		case loadgen.ConnResetIdle:
			c.Reset++
			c.ResetIdle++
		case loadgen.ConnClosedByClient:
			c.ClosedByClient++
		case loadgen.ConnOpenAtEnd:
			c.OpenAtEnd++
		}
		c.Opened++
	})
	switch {
	case connsErr == nil:
	case errors.Is(connsErr, errMissing):
		note("%s missing: connection outcomes are not counted", loadgen.ConnectionsFile)
	default:
		problem("%v", connsErr)
	}

	switch {
	case retriesErr == nil:
	case errors.Is(retriesErr, errMissing) && connsErr == nil:
		// The connections carry the same count, if not the exact moment.
		note("%s missing: retries counted from %s at the end of the connection they were written on",
			RetriesFile, loadgen.ConnectionsFile)
		if err := readJSONL(path(loadgen.ConnectionsFile), func(r *loadgen.ConnRecord) {
			if r.Retried > 0 {
				t := msToDuration(r.EndMs)
				phases.at(t).retried += r.Retried
				tl.bucket(t).retried += r.Retried
				s.Retried += r.Retried
			}
		}); err != nil {
			problem("%v", err)
		}
	case errors.Is(retriesErr, errMissing):
		problem("%s and %s missing: requests net/http retried after a server close cannot be counted",
			RetriesFile, loadgen.ConnectionsFile)
	default:
		problem("%v", retriesErr)
	}

	held := heldAt(s, meta)
	heldConns := func(r *loadgen.ConnRecord) {
		if held != nil && r.Outcome != loadgen.ConnRefused && r.Outcome != loadgen.ConnDialError &&
			r.OpenMs <= held.VerifiedMs && r.EndMs > held.SentMs {
			held.Connections++
		}
	}
	if held != nil {
		if err := readJSONL(path(loadgen.ConnectionsFile), heldConns); err != nil && !errors.Is(err, errMissing) {
			problem("%v", err)
		}
	}
	keepBefore := -1.0
	if meta.ExpectDrops != nil && meta.ExpectDrops.KeepDownloadsBefore != "" {
		for _, st := range s.Steps {
			if st.Name == meta.ExpectDrops.KeepDownloadsBefore {
				keepBefore = st.SentMs
				break
			}
		}
	}
	downloadsErr := readJSONL(path(loadgen.DownloadsFile), func(d *loadgen.DownloadRecord) {
		s.Slow.Started++
		t := msToDuration(d.EndMs)
		p := phases.at(t)
		expected := d.Expected
		if expected == 0 {
			expected = meta.SlowBytes
		}
		completed := d.Completed && d.Received >= expected
		cancelled := !completed && d.Error == loadgen.DownloadCancelled
		if held != nil {
			if d.StartMs <= held.SentMs && d.EndMs > held.SentMs {
				held.Downloads++
				if !completed && !cancelled {
					held.DownloadsCut++
				}
			}
			if keepBefore >= 0 && d.StartMs < keepBefore {
				held.KeptDownloads++
				if completed {
					held.KeptDownloadsDone++
				}
			}
		}
		switch {
		case completed:
			s.Slow.Completed++
			p.slowDone++
		case cancelled:
			s.Slow.Cancelled++
			p.slowCancelled++
		default:
			s.Slow.Cut++
			p.slowCut++
			tl.bucket(t).slowCut++
			tl.addPoint(t, 0, CauseSlowCut)
		}
	})
	s.Held = held
	switch {
	case downloadsErr == nil:
	case errors.Is(downloadsErr, errMissing) && meta.Load.Slow == 0:
	default:
		problem("%v", downloadsErr)
	}
	if downloadsErr == nil || !errors.Is(downloadsErr, errMissing) {
		if s.Slow.Started < meta.Load.Slow {
			problem("%d long downloads configured, %d recorded: the others never ended", meta.Load.Slow, s.Slow.Started)
		}
	}
}

// heldAt starts the record of what was in flight at the step that opens
// the phase a "drops" expectation names; nil when there is none.
func heldAt(s *Scenario, meta *Meta) *Held {
	if meta.ExpectDrops == nil {
		return nil
	}
	for _, st := range s.Steps {
		if st.Phase == meta.ExpectDrops.Phase {
			h := &Held{Step: st.Name, SentMs: st.SentMs, VerifiedMs: st.VerifiedMs}
			if !st.Verified {
				h.VerifiedMs = st.SentMs
			}
			return h
		}
	}
	return nil
}

// finishScenario closes the aggregates into the report's figures.
func finishScenario(s *Scenario, acc *resultsAcc, phases *phaseSet, tl *timelineAcc) {
	s.Requests = acc.total
	if acc.seenResult {
		s.LoadStartMs = round3(durationToMs(acc.first))
		s.LoadEndMs = round3(durationToMs(acc.last))
		s.EndMs = round3(durationToMs(acc.end))
		if span := acc.last - acc.first; span > 0 {
			s.Rate = round3(float64(acc.total.Total-1) / span.Seconds())
		}
		s.Latency = Latency{
			P50Ms: quantileMs(&acc.latency, 0.50), P90Ms: quantileMs(&acc.latency, 0.90),
			P99Ms: quantileMs(&acc.latency, 0.99), MaxMs: round3(durationToMs(acc.latency.Max)),
		}
	}
	end := acc.end
	if !acc.seenResult && len(s.Steps) > 0 {
		end = msToDuration(s.Steps[len(s.Steps)-1].VerifiedMs)
	}
	// The load sends from its first request to one interval past its last.
	loadFrom, loadTo := acc.first, acc.last
	if s.Load.Rate > 0 {
		loadTo += time.Second / time.Duration(s.Load.Rate)
	}
	var fine fineMeasures
	if acc.seenResult {
		fine = acc.fine.measure(phases, s.Load.Rate, loadFrom, loadTo)
		s.Silent, s.SilentCount = fine.silent, fine.silentCount
	}
	for i, p := range phases.phases {
		pEnd := end
		if i+1 < len(phases.phases) {
			pEnd = phases.phases[i+1].start
		}
		pEnd = max(pEnd, p.start)
		out := Phase{
			Name: p.name, StartMs: round3(durationToMs(p.start)), EndMs: round3(durationToMs(pEnd)),
			Requests: p.requests, Failed: p.failed, OK: p.ok,
			ByClass: map[string]int{}, Retried: p.retried, SlowCompleted: p.slowDone, SlowCut: p.slowCut,
			Dropped:     p.failed + p.retried + p.slowCut + p.streamsUnsafe + p.wsDropped + p.wsLost + p.uploadsCut,
			Connections: p.conns, Cancelled: p.cancelled,
			StreamsRetriedUnsafe: p.streamsUnsafe, WebSocketsDropped: p.wsDropped, MessagesLost: p.wsLost, UploadsCut: p.uploadsCut,
		}
		if p.requests > 0 {
			out.P50Ms = quantileMs(&p.latency, 0.50)
			out.P90Ms = quantileMs(&p.latency, 0.90)
			out.P99Ms = quantileMs(&p.latency, 0.99)
			out.MaxMs = round3(durationToMs(p.latency.Max))
		}
		if fine.gap != nil {
			out.GapMs = round3(durationToMs(fine.gap[i]))
			out.OutageMs = round3(durationToMs(fine.outage[i]))
			out.GapStartMs = round3(durationToMs(fine.gapAt[i]))
		}
		if p.requests > 0 {
			out.MaxStartMs = round3(durationToMs(p.longestAt))
		}
		out.StallMs = max(out.MaxMs, out.GapMs)
		out.StallStartMs, out.StallEndMs = out.MaxStartMs, round3(out.MaxStartMs+out.MaxMs)
		if out.GapMs > out.MaxMs {
			out.StallStartMs, out.StallEndMs = out.GapStartMs, round3(out.GapStartMs+out.GapMs)
		}
		if out.StallMs > s.Stall.Ms {
			s.Stall = Stall{Phase: p.name, Ms: out.StallMs}
		}
		if acc.seenResult {
			if loaded := min(pEnd, loadTo) - max(p.start, loadFrom); loaded > 0 {
				out.LoadMs = round3(durationToMs(loaded))
				out.Rate = round3(float64(p.requests) / loaded.Seconds())
			}
		}
		for c := failureClass(0); c < numClasses; c++ {
			if n := p.byClass[c]; n > 0 {
				out.ByClass[c.String()] = n
				s.Failures = append(s.Failures, Failure{Class: c.String(), Phase: p.name, Count: n})
			}
		}
		s.Phases = append(s.Phases, out)
	}
	// Dropped is what the service would have served but did not (procedure.md):
	// failed requests, requests net/http retried after the server closed the
	// connection under them (the retry hides the close from the result), and
	// long downloads cut short. A server close under a request counts once:
	// either its request failed (a failed result) or it was retried (a
	// retries.jsonl line) — so Connections.ClosedUnderRequest is not added too.
	// Idle keep-alive closes are not drops.
	// The traffic kinds beyond plain requests add what results.gob does
	// not show (loadgen/DROPS.md): unsafe HTTP/2 replays that succeeded,
	// WebSockets ended as a drop and their messages lost, failed uploads.
	s.Dropped = s.Requests.Failed + s.Retried + s.Slow.Cut
	for _, p := range s.Phases {
		s.Dropped += p.StreamsRetriedUnsafe + p.WebSocketsDropped + p.MessagesLost + p.UploadsCut
	}
	s.Drops = dropReasons(s, nil)
	s.Causes = append(dropCauses(s), stepCauses(s)...)
	s.Timeline = tl.timeline()
}
