package nginx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

func TestNextPollSharpFirstThenSparser(t *testing.T) {
	d := NewDriver(nil)
	for _, tc := range []struct {
		waited, last, want time.Duration
	}{
		{0, 50 * time.Millisecond, 50 * time.Millisecond},
		{900 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		{time.Second, 50 * time.Millisecond, 75 * time.Millisecond},
		{2 * time.Second, 200 * time.Millisecond, pollSlowest},
		{5 * time.Second, pollSlowest, pollSlowest},
	} {
		if got := d.nextPoll(tc.waited, tc.last); got != tc.want {
			t.Errorf("nextPoll(%s, %s) = %s, want %s", tc.waited, tc.last, got, tc.want)
		}
	}
	// A poll set longer than the slowest is kept as it is.
	slow := NewDriver(nil).WithPoll(time.Second)
	if got := slow.nextPoll(3*time.Second, time.Second); got != time.Second {
		t.Errorf("WithPoll(1s): nextPoll = %s", got)
	}
}

// readCounter is a Sim whose reads are timed.
type readCounter struct {
	*Sim
	mu    sync.Mutex
	reads []time.Time
}

func (r *readCounter) Snapshot(ctx context.Context) (proc.Snapshot, error) {
	r.mu.Lock()
	r.reads = append(r.reads, time.Now())
	r.mu.Unlock()
	return r.Sim.Snapshot(ctx)
}

// A step whose effect never shows is read every 50 ms for its first second
// and less often after: over 3 s, well under the 60 reads a fixed 50 ms
// poll makes.
func TestDriverReadsALongWaitLessOften(t *testing.T) {
	h := &readCounter{Sim: NewSim(2)}
	d := NewDriver(h)
	start := time.Now()
	r := d.Run(context.Background(), Step{Name: "never", Timeout: 3 * time.Second,
		Expect: func(before, now proc.Snapshot, pids []int) error { return errors.New("not yet") }})
	if r.OK {
		t.Fatal("a step whose effect never shows was verified")
	}
	first, total := 0, len(h.reads)
	for _, at := range h.reads {
		if at.Sub(start) < pollFastFor {
			first++
		}
	}
	if first < 10 {
		t.Errorf("%d reads in the first second, want about 20", first)
	}
	if total > 40 {
		t.Errorf("%d reads in 3 s, want about 30 (a fixed 50 ms poll makes 60)", total)
	}
	t.Logf("%d reads in the first second, %d in all", first, total)
}
