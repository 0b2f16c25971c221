package procedure

import (
	"context"
	"fmt"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// InitScript is Debian's init script, which ships with its nginx packages.
const InitScript = "/etc/init.d/nginx"

// debianInitdKind puts the binary in place by an atomic rename, then runs
// Debian's `/etc/init.d/nginx upgrade`.
var debianInitdKind = Kind{Name: "debian-initd", Default: true,
	Help: "install by rename, then Debian's " + InitScript + " upgrade",
	prepare: func(ctx context.Context, pr *Prepared) error {
		for _, f := range []string{InitScript, "/sbin/start-stop-daemon", "/lib/lsb/init-functions", "/lib/init/vars.sh"} {
			if !exists(ctx, pr.n, f) {
				return fmt.Errorf("debian-initd: %s is not in the image (it ships with Debian's nginx and its base system)", f)
			}
		}
		if pr.n.Binary() != harness.DefaultBinary {
			pr.notes = append(pr.notes, fmt.Sprintf("nginx runs from %s, but %s upgrades %s (its DAEMON)", pr.n.Binary(), InitScript, harness.DefaultBinary))
		}
		pr.argv = []string{InitScript, "upgrade"}
		return nil
	},
	// The init script's upgrade only signals: the binary is put in place
	// first, as a package would (atomic rename).
	before: func(ctx context.Context, pr *Prepared) error {
		if err := pr.n.InstallBinary(ctx, harness.NewBinaryStage); err != nil {
			return fmt.Errorf("install the new binary before %s upgrade: %w", InitScript, err)
		}
		return nil
	}}
