package fault

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
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

// Available tells whether this kernel has the netem qdisc (the container
// shares the host's kernel): without it the fault cannot be injected.
func (netem) Available() error {
	if _, err := os.Stat("/sys/module/sch_netem"); err == nil {
		return nil
	}
	data, err := os.ReadFile("/proc/config.gz")
	if err != nil {
		return nil // cannot tell: let the injection say
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	cfg, _ := io.ReadAll(zr)
	if bytes.Contains(cfg, []byte("CONFIG_NET_SCH_NETEM=y")) || bytes.Contains(cfg, []byte("CONFIG_NET_SCH_NETEM=m")) {
		return nil
	}
	return errors.New("this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set in /proc/config.gz), and the container shares it")
}

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
	return Expectation{Final: finalOf(scenario), Why: "not measured: the kernel of the machine it was built on has no netem qdisc"}
}
