package nginx

import (
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

func TestSystemdCgroupsPerEngine(t *testing.T) {
	// cgroup v1: as measured on Docker 20.10 — the host tree read-only, no
	// namespace of its own, systemd started directly.
	v1, err := systemdCgroups(harness.EngineCgroups{Version: "1", Driver: "cgroupfs"})
	if err != nil {
		t.Fatal(err)
	}
	if v1.privateNS || !slices.Equal(v1.mounts, []string{"/sys/fs/cgroup:/sys/fs/cgroup:ro"}) ||
		!slices.Equal(v1.cmd, []string{"/lib/systemd/systemd"}) || slices.Contains(v1.caps, "SYS_ADMIN") || len(v1.securityOpt) > 0 {
		t.Errorf("cgroup v1 node: %+v", v1)
	}
	// cgroup v2: a private namespace, no host tree, the remount before systemd.
	v2, err := systemdCgroups(harness.EngineCgroups{Version: "2", Driver: "systemd"})
	if err != nil {
		t.Fatal(err)
	}
	if !v2.privateNS || len(v2.mounts) > 0 || !slices.Contains(v2.caps, "SYS_ADMIN") || !slices.Contains(v2.caps, "SETPCAP") ||
		len(v2.cmd) != 3 || !strings.Contains(v2.cmd[2], "mount -o remount,rw /sys/fs/cgroup") || len(v2.securityOpt) > 0 {
		t.Errorf("cgroup v2 node: %+v", v2)
	}
	aa, _ := systemdCgroups(harness.EngineCgroups{Version: "2", AppArmor: true})
	if !slices.Equal(aa.securityOpt, []string{"apparmor=unconfined"}) {
		t.Errorf("cgroup v2 under AppArmor: security options %v", aa.securityOpt)
	}
	if _, err := systemdCgroups(harness.EngineCgroups{Version: "3"}); err == nil || !strings.Contains(err.Error(), `"3"`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown version: %v", err)
	}
}
