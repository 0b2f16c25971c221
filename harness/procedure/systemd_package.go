package procedure

import (
	"context"
	"fmt"
)

// systemdPackageKind is `dpkg -i` of the new .debs on a node where systemd
// is PID 1 and there is no policy-rc.d: the postinst's invoke-rc.d acts
// through systemd, as on a host.
var systemdPackageKind = Kind{Name: "systemd-package", Systemd: true,
	Help: "dpkg -i the new .debs under systemd as PID 1 (no policy-rc.d): what the postinst does through systemd",
	prepare: func(ctx context.Context, pr *Prepared) error {
		if exists(ctx, pr.n, PolicyRCD) {
			return fmt.Errorf("systemd-package: %s is in the systemd image; it would decide instead of systemd", PolicyRCD)
		}
		return prepareDebs(ctx, pr, false)
	}}
