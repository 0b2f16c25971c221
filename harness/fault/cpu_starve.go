package fault

import (
	"context"
	"fmt"
	"time"
)

// cpuStarve cuts the container's CPU quota to a fraction of a core through
// the transition.
type cpuStarve struct{}

// starvedCores is the quota during the fault.
const starvedCores = 0.2

func (cpuStarve) Name() string { return "cpu-starve" }
func (cpuStarve) What() string {
	return fmt.Sprintf("the container's CPU quota cut to %.2f of a core from USR2 to the end", starvedCores)
}
func (cpuStarve) At() string   { return "install-new-binary" }
func (cpuStarve) Needs() Needs { return Needs{} }

// UpdatesContainer: the quota is set through the engine (docker update).
func (cpuStarve) UpdatesContainer() bool { return true }

// StallsContainer: every process of the container, the heartbeat too.
func (cpuStarve) StallsContainer() bool { return true }

func (cpuStarve) HealAfter() time.Duration { return 0 }

func (cpuStarve) Inject(ctx context.Context, t Target) (string, error) {
	if err := t.LimitCPU(ctx, starvedCores); err != nil {
		return "", err
	}
	return fmt.Sprintf("CPU quota %.2f core", starvedCores), nil
}

func (cpuStarve) Heal(ctx context.Context, t Target) (string, error) {
	if err := t.LimitCPU(ctx, 0); err != nil {
		return "", err
	}
	return "CPU quota lifted", nil
}

func (cpuStarve) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario),
		Why: "a fifth of a core still serves 500 req/s; the transitions slow down (USR2 and WINCH verified in 0.6 s instead of 0.2 s) " +
			"and nothing is lost"}
}
