package fault

import (
	"context"
	"fmt"
	"time"
)

// stopOldMaster SIGSTOPs the old master before WINCH and SIGCONTs it a few
// seconds later: the WINCH waits in its queue.
type stopOldMaster struct{}

// stopFor is how long the old master stays stopped.
const stopFor = 3 * time.Second

func (stopOldMaster) Name() string             { return "stop-old-master" }
func (stopOldMaster) What() string             { return "SIGSTOP the old master before WINCH, SIGCONT 3 s later" }
func (stopOldMaster) At() string               { return "spawn-new-master" }
func (stopOldMaster) Needs() Needs             { return Needs{} }
func (stopOldMaster) HealAfter() time.Duration { return stopFor }

func (stopOldMaster) Inject(ctx context.Context, t Target) (string, error) {
	oldMaster, _, _, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	if err := t.Signal(ctx, "STOP", oldMaster); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGSTOP to the old master %d", oldMaster), nil
}

func (stopOldMaster) Heal(ctx context.Context, t Target) (string, error) {
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	var stopped []int
	for _, p := range snap.Procs {
		if p.State == "T" {
			stopped = append(stopped, p.PID)
		}
	}
	if len(stopped) == 0 {
		return "no stopped process left", nil
	}
	if err := t.Signal(ctx, "CONT", stopped...); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGCONT to %v", stopped), nil
}

func (stopOldMaster) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario),
		Why: "the old workers keep serving while their master is stopped; WINCH waits and acts on SIGCONT: nothing is lost, the step is only late"}
}
