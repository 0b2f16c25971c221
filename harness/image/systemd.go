package image

// The systemd variant of a pair image: the same builds, with systemd as the
// init system a node can run as PID 1.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
)

// systemdRecipe changes whenever the systemd layer changes, so that cached
// variants built by an older recipe are not reused.
const systemdRecipe = "systemd-recipe-1"

// SystemdSuffix ends the tag of a pair image's systemd variant.
const SystemdSuffix = "-systemd"

// EnsureSystemdImage returns the systemd variant of the pair image pairRef,
// building it when absent: the pair with Debian's systemd and systemd-sysv
// installed and the base image's policy-rc.d removed (it forbids every
// service action, so maintainer scripts would not act under systemd). Units
// that have nothing to do in a container (getty, udev, timers) are masked so
// that the system reaches `running`. nginx.service stays enabled as its
// package left it, as on a host. The variant is tagged after the pair's
// tag and keeps its labels, so builds.json reads the same.
func EnsureSystemdImage(ctx context.Context, pool *dockertest.Pool, pairRef string, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	repo, tag := pairRef, "latest"
	if i := strings.LastIndexByte(pairRef, ':'); i > 0 && !strings.Contains(pairRef[i:], "/") {
		repo, tag = pairRef[:i], pairRef[i+1:]
	}
	pair, err := inspectImage(ctx, pool, pairRef)
	if err != nil {
		return "", fmt.Errorf("systemd image: pair %s: %w", pairRef, err)
	}
	ref := repo + ":" + tag + SystemdSuffix
	cached := func() bool {
		img, err := inspectImage(ctx, pool, ref)
		return err == nil && img.Config != nil && img.Config.Labels[labelKey+".systemd"] == systemdRecipe+" "+pair.ID
	}
	if cached() {
		return ref, nil
	}
	unlock, err := lockBuilds(ctx, pool.Client.Endpoint(), progress)
	if err != nil {
		return "", err
	}
	defer unlock()
	if cached() { // built by whoever held the lock
		return ref, nil
	}
	start := time.Now()
	fmt.Fprintf(progress, "building systemd image %s from %s…\n", ref, pairRef)
	box, err := createBox(ctx, pool, pairRef, true)
	if err != nil {
		return "", err
	}
	defer box.remove()
	if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
		return "", err
	}
	if _, err := box.run(ctx, "apt-get install systemd", aptEnv, "apt-get", "install", "-y", "--no-install-recommends",
		"systemd", "systemd-sysv"); err != nil {
		return "", err
	}
	if _, err := box.script(ctx, "prepare systemd", nil, systemdScript); err != nil {
		return "", err
	}
	labels := map[string]string{}
	if pair.Config != nil {
		for k, v := range pair.Config.Labels {
			labels[k] = v
		}
	}
	labels[labelKey+".systemd"] = systemdRecipe + " " + pair.ID
	if err := box.commit(ctx, repo, tag+SystemdSuffix, labels); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "systemd image %s ready (%s)\n", ref, since(start))
	return ref, nil
}

// systemdScript removes what stands between systemd and nginx.service in a
// container, and nothing else.
const systemdScript = `set -eu
apt-get clean
rm -rf /var/lib/apt/lists/*
rm -f /usr/sbin/policy-rc.d
for u in getty@tty1.service console-getty.service serial-getty@.service systemd-udevd.service \
         systemd-udev-trigger.service systemd-logind.service apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer \
         systemd-tmpfiles-clean.timer systemd-remount-fs.service sys-kernel-debug.mount \
         sys-kernel-tracing.mount dev-hugepages.mount dev-mqueue.mount sys-fs-fuse-connections.mount \
         sys-kernel-config.mount systemd-journald-audit.socket; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
test -x /lib/systemd/systemd
`
