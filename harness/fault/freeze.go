package fault

import (
	"context"
	"time"
)

// freeze freezes every process of the container (cgroup freezer, as
// `docker pause`) for a few seconds while both sets serve. No exec may be in
// flight when it lands: the runner injects it between steps.
type freeze struct{}

// frozenFor is how long the container stays frozen.
const frozenFor = 2500 * time.Millisecond

func (freeze) Name() string { return "freeze" }
func (freeze) What() string {
	return "freeze the whole container (cgroup freezer) for 2.5 s while both sets serve"
}
func (freeze) At() string   { return "spawn-new-master" }
func (freeze) Needs() Needs { return Needs{} }

// StallsContainer: every process of the container, the heartbeat too.
func (freeze) StallsContainer() bool { return true }

func (freeze) HealAfter() time.Duration { return frozenFor }

func (freeze) Inject(ctx context.Context, t Target) (string, error) {
	if err := t.Freeze(ctx); err != nil {
		return "", err
	}
	return "container frozen", nil
}

func (freeze) Heal(ctx context.Context, t Target) (string, error) {
	if err := t.Thaw(ctx); err != nil {
		return "", err
	}
	return "container thawed", nil
}

func (freeze) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario), MaxStall: frozenFor + 2*time.Second,
		Why: "the kernel keeps accepting connections into the listen backlog while nginx is frozen: requests wait " +
			"the 2.5 s out and are answered on thaw (measured: a 2.52 s stall in both-sets, nothing lost); the step sent " +
			"meanwhile reads the process table again until the thaw"}
}
