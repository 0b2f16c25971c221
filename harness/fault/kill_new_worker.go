package fault

import (
	"context"
	"fmt"
	"time"
)

// killNewWorker KILLs one worker of the new master while both sets serve.
type killNewWorker struct{}

func (killNewWorker) Name() string             { return "kill-new-worker" }
func (killNewWorker) What() string             { return "KILL one new worker during the audit after USR2" }
func (killNewWorker) At() string               { return "spawn-new-master" }
func (killNewWorker) Needs() Needs             { return Needs{} }
func (killNewWorker) HealAfter() time.Duration { return 0 }
func (killNewWorker) Heal(context.Context, Target) (string, error) {
	return "nothing to heal: the new master starts another worker", nil
}

func (killNewWorker) Inject(ctx context.Context, t Target) (string, error) {
	_, newMaster, snap, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	ws := snap.Workers(newMaster)
	if len(ws) == 0 {
		return "", fmt.Errorf("new master %d has no worker: %s", newMaster, snap)
	}
	if err := t.Signal(ctx, "KILL", ws[0].PID); err != nil {
		return "", err
	}
	return fmt.Sprintf("KILL to worker %d of the new master %d", ws[0].PID, newMaster), nil
}

func (killNewWorker) Expect(scenario string) Expectation {
	return Expectation{Drops: true, Final: finalOf(scenario),
		Why: "the new master starts another worker at once ([alert] worker process exited on signal 9); only what the killed " +
			"worker held in flight is lost (measured: nothing, at 500 req/s), and the upgrade goes on"}
}
