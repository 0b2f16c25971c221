package analysis

import (
	"testing"
	"time"
)

func TestTimelineCoarsensWithoutLosingCounts(t *testing.T) {
	tl := newTimelineAcc()
	const n = 3 * maxBuckets
	for i := range n {
		// One request per bucket width of 100 ms, one failure in ten.
		tl.addResult(time.Duration(i)*BucketWidth, time.Duration(i%7+1)*time.Millisecond, i%10 == 0)
	}
	out := tl.timeline()
	if len(out.Requests) > maxBuckets {
		t.Fatalf("%d buckets, want at most %d", len(out.Requests), maxBuckets)
	}
	if out.BucketMs != 400 {
		t.Errorf("bucket width %v ms, want 400 after two merges", out.BucketMs)
	}
	total, failed := 0, 0
	for i := range out.Requests {
		total += out.Requests[i]
		failed += out.Failed[i]
		if out.Requests[i] > 0 && (out.P99Ms[i] <= 0 || out.P99Ms[i] > out.MaxMs[i]) {
			t.Fatalf("bucket %d: p99 %v max %v", i, out.P99Ms[i], out.MaxMs[i])
		}
	}
	if total != n || failed != n/10 {
		t.Errorf("total %d failed %d, want %d and %d", total, failed, n, n/10)
	}
}
