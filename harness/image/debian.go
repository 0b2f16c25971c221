package image

// Debian packages in build containers: the scripts that fetch and install them, and what apt says of versions.

import (
	"context"
	"fmt"
	"strings"
)

// Constant scripts run in build containers; user values reach them as
// arguments or environment, never as script text.
const (
	// installOldScript installs exactly the package files in $DEBS (put
	// there from the cache) and copies the installed executable to $TARGET.
	// Their dependencies are in the base image; when one is not, apt's
	// lists are read and it comes from the root's own suites.
	installOldScript = `set -eu
cd "$DEBS"
set --
for f in ./*.deb; do set -- "$@" "$f"; done
if ! apt-get install -y --no-install-recommends "$@"; then
	apt-get update
	apt-get install -y --no-install-recommends "$@"
fi
install -m 0755 /usr/sbin/nginx "$TARGET"`

	// stageNewScript extracts the nginx executable that the package files
	// in $DEBS ship to $TARGET.
	stageNewScript = `set -eu
cd "$DEBS"
x=$(mktemp -d)
for f in ./*.deb; do dpkg-deb -x "$f" "$x"; done
if [ ! -f "$x/usr/sbin/nginx" ]; then echo "none of the packages in $DEBS ships /usr/sbin/nginx" >&2; exit 1; fi
install -m 0755 "$x/usr/sbin/nginx" "$TARGET"
rm -rf "$x"`

	// finishScript sets up what every pair image has, and makes sure that
	// nothing a package started stays behind in the image. The base's
	// policy-rc.d (which kept package scripts from starting nginx during the
	// build) goes: in the pair image, a package upgrade (dpkg -i of the new
	// .debs) runs its init script as on a host.
	finishScript = `set -eu
S=/opt/nginx-upgrade-harness
pkill -x nginx || true
rm -f /run/nginx.pid /run/nginx.pid.oldbin
chmod 0755 "$S/old/nginx" "$S/new/nginx"
mkdir -p /var/log/nginx /var/lib/nginx/body /var/lib/nginx/proxy /var/lib/nginx/fastcgi \
	/var/lib/nginx/uwsgi /var/lib/nginx/scgi /run /etc/nginx /srv/www/slow
rm -rf /etc/nginx/sites-enabled/*
id -u www-data >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/www --shell /usr/sbin/nologin www-data
command -v ps >/dev/null
rm -rf /etc/apt/nginx-upgrade-harness /var/lib/apt/nginx-upgrade-harness
rm -f /usr/sbin/policy-rc.d`

	// compileScript builds /tmp/src.tar.gz with the configure flags given as
	// arguments.
	compileScript = `set -eu
rm -rf /tmp/build
mkdir -p /tmp/build
cd /tmp/build
tar -xzf /tmp/src.tar.gz --strip-components=1
./configure "$@"
make -j2`
)

func packagesPinnedTo(show, version string) []string {
	pkgs := []string{"nginx=" + version}
	seen := map[string]bool{"nginx": true}
	for _, line := range strings.Split(show, "\n") {
		if line == "" {
			break // first stanza only
		}
		if !strings.HasPrefix(line, "Depends:") && !strings.HasPrefix(line, "Pre-Depends:") {
			continue
		}
		_, deps, _ := strings.Cut(line, ":")
		for _, alt := range strings.Split(deps, ",") {
			for _, d := range strings.Split(alt, "|") {
				name, constraint, _ := strings.Cut(strings.TrimSpace(d), " ")
				name, _, _ = strings.Cut(name, ":") // an architecture qualifier
				c := strings.Trim(strings.TrimSpace(constraint), "()")
				_, v, _ := strings.Cut(c, " ")
				v = strings.TrimSpace(v)
				if (strings.HasPrefix(c, ">=") || strings.HasPrefix(c, "=")) && v == version && !seen[name] {
					seen[name] = true
					pkgs = append(pkgs, name+"="+version)
				}
			}
		}
	}
	return pkgs
}

// checkInstalled verifies that /usr/sbin/nginx belongs to a package at version.
func checkInstalled(ctx context.Context, box *buildBox, version string) error {
	out, err := box.run(ctx, "dpkg -S /usr/sbin/nginx", nil, "dpkg-query", "-S", "/usr/sbin/nginx")
	if err != nil {
		return err
	}
	owner, _, _ := strings.Cut(strings.TrimSpace(out), ":")
	got, err := box.run(ctx, "dpkg-query "+owner, nil, "dpkg-query", "-W", "-f=${Version}", owner)
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != version {
		return fmt.Errorf("/usr/sbin/nginx comes from %s %s, not %s", owner, strings.TrimSpace(got), version)
	}
	return nil
}

var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive"}
