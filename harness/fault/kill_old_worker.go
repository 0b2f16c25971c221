package fault

import (
	"context"
	"fmt"
	"time"
)

// killOldWorker KILLs one worker of the old master while it drains, after
// WINCH: what it still held — the long downloads on it — is cut.
type killOldWorker struct{}

func (killOldWorker) Name() string             { return "kill-old-worker" }
func (killOldWorker) What() string             { return "KILL one old worker while it drains, after WINCH" }
func (killOldWorker) At() string               { return "stop-old-workers" }
func (killOldWorker) Needs() Needs             { return Needs{} }
func (killOldWorker) HealAfter() time.Duration { return 0 }
func (killOldWorker) Heal(context.Context, Target) (string, error) {
	return "nothing to heal: a KILL cannot be undone", nil
}

func (killOldWorker) Inject(ctx context.Context, t Target) (string, error) {
	oldMaster, _, snap, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	ws := snap.Draining(oldMaster)
	if len(ws) == 0 {
		return "", fmt.Errorf("old master %d has no draining worker: %s", oldMaster, snap)
	}
	if err := t.Signal(ctx, "KILL", ws[0].PID); err != nil {
		return "", err
	}
	return fmt.Sprintf("KILL to draining worker %d of the old master %d", ws[0].PID, oldMaster), nil
}

func (killOldWorker) Expect(scenario string) Expectation {
	return Expectation{Drops: true, Final: finalOf(scenario),
		Why: "the old master starts no worker in its place (it stopped accepting at WINCH): the long downloads the killed " +
			"worker was finishing are cut (measured: 1 on upgrade, 3 on rollback, of 4 — as many as it held), the other " +
			"draining worker's complete, and the path goes on"}
}
