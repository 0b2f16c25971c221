package analysis

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
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
		readTraffic(dir, s, meta, phases, acc.byProfile, acc.failedByProfile, problem)
		readTargets(dir, s, meta, acc.targets, problem)
		if acc.witness != nil {
			acc.witness.readSideClients(dir, meta, problem)
		}
		s.LongConnections = readLongConnections(dir, s, meta, phases, problem)
	}

	finishScenario(s, acc, phases, tl)
	if files.Start != nil {
		for _, d := range ConnectionDisagreements(dir, s) {
			problem("%s", d)
		}
	}
	samples, noTables := readSamples(dir, s, problem)
	if noTables && s.Error == "" && len(s.Steps) > 0 {
		note("%s missing (a record written before it was kept): a process gone before the step that retires it could not be looked for; deaths are read from the error log's lines the steps quote", record.ProcessesFile)
	}
	var start time.Time
	if files.Start != nil {
		start = *files.Start
	}
	s.Deaths = Deaths(s, samples, NewGenerations(samples), ReadErrorLog(dir, start))
	if len(s.Deaths) > 0 {
		// The causes name a crash where one happened (finishScenario could
		// not: the deaths need the run's end).
		s.Causes = append(DropCauses(s), stepCauses(s)...)
	}
	if files.Start != nil && !acc.start.IsZero() {
		w := acc.witness
		if w == nil {
			w = &witnessAcc{}
		}
		applyWitness(dir, s, w, acc.start, files.End.EndMs, witnessRequired, samples, !noTables, problem)
	}
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
func readSideRecords(dir string, s *record.Scenario, meta *record.Meta, phases *phaseSet, tl *timelineAcc,
	problem, note func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }

	retriesErr := record.ReadJSONL(path(record.RetriesFile), func(r *record.RetryRecord) {
		// A replay of a request that was never written on the closed
		// connection lost nothing. One that was written and then failed
		// anyway is already a failed request (or a cut download): count it
		// once. What is left is the close the retry hid: a drop.
		if !r.Written || !r.OK {
			return
		}
		t := MsToDuration(r.Ms)
		phases.at(t).retried++
		tl.bucket(t).retried++
		tl.addPoint(t, 0, record.CauseRetried)
		s.Retried++
	})

	c := &s.Connections
	connsErr := record.ReadJSONL(path(loadgen.ConnectionsFile), func(r *loadgen.ConnRecord) {
		p := phases.at(MsToDuration(r.EndMs))
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
	case errors.Is(connsErr, record.ErrMissing):
		note("%s missing: connection outcomes are not counted", loadgen.ConnectionsFile)
	default:
		problem("%v", connsErr)
	}

	switch {
	case retriesErr == nil:
	case errors.Is(retriesErr, record.ErrMissing) && connsErr == nil:
		// The connections carry the same count, if not the exact moment.
		note("%s missing: retries counted from %s at the end of the connection they were written on",
			record.RetriesFile, loadgen.ConnectionsFile)
		if err := record.ReadJSONL(path(loadgen.ConnectionsFile), func(r *loadgen.ConnRecord) {
			if r.Retried > 0 {
				t := MsToDuration(r.EndMs)
				phases.at(t).retried += r.Retried
				tl.bucket(t).retried += r.Retried
				s.Retried += r.Retried
			}
		}); err != nil {
			problem("%v", err)
		}
	case errors.Is(retriesErr, record.ErrMissing):
		problem("%s and %s missing: requests net/http retried after a server close cannot be counted",
			record.RetriesFile, loadgen.ConnectionsFile)
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
		if err := record.ReadJSONL(path(loadgen.ConnectionsFile), heldConns); err != nil && !errors.Is(err, record.ErrMissing) {
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
	downloadsErr := record.ReadJSONL(path(loadgen.DownloadsFile), func(d *loadgen.DownloadRecord) {
		s.Slow.Started++
		t := MsToDuration(d.EndMs)
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
			tl.addPoint(t, 0, record.CauseSlowCut)
		}
	})
	s.Held = held
	switch {
	case downloadsErr == nil:
	case errors.Is(downloadsErr, record.ErrMissing) && meta.Load.Slow == 0:
	default:
		problem("%v", downloadsErr)
	}
	if downloadsErr == nil || !errors.Is(downloadsErr, record.ErrMissing) {
		if s.Slow.Started < meta.Load.Slow {
			problem("%d long downloads configured, %d recorded: the others never ended", meta.Load.Slow, s.Slow.Started)
		}
	}
}

// heldAt starts the record of what was in flight at the step that opens
// the phase a "drops" expectation names; nil when there is none.
func heldAt(s *record.Scenario, meta *record.Meta) *record.Held {
	if meta.ExpectDrops == nil {
		return nil
	}
	for _, st := range s.Steps {
		if st.Phase == meta.ExpectDrops.Phase {
			h := &record.Held{Step: st.Name, SentMs: st.SentMs, VerifiedMs: st.VerifiedMs}
			if !st.Verified {
				h.VerifiedMs = st.SentMs
			}
			return h
		}
	}
	return nil
}

// finishScenario closes the aggregates into the report's figures.
func finishScenario(s *record.Scenario, acc *resultsAcc, phases *phaseSet, tl *timelineAcc) {
	s.Requests = acc.total
	if acc.seenResult {
		s.LoadStartMs = Round3(DurationToMs(acc.first))
		s.LoadEndMs = Round3(DurationToMs(acc.last))
		s.EndMs = Round3(DurationToMs(acc.end))
		if span := acc.last - acc.first; span > 0 {
			s.Rate = Round3(float64(acc.total.Total-1) / span.Seconds())
		}
		s.Latency = record.Latency{
			P50Ms: quantileMs(&acc.latency, 0.50), P90Ms: quantileMs(&acc.latency, 0.90),
			P99Ms: quantileMs(&acc.latency, 0.99), MaxMs: Round3(DurationToMs(acc.latency.Max)),
		}
	}
	end := acc.end
	if !acc.seenResult && len(s.Steps) > 0 {
		end = MsToDuration(s.Steps[len(s.Steps)-1].VerifiedMs)
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
		out := record.Phase{
			Name: p.name, StartMs: Round3(DurationToMs(p.start)), EndMs: Round3(DurationToMs(pEnd)),
			Requests: p.requests, Failed: p.failed, FailedAcross: p.failedAcross, OK: p.ok,
			ByClass: map[string]int{}, Retried: p.retried, SlowCompleted: p.slowDone, SlowCut: p.slowCut,
			Dropped:     p.failed + p.retried + p.slowCut + p.streamsUnsafe + p.wsDropped + p.wsLost + p.uploadsCut,
			Connections: p.conns, Cancelled: p.cancelled,
			StreamsRetriedUnsafe: p.streamsUnsafe, WebSocketsDropped: p.wsDropped, MessagesLost: p.wsLost, UploadsCut: p.uploadsCut,
		}
		if p.requests > 0 {
			out.P50Ms = quantileMs(&p.latency, 0.50)
			out.P90Ms = quantileMs(&p.latency, 0.90)
			out.P99Ms = quantileMs(&p.latency, 0.99)
			out.MaxMs = Round3(DurationToMs(p.latency.Max))
		}
		if fine.gap != nil {
			out.GapMs = Round3(DurationToMs(fine.gap[i]))
			out.OutageMs = Round3(DurationToMs(fine.outage[i]))
			out.GapStartMs = Round3(DurationToMs(fine.gapAt[i]))
		}
		if p.requests > 0 {
			out.MaxStartMs = Round3(DurationToMs(p.longestAt))
		}
		out.StallMs = max(out.MaxMs, out.GapMs)
		out.StallStartMs, out.StallEndMs = out.MaxStartMs, Round3(out.MaxStartMs+out.MaxMs)
		if out.GapMs > out.MaxMs {
			out.StallStartMs, out.StallEndMs = out.GapStartMs, Round3(out.GapStartMs+out.GapMs)
		}
		if out.StallMs > s.Stall.Ms {
			s.Stall = record.Stall{Phase: p.name, Ms: out.StallMs}
		}
		if acc.seenResult {
			if loaded := min(pEnd, loadTo) - max(p.start, loadFrom); loaded > 0 {
				out.LoadMs = Round3(DurationToMs(loaded))
				out.Rate = Round3(float64(p.requests) / loaded.Seconds())
			}
		}
		for c := failureClass(0); c < numClasses; c++ {
			if n := p.byClass[c]; n > 0 {
				out.ByClass[c.String()] = n
				s.Failures = append(s.Failures, record.Failure{Class: c.String(), Phase: p.name, Count: n})
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
	s.Drops = DropReasons(s, nil)
	s.Causes = append(DropCauses(s), stepCauses(s)...)
	s.Timeline = tl.timeline()
}
