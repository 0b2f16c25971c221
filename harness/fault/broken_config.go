package fault

import (
	"context"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// brokenConfigOnDisk replaces nginx.conf with an invalid one between
// installing the new binary and USR2, and puts the original back at the end.
type brokenConfigOnDisk struct{}

const brokenConfig = "events {}\nhttp { server { listen 8080; no_such_directive on; } }\n"

// savedConfig is where the original configuration waits to be put back.
const savedConfig = harness.ConfigPath + ".nuh-saved"

func (brokenConfigOnDisk) Name() string { return "broken-config-on-disk" }
func (brokenConfigOnDisk) What() string {
	return "nginx.conf replaced by an invalid one between installing the binary and USR2"
}
func (brokenConfigOnDisk) At() string               { return "install-new-binary" }
func (brokenConfigOnDisk) Needs() Needs             { return Needs{} }
func (brokenConfigOnDisk) HealAfter() time.Duration { return 0 }

func (brokenConfigOnDisk) Inject(ctx context.Context, t Target) (string, error) {
	if _, err := exec(ctx, t, "cp", "-p", harness.ConfigPath, savedConfig); err != nil {
		return "", err
	}
	if err := t.WriteFile(ctx, harness.ConfigPath, []byte(brokenConfig), 0o644); err != nil {
		return "", err
	}
	return "nginx.conf replaced by one with an unknown directive", nil
}

func (brokenConfigOnDisk) Heal(ctx context.Context, t Target) (string, error) {
	if _, err := exec(ctx, t, "mv", "-f", savedConfig, harness.ConfigPath); err != nil {
		return "", err
	}
	return "nginx.conf put back", nil
}

func (brokenConfigOnDisk) Expect(scenario string) Expectation {
	return Expectation{Final: "old", FailStep: "spawn-new-master", FailCause: `unknown directive "no_such_directive"`,
		Why: "the new master reads the configuration on disk, not the one in use: it exits with the [emerg], and the old set serves on"}
}
