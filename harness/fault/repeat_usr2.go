package fault

import (
	"context"
	"fmt"
	"time"
)

// repeatUSR2 sends USR2 again while two masters run, to the old master and
// to the new one.
type repeatUSR2 struct{}

func (repeatUSR2) Name() string { return "repeat-usr2" }
func (repeatUSR2) What() string {
	return "USR2 again while two masters run, to the old master and to the new"
}
func (repeatUSR2) At() string               { return "spawn-new-master" }
func (repeatUSR2) Needs() Needs             { return Needs{} }
func (repeatUSR2) HealAfter() time.Duration { return 0 }
func (repeatUSR2) Heal(context.Context, Target) (string, error) {
	return "nothing to heal", nil
}

func (repeatUSR2) Inject(ctx context.Context, t Target) (string, error) {
	oldMaster, newMaster, _, err := masters(ctx, t)
	if err != nil {
		return "", err
	}
	if err := t.Signal(ctx, "USR2", oldMaster); err != nil {
		return "", err
	}
	if err := t.Signal(ctx, "USR2", newMaster); err != nil {
		return "", err
	}
	return fmt.Sprintf("USR2 to the old master %d and to the new master %d", oldMaster, newMaster), nil
}

func (repeatUSR2) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario),
		Why: "both masters log that the changing binary signal is ignored while the other runs: no third master, nothing lost"}
}
