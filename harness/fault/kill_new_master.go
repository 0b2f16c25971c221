package fault

import (
	"context"
	"fmt"
	"time"
)

// killNewMaster KILLs the new master while both sets serve.
type killNewMaster struct{}

func (killNewMaster) Name() string             { return "kill-new-master" }
func (killNewMaster) What() string             { return "KILL the new master while both sets serve" }
func (killNewMaster) At() string               { return "spawn-new-master" }
func (killNewMaster) Needs() Needs             { return Needs{} }
func (killNewMaster) HealAfter() time.Duration { return 0 }
func (killNewMaster) Heal(context.Context, Target) (string, error) {
	return "nothing to heal: a KILL cannot be undone", nil
}

func (killNewMaster) Inject(ctx context.Context, t Target) (string, error) {
	_, newMaster, _, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	if err := t.Signal(ctx, "KILL", newMaster); err != nil {
		return "", err
	}
	return fmt.Sprintf("KILL to the new master %d", newMaster), nil
}

func (killNewMaster) Expect(scenario string) Expectation {
	return Expectation{Drops: true, Final: "old", Orphans: true,
		FailStep: "stop-old-workers", FailCause: `nginx.pid.oldbin does not name a live master`,
		Why: "the old master reaps its new binary's master, takes nginx.pid back and keeps serving; the killed master's workers " +
			"live on as orphans on the shared sockets, and the upgrade cannot go on"}
}
