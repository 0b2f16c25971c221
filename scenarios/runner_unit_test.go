package scenarios

import (
	"testing"
	"time"
)

// The load's hard stop covers every step's timeout and audit, the wait for
// the downloads and a margin: a scenario that runs as planned never meets
// it, one that hangs always does.
func TestPlannedDurationCoversEveryStep(t *testing.T) {
	for _, sc := range Catalogue() {
		min := 1500*time.Millisecond + quitTimeout + loadMargin
		for _, m := range sc.Moves {
			t := m.Step.Timeout
			if t == 0 {
				t = 10 * time.Second
			}
			min += t + m.Audit
		}
		got := plannedDuration(sc, 1500*time.Millisecond)
		if got < min {
			t.Errorf("%s: planned %s, below the sum of its bounds %s", sc.Name, got, min)
		}
		if got > 10*time.Minute {
			t.Errorf("%s: planned %s: the load would outlive any sensible run", sc.Name, got)
		}
	}
}
