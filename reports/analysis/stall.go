package analysis

import (
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// maxSilentListed bounds the silent windows a report lists one by one.
const maxSilentListed = 10

// fineMeasures are what the 10 ms bins tell, per phase (indexed like
// phaseSet.phases) and for the run.
type fineMeasures struct {
	gap         []time.Duration // longest span without a response while requests were outstanding
	gapAt       []time.Duration // where it started
	outage      []time.Duration // longest span in which requests failed and none succeeded
	silent      []record.Window // windows in which the load sent nothing (the first maxSilentListed)
	silentCount int
}

// measure walks the bins once. A gap starts in a bin where a request was
// outstanding (sent and not ended by the bin's start, or sent in it) and no
// response ended; it is attributed to the phase it started in. An outage is
// a run of bins with no success that holds a failure. Both are measured only
// while the load was sending (from to to, exclusive), at 10 ms resolution.
// Silent windows are checked in windows of max(100 ms, 3 request intervals).
func (f *fineAcc) measure(phases *phaseSet, rate int, from, to time.Duration) fineMeasures {
	m := fineMeasures{gap: make([]time.Duration, len(phases.phases)), gapAt: make([]time.Duration, len(phases.phases)),
		outage: make([]time.Duration, len(phases.phases))}
	if len(f.bins) == 0 || to <= from {
		return m
	}
	index := map[*phaseAcc]int{}
	for i, p := range phases.phases {
		index[p] = i
	}
	// Results before the clock's start are refused as they are read
	// (resultBounds); the bins start at 0 whatever reaches here.
	first, last := max(int(from/fineWidth), 0), min(int((to-1)/fineWidth), len(f.bins)-1)
	var cumSent, cumDone uint64
	for i := 0; i < first; i++ {
		cumSent += uint64(f.bins[i].sent)
		cumDone += uint64(f.bins[i].done)
	}
	gapStart, outStart := -1, -1
	outFailed := false
	closeGap := func(end int) {
		if gapStart >= 0 {
			pi := index[phases.at(time.Duration(gapStart)*fineWidth)]
			if g := time.Duration(end-gapStart) * fineWidth; g > m.gap[pi] {
				m.gap[pi], m.gapAt[pi] = g, time.Duration(gapStart)*fineWidth
			}
			gapStart = -1
		}
	}
	closeOutage := func(end int) {
		if outStart >= 0 && outFailed {
			pi := index[phases.at(time.Duration(outStart)*fineWidth)]
			m.outage[pi] = max(m.outage[pi], time.Duration(end-outStart)*fineWidth)
		}
		outStart, outFailed = -1, false
	}
	for i := first; i <= last; i++ {
		b := f.bins[i]
		outstanding := cumSent+uint64(b.sent) > cumDone
		switch {
		case b.done > 0:
			closeGap(i)
		case outstanding && gapStart < 0:
			gapStart = i
		}
		if b.ok > 0 {
			closeOutage(i)
		} else {
			if outStart < 0 {
				outStart = i
			}
			outFailed = outFailed || b.failed > 0
		}
		cumSent += uint64(b.sent)
		cumDone += uint64(b.done)
	}
	closeGap(last + 1)
	closeOutage(last + 1)

	// Silent windows, from the first request on; the last, partial window
	// is not judged.
	w := 100 * time.Millisecond
	if rate > 0 {
		w = max(w, 3*time.Second/time.Duration(rate))
	}
	per := int((w + fineWidth - 1) / fineWidth)
	for start := first; start+per <= last+1; start += per {
		var sent uint32
		for i := start; i < start+per; i++ {
			sent += f.bins[i].sent
		}
		if sent > 0 {
			continue
		}
		m.silentCount++
		if len(m.silent) < maxSilentListed {
			t := time.Duration(start) * fineWidth
			m.silent = append(m.silent, record.Window{StartMs: DurationToMs(t), EndMs: DurationToMs(t + time.Duration(per)*fineWidth),
				Phase: phases.at(t).name})
		}
	}
	return m
}
