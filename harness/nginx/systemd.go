package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Unit is the systemd unit Debian's nginx packages ship.
const Unit = "nginx.service"

// Systemd tells whether systemd is the node's PID 1 and nginx its Unit.
func (n *Node) Systemd() bool { return n.systemd }

// waitSystemd waits, bounded, until `systemctl is-system-running` says
// running or degraded (a unit that has nothing to do in a container may
// fail; nginx.service is checked on its own).
func (n *Node) waitSystemd(ctx context.Context) error {
	deadline := time.Now().Add(systemdBoot)
	var last string
	for {
		r, err := n.execWithin(ctx, harness.ProbeTimeout, nil, nil, "systemctl", "is-system-running")
		if err == nil {
			last = strings.TrimSpace(r.Stdout)
			if last == "running" || last == "degraded" {
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("start node: systemd not running after %s (is-system-running: %q)", systemdBoot, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// WithUnit gives a systemd node the user's nginx.service in place of the
// one Debian's package ships (in /etc/systemd/system, which overrides it).
func WithUnit(content []byte) NodeOption {
	return func(c *nodeConfig) { c.unit = append([]byte(nil), content...) }
}

// UnitOverride is where WithUnit puts the user's unit.
const UnitOverride = "/etc/systemd/system/" + Unit

// installUnit writes the user's unit and makes systemd read it.
func (n *Node) installUnit(ctx context.Context, content []byte) error {
	if err := n.WriteFile(ctx, UnitOverride, content, 0o644); err != nil {
		return fmt.Errorf("install the unit %s: %w", UnitOverride, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := n.Exec(cctx, "systemctl", "daemon-reload")
	if err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w", err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("systemctl daemon-reload: exit %d: %s", r.Exit, harness.LastLine(r.Stderr))
	}
	return nil
}

// startUnit (re)starts nginx.service — its package enabled it, so it may
// have started at boot with the image's own config — and waits until it
// serves the config under test.
func (n *Node) startUnit(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := n.Exec(cctx, "systemctl", "restart", Unit)
	if err != nil {
		return fmt.Errorf("systemctl restart %s: %w", Unit, err)
	}
	if r.Exit != 0 {
		j, _ := n.Exec(cctx, "journalctl", "-u", Unit, "-n", "5", "--no-pager", "-o", "cat")
		return fmt.Errorf("systemctl restart %s: exit %d: %s", Unit, r.Exit, causeLine(j.Stdout+r.Stderr))
	}
	return n.WaitServing(ctx, 15*time.Second)
}

// SystemdView is what systemd believes of nginx.service.
type SystemdView struct {
	MainPID     int    `json:"main_pid"`
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	Result      string `json:"result"`
	NRestarts   int    `json:"n_restarts"`
	// ControlGroup is the unit's cgroup; CgroupPIDs the processes in it.
	ControlGroup string `json:"control_group"`
	CgroupPIDs   []int  `json:"cgroup_pids"`
}

// systemdViewScript prints `systemctl show` of the unit ($1), then a
// "cgroup:" line with the pids of its cgroup in systemd's own hierarchy
// (cgroup v1's name=systemd, else the unified one).
const systemdViewScript = `u="$1"
systemctl show "$u" -p MainPID -p ActiveState -p SubState -p Result -p NRestarts -p ControlGroup || exit 1
cg=$(systemctl show -P ControlGroup "$u")
pids=""
if [ -n "$cg" ]; then
  for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ -r "$h$cg/cgroup.procs" ]; then pids=$(tr '\n' ' ' < "$h$cg/cgroup.procs"); break; fi
  done
fi
echo "cgroup:$pids"`

// SystemdView reads systemd's view of nginx.service.
func (n *Node) SystemdView(ctx context.Context) (SystemdView, error) {
	var v SystemdView
	if !n.systemd {
		return v, fmt.Errorf("not a systemd node")
	}
	r, err := n.execWithin(ctx, harness.ProbeTimeout, nil, nil, "sh", "-c", systemdViewScript, "sh", Unit)
	if err != nil {
		return v, fmt.Errorf("systemctl show %s: %w", Unit, err)
	}
	if r.Exit != 0 {
		return v, fmt.Errorf("systemctl show %s: exit %d: %s", Unit, r.Exit, harness.LastLine(r.Stderr))
	}
	v.CgroupPIDs = []int{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		k, val, _ := strings.Cut(l, "=")
		switch k {
		case "MainPID":
			v.MainPID, _ = strconv.Atoi(val)
		case "ActiveState":
			v.ActiveState = val
		case "SubState":
			v.SubState = val
		case "Result":
			v.Result = val
		case "NRestarts":
			v.NRestarts, _ = strconv.Atoi(val)
		case "ControlGroup":
			v.ControlGroup = val
		}
		if rest, ok := strings.CutPrefix(l, "cgroup:"); ok {
			for _, f := range strings.Fields(rest) {
				if pid, err := strconv.Atoi(f); err == nil {
					v.CgroupPIDs = append(v.CgroupPIDs, pid)
				}
			}
		}
	}
	return v, nil
}

// CgroupRoot is where the Docker host's cgroup tree is, bind-mounted
// read-only into a systemd node.
const CgroupRoot = "/sys/fs/cgroup"

// CheckSystemdHost says, in one line, why this machine cannot run systemd
// as PID 1 in an unprivileged node, or nil: what it needs is a cgroup v1
// tree at root with systemd's own name=systemd hierarchy (measured here on
// Docker 20.10, cgroupfs driver). cgroup v2 is refused: the node was never
// measured on it. root is CgroupRoot but for tests; the check reads the
// local file system, so it speaks for a local Docker engine only.
func CheckSystemdHost(root string) error {
	if _, err := os.Stat(root); err != nil {
		return fmt.Errorf("systemd procedures: no cgroup tree at %s to give systemd (%v)", root, errors.Unwrap(err))
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return fmt.Errorf("systemd procedures: %s is cgroup v2; the systemd node runs only on cgroup v1 (measured there)", root)
	}
	if _, err := os.Stat(filepath.Join(root, "systemd", "cgroup.procs")); err != nil {
		return fmt.Errorf("systemd procedures: no name=systemd hierarchy at %s/systemd, which systemd as PID 1 needs", root)
	}
	return nil
}
