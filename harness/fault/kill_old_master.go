package fault

import (
	"context"
	"fmt"
	"time"
)

// killOldMaster KILLs the old master while both sets serve (or, moved to
// stop-old-workers, while its workers drain).
type killOldMaster struct{}

func (killOldMaster) Name() string { return "kill-old-master" }
func (killOldMaster) What() string {
	return "KILL the old master while both sets serve (@stop-old-workers: while its workers drain)"
}
func (killOldMaster) At() string               { return "spawn-new-master" }
func (killOldMaster) Needs() Needs             { return Needs{} }
func (killOldMaster) HealAfter() time.Duration { return 0 }
func (killOldMaster) Heal(context.Context, Target) (string, error) {
	return "nothing to heal: a KILL cannot be undone", nil
}

func (killOldMaster) Inject(ctx context.Context, t Target) (string, error) {
	oldMaster, _, _, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	if err := t.Signal(ctx, "KILL", oldMaster); err != nil {
		return "", err
	}
	return fmt.Sprintf("KILL to the old master %d", oldMaster), nil
}

func (killOldMaster) Expect(scenario string) Expectation {
	return Expectation{Drops: true, Final: "new", Orphans: true,
		FailStep: "stop-old-workers", FailCause: `nginx.pid.oldbin does not name a live master`,
		Why: "the new master serves on; the old master's workers live on as orphans and nginx.pid.oldbin names a dead process"}
}
