package procedure

import (
	"context"
	"fmt"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

// systemctlReloadKind puts the new binary in place by rename, then runs
// `systemctl reload nginx`: Debian's unit reloads with HUP, which re-reads
// the config but keeps the running binary.
var systemctlReloadKind = Kind{Name: "systemctl-reload", Systemd: true,
	Help: "install by rename, then systemctl reload nginx (HUP: the running binary stays)",
	prepare: func(ctx context.Context, pr *Prepared) error {
		pr.argv = []string{"systemctl", "reload", nginx.Unit}
		return nil
	},
	before: installNew("systemctl reload")}

// systemctlRestartKind puts the new binary in place by rename, then runs
// `systemctl restart nginx`: stop (QUIT, then TERM and KILL after 5 s
// each), then start — the fallback of many packagers.
var systemctlRestartKind = Kind{Name: "systemctl-restart", Systemd: true,
	Help: "install by rename, then systemctl restart nginx (stop, then start: what it drops is measured)",
	prepare: func(ctx context.Context, pr *Prepared) error {
		pr.argv = []string{"systemctl", "restart", nginx.Unit}
		return nil
	},
	before: installNew("systemctl restart")}

func installNew(what string) func(ctx context.Context, pr *Prepared) error {
	return func(ctx context.Context, pr *Prepared) error {
		if err := pr.n.InstallBinary(ctx, harness.NewBinaryStage); err != nil {
			return fmt.Errorf("install the new binary before %s: %w", what, err)
		}
		return nil
	}
}
