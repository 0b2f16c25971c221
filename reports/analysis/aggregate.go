package analysis

import (
	"math"
	"sort"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// MsToDuration turns a millisecond offset as loadgen writes it
// (float64(d)/float64(time.Millisecond)) back into the exact duration, so that
// boundaries compare to the nanosecond with result offsets.
func MsToDuration(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// DurationToMs is d in milliseconds, the unit of every offset in the record.
func DurationToMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// phaseAcc aggregates one phase incrementally, like vegeta's Metrics.Add.
type phaseAcc struct {
	name          string
	start         time.Duration
	next          time.Duration // the next phase's start (MaxInt64: none)
	requests      int
	ok            int
	failed        int
	failedAcross  int // failed requests still in flight when the next phase began
	byClass       [numClasses]int
	latency       vegeta.LatencyMetrics
	longest       time.Duration // the longest request, sent at longestAt
	longestAt     time.Duration
	retried       int
	slowDone      int
	slowCut       int
	slowCancelled int
	cancelled     int
	conns         map[string]int
	// Drops of the traffic kinds beyond plain requests (readTraffic).
	streamsUnsafe int
	wsDropped     int
	wsLost        int
	uploadsCut    int
}

// phaseSet holds the phases in order of their start; phase i covers
// [start_i, start_{i+1}) and the last one runs to the end of the run.
type phaseSet struct {
	phases []*phaseAcc
}

func newPhaseSet(steps []record.Step) *phaseSet {
	ps := &phaseSet{phases: []*phaseAcc{{name: "steady", conns: map[string]int{}}}}
	for _, st := range steps {
		name := st.Phase
		if name == "" {
			name = st.Name
		}
		ps.phases = append(ps.phases, &phaseAcc{name: name, start: MsToDuration(st.SentMs), conns: map[string]int{}})
	}
	for i, p := range ps.phases {
		p.next = time.Duration(math.MaxInt64)
		if i+1 < len(ps.phases) {
			p.next = ps.phases[i+1].start
		}
	}
	return ps
}

// at returns the phase containing t: the last phase whose start is <= t (a
// timestamp equal to a step's sent_ms belongs to the phase the step starts).
// Anything before the first start belongs to the first phase.
func (ps *phaseSet) at(t time.Duration) *phaseAcc {
	i := sort.Search(len(ps.phases), func(i int) bool { return ps.phases[i].start > t }) - 1
	if i < 0 {
		i = 0
	}
	return ps.phases[i]
}

// latencyBins is the resolution of the per-bucket latency histogram: bin i
// holds latencies in [1µs·g^i, 1µs·g^(i+1)) with g = latencyGrowth, which
// spans 1µs to about 1000s in 270 bins of 8% each — plenty for a plot, and
// a fixed, small size per bucket however many requests it holds.
const (
	latencyGrowth = 1.08
	latencyBins   = 270
	// maxBuckets bounds the plot's buckets: past it, buckets are merged in
	// pairs and their width doubles, so memory stays flat however long the run.
	maxBuckets = 4000
	// BucketWidth is the plot's bucket width before any merging.
	BucketWidth = 100 * time.Millisecond
)

func latencyBin(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	i := int(math.Log(us) / math.Log(latencyGrowth))
	return min(i, latencyBins-1)
}

// binValue is the geometric middle of a bin, in milliseconds.
func binValue(i int) float64 {
	return math.Pow(latencyGrowth, float64(i)+0.5) / 1000
}

type bucketAcc struct {
	requests int
	failed   int
	retried  int
	slowCut  int
	max      time.Duration
	hist     []uint32 // latencyBins long once a request lands here
}

func (b *bucketAcc) merge(o *bucketAcc) {
	b.requests += o.requests
	b.failed += o.failed
	b.retried += o.retried
	b.slowCut += o.slowCut
	b.max = max(b.max, o.max)
	if o.hist == nil {
		return
	}
	if b.hist == nil {
		b.hist = o.hist
		return
	}
	for i, n := range o.hist {
		b.hist[i] += n
	}
}

func (b *bucketAcc) quantile(q float64) float64 {
	if b.requests == 0 || b.hist == nil {
		return 0
	}
	var total uint64
	for _, n := range b.hist {
		total += uint64(n)
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, n := range b.hist {
		seen += uint64(n)
		if seen >= rank && n > 0 {
			v := binValue(i)
			return math.Min(v, DurationToMs(b.max))
		}
	}
	return DurationToMs(b.max)
}

// timelineAcc buckets the run over time while the results stream by.
type timelineAcc struct {
	width   time.Duration
	buckets []bucketAcc
	points  []record.FailPoint // the first maxFailPoints losses, at their exact time
	nPoints int
}

// maxFailPoints bounds the losses report.json and the plot place one by one.
const maxFailPoints = 5000

// addPoint records one loss (a failed request by its start, a retry or a
// cut download when it happened) with its class.
func (tl *timelineAcc) addPoint(t, latency time.Duration, class string) {
	tl.nPoints++
	if len(tl.points) < maxFailPoints {
		tl.points = append(tl.points, record.FailPoint{Ms: Round3(DurationToMs(t)), LatencyMs: Round3(DurationToMs(latency)), Class: class})
	}
}

func newTimelineAcc() *timelineAcc { return &timelineAcc{width: BucketWidth} }

func (tl *timelineAcc) bucket(t time.Duration) *bucketAcc {
	if t < 0 {
		t = 0
	}
	i := int(t / tl.width)
	for i >= maxBuckets {
		tl.coarsen()
		i = int(t / tl.width)
	}
	if i >= len(tl.buckets) {
		if i < cap(tl.buckets) {
			tl.buckets = tl.buckets[:i+1]
		} else {
			grown := make([]bucketAcc, i+1, min(max(2*cap(tl.buckets), i+1, 64), maxBuckets))
			copy(grown, tl.buckets)
			tl.buckets = grown
		}
	}
	return &tl.buckets[i]
}

func (tl *timelineAcc) coarsen() {
	merged := make([]bucketAcc, (len(tl.buckets)+1)/2, maxBuckets)
	for i := range tl.buckets {
		merged[i/2].merge(&tl.buckets[i])
	}
	tl.buckets = merged
	tl.width *= 2
}

func (tl *timelineAcc) addResult(t, latency time.Duration, failed bool) {
	b := tl.bucket(t)
	b.requests++
	if failed {
		b.failed++
	}
	if b.hist == nil {
		b.hist = make([]uint32, latencyBins)
	}
	b.hist[latencyBin(latency)]++
	b.max = max(b.max, latency)
}

func (tl *timelineAcc) timeline() *record.Timeline {
	out := &record.Timeline{
		BucketMs: DurationToMs(tl.width),
		Requests: make([]int, len(tl.buckets)),
		Failed:   make([]int, len(tl.buckets)),
		Retried:  make([]int, len(tl.buckets)),
		SlowCut:  make([]int, len(tl.buckets)),
		P99Ms:    make([]float64, len(tl.buckets)),
		MaxMs:    make([]float64, len(tl.buckets)),
		P50Ms:    make([]float64, len(tl.buckets)),
		Points:   tl.points,
		NPoints:  tl.nPoints,
	}
	if out.Points == nil {
		out.Points = []record.FailPoint{}
	}
	for i := range tl.buckets {
		b := &tl.buckets[i]
		out.Requests[i] = b.requests
		out.Failed[i] = b.failed
		out.Retried[i] = b.retried
		out.SlowCut[i] = b.slowCut
		out.P99Ms[i] = Round3(b.quantile(0.99))
		out.P50Ms[i] = Round3(b.quantile(0.50))
		out.MaxMs[i] = Round3(DurationToMs(b.max))
	}
	return out
}

// Round3 keeps three decimals (microseconds, for milliseconds): enough for
// people and it keeps report.json small.
func Round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

// fineWidth is the resolution of the stall, outage and silence measures.
const fineWidth = 10 * time.Millisecond

// maxFineBins bounds the fine bins (about 5.5 hours of run at 10 ms): past
// it, later moments share the last bin.
const maxFineBins = 2_000_000

// fineBin counts, in one 10 ms slice of the run, the requests started
// (sent, ok, failed — cancellations are neither) and the responses ended.
type fineBin struct {
	sent, done, ok, failed uint32
}

// fineAcc is the run in 10 ms bins, kept whole (16 bytes a bin): stalls,
// outages and silent windows are found from it at the end.
type fineAcc struct {
	bins []fineBin
}

func (f *fineAcc) bin(t time.Duration) *fineBin {
	i := int(max(t, 0) / fineWidth)
	i = min(i, maxFineBins-1)
	if i >= len(f.bins) {
		if i < cap(f.bins) {
			f.bins = f.bins[:i+1]
		} else {
			grown := make([]fineBin, i+1, min(max(2*cap(f.bins), i+1, 1024), maxFineBins))
			copy(grown, f.bins)
			f.bins = grown
		}
	}
	return &f.bins[i]
}

func quantileMs(l *vegeta.LatencyMetrics, q float64) float64 {
	return Round3(DurationToMs(l.Quantile(q)))
}
