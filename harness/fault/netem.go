package fault

import (
	"context"
	"time"
)

// netem adds delay and loss on the container's loopback, where the load
// meets nginx (tc netem; NET_ADMIN for this fault's container only).
type netem struct{}

func (netem) Name() string { return "netem" }
func (netem) What() string {
	return "50 ms delay and 1% loss on the container's loopback (tc netem) through the transition"
}
func (netem) At() string               { return "install-new-binary" }
func (netem) Needs() Needs             { return Needs{Caps: []string{"NET_ADMIN"}, Tools: []string{"tc"}} }
func (netem) HealAfter() time.Duration { return 0 }

func (netem) Inject(ctx context.Context, t Target) (string, error) {
	if _, err := exec(ctx, t, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "50ms", "loss", "1%"); err != nil {
		return "", err
	}
	return "tc netem delay 50ms loss 1% on lo", nil
}

func (netem) Heal(ctx context.Context, t Target) (string, error) {
	if _, err := exec(ctx, t, "tc", "qdisc", "del", "dev", "lo", "root"); err != nil {
		return "", err
	}
	return "netem removed", nil
}

func (netem) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario), Why: "(to be measured)"}
}
