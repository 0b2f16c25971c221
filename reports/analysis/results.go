package analysis

import (
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// resultsAcc aggregates the results stream of a scenario.
type resultsAcc struct {
	start      time.Time
	phases     *phaseSet
	timeline   *timelineAcc
	fine       fineAcc
	total      record.Requests
	latency    vegeta.LatencyMetrics
	first      time.Duration // earliest request start
	last       time.Duration // latest request start
	end        time.Duration // latest response end
	seenResult bool
	// Per profile (vegeta's Attack field: the traffic kind's profile).
	byProfile       map[string]*profileAcc
	failedByProfile map[string]map[string]int // profile → phase → failed requests
	// Per target of a user's targets file (by index).
	targets map[int]*targetAcc
	// witness, when the run kept the server's log, collects every
	// request's id and outcome for the reconciliation.
	witness *witnessAcc
}

func (a *resultsAcc) add(r *vegeta.Result) {
	t := r.Timestamp.Sub(a.start)
	class, failed := classify(r)
	p := a.phases.at(t)
	p.requests++
	a.total.Total++
	sent := a.fine.bin(t)
	sent.sent++
	switch {
	case failed && class == classCancelled:
		p.cancelled++
		p.byClass[class]++
		a.total.Cancelled++
	case failed:
		p.failed++
		if t+r.Latency >= p.next {
			p.failedAcross++
		}
		p.byClass[class]++
		a.total.Failed++
		sent.failed++
		a.timeline.addPoint(t, r.Latency, class.String())
	default:
		p.ok++
		a.total.OK++
		sent.ok++
	}
	a.addProfile(r.Attack, p.name, failed, failed && class == classCancelled, r.Latency)
	if a.witness != nil {
		outcome := record.ClientOK
		switch {
		case failed && class == classCancelled:
			outcome = record.ClientCancelled
		case failed:
			outcome = record.ClientFailed
		}
		a.witness.addResult(loadgen.RequestID(r.Attack, r.Seq), DurationToMs(t), DurationToMs(t+r.Latency), outcome, int(r.Code), int64(r.BytesIn))
	}
	a.addTarget(r, class, failed)
	a.fine.bin(t+r.Latency).done++
	if r.Latency > p.longest {
		p.longest, p.longestAt = r.Latency, t
	}
	p.latency.Add(r.Latency)
	a.latency.Add(r.Latency)
	a.timeline.addResult(t, r.Latency, failed)
	if !a.seenResult || t < a.first {
		a.first = t
	}
	if !a.seenResult || t > a.last {
		a.last = t
	}
	if end := t + r.Latency; !a.seenResult || end > a.end {
		a.end = end
	}
	a.seenResult = true
}

func (a *resultsAcc) addProfile(name, phase string, failed, cancelled bool, latency time.Duration) {
	if a.byProfile == nil {
		a.byProfile, a.failedByProfile = map[string]*profileAcc{}, map[string]map[string]int{}
	}
	pa := a.byProfile[name]
	if pa == nil {
		pa = &profileAcc{}
		a.byProfile[name] = pa
	}
	pa.requests++
	switch {
	case cancelled:
		pa.cancelled++
	case failed:
		pa.failed++
		if a.failedByProfile[name] == nil {
			a.failedByProfile[name] = map[string]int{}
		}
		a.failedByProfile[name][phase]++
	default:
		pa.ok++
	}
	pa.maxMs = max(pa.maxMs, DurationToMs(latency))
}

// addTarget counts a result of a targets profile under its target (its
// URL's fragment names it); the harness's own requests name none.
func (a *resultsAcc) addTarget(r *vegeta.Result, class failureClass, failed bool) {
	i, ok := loadgen.TargetIndex(r.URL)
	if !ok {
		return
	}
	if a.targets == nil {
		a.targets = map[int]*targetAcc{}
	}
	ta := a.targets[i]
	if ta == nil {
		ta = &targetAcc{}
		a.targets[i] = ta
	}
	ta.requests++
	switch {
	case failed && class == classCancelled:
		ta.cancelled++
	case failed:
		ta.failed++
		ta.byClass[class]++
	default:
		ta.ok++
	}
	b := &ta.latency
	b.requests++
	if b.hist == nil {
		b.hist = make([]uint32, latencyBins)
	}
	b.hist[latencyBin(r.Latency)]++
	b.max = max(b.max, r.Latency)
}

// addToWitness hands a result left out of every figure to the second
// witness all the same: the request was sent, and nginx may have logged
// it; without it the reconciliation would blame the log for the record's
// bad clock (an id "the client never sent").
func (a *resultsAcc) addToWitness(r *vegeta.Result) {
	if a.witness == nil {
		return
	}
	class, failed := classify(r)
	outcome := record.ClientOK
	switch {
	case failed && class == classCancelled:
		outcome = record.ClientCancelled
	case failed:
		outcome = record.ClientFailed
	}
	ms := max(DurationToMs(r.Timestamp.Sub(a.start)), 0)
	a.witness.addResult(loadgen.RequestID(r.Attack, r.Seq), ms, ms, outcome, int(r.Code), int64(r.BytesIn))
}
