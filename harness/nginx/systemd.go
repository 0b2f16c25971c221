package nginx

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
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
		r, err := n.execWithin(ctx, n.probeTimeout(), nil, nil, "systemctl", "is-system-running")
		if err == nil {
			last = strings.TrimSpace(r.Stdout)
			if last == "running" || last == "degraded" {
				return nil
			}
		} else {
			last = err.Error()
			if harness.ContainerEnded(err) {
				// PID 1 exited: systemd, or the remount before it, failed.
				return fmt.Errorf("start node: systemd exited: %s", n.lastLogLine())
			}
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

// lastLogLine is the last line PID 1 wrote (the container's log).
func (n *Node) lastLogLine() string {
	if n.res == nil {
		return "node closed"
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), harness.CallTimeout)
	defer cancel()
	err := n.pool.Client.Logs(dc.LogsOptions{Context: ctx, Container: n.res.Container.ID, OutputStream: &out, ErrorStream: &out,
		Stdout: true, Stderr: true, Tail: "5"})
	if err != nil {
		return "its log could not be read: " + harness.OneLine(err.Error())
	}
	if l := harness.LastLine(out.String()); l != "" {
		return l
	}
	return "it wrote nothing"
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

// SystemdView reads systemd's view of nginx.service, as the record keeps it.
func (n *Node) SystemdView(ctx context.Context) (record.SystemdView, error) {
	var v record.SystemdView
	if !n.systemd {
		return v, fmt.Errorf("not a systemd node")
	}
	r, err := n.execWithin(ctx, n.probeTimeout(), nil, nil, "sh", "-c", systemdViewScript, "sh", Unit)
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

// systemdSetup is how a systemd node gets the cgroup tree systemd as PID 1
// needs, on the engine's cgroup version.
type systemdSetup struct {
	cmd         []string
	caps        []string // on top of baseCaps
	mounts      []string
	securityOpt []string
	privateNS   bool // a private cgroup namespace (RunPrivateCgroupns)
}

// remountCgroupRW makes the container's cgroup2 mount writable, then
// becomes systemd. Docker mounts a private cgroup namespace's tree
// read-only in an unprivileged container, and systemd fails at once
// without a writable one ("Failed to create /init.scope control group:
// Read-only file system"). The tree is the namespace's: the container's
// own cgroup, nothing of the host's. A fixed script, no user input.
const remountCgroupRW = `mount -o remount,rw /sys/fs/cgroup || { echo "systemd node: cannot remount /sys/fs/cgroup read-write" >&2; exit 1; }
exec /lib/systemd/systemd`

// systemdCgroups says how to give systemd its cgroup tree on the engine's
// cgroups, or why it cannot be done, in one line.
//
// cgroup v1 (measured on Docker 20.10, cgroupfs): the engine host's tree
// bind-mounted read-only, in the host's cgroup namespace; systemd writes
// only its name=systemd hierarchy, which Docker bind-mounts writable for
// the container. CAP_SETPCAP as on every systemd node (systemdCaps).
//
// cgroup v2 (measured on Debian trixie's Docker 26.1, systemd driver): a
// private cgroup namespace, so that /sys/fs/cgroup is the container's own
// cgroup and systemd's slices are made under it, and that tree remounted
// read-write before systemd starts: CAP_SYS_ADMIN for the remount (Docker's
// default seccomp profile allows mount(2) with it). Where the engine
// confines containers with AppArmor, its docker-default profile denies
// every mount: the node then runs with apparmor=unconfined.
func systemdCgroups(cg harness.EngineCgroups) (systemdSetup, error) {
	switch cg.Version {
	case "1":
		return systemdSetup{cmd: []string{"/lib/systemd/systemd"}, caps: systemdCaps,
			mounts: []string{CgroupRoot + ":" + CgroupRoot + ":ro"}}, nil
	case "2":
		s := systemdSetup{cmd: []string{"/bin/sh", "-c", remountCgroupRW}, caps: append([]string{"SYS_ADMIN"}, systemdCaps...),
			privateNS: true}
		if cg.AppArmor {
			s.securityOpt = []string{"apparmor=unconfined"}
		}
		return s, nil
	}
	return systemdSetup{}, fmt.Errorf("systemd procedures: the engine reports cgroup version %q, neither 1 nor 2", cg.Version)
}

// CgroupRoot is where the Docker host's cgroup tree is, bind-mounted
// read-only into a systemd node on cgroup v1.
const CgroupRoot = "/sys/fs/cgroup"

// CheckSystemdHost says, in one line, why the engine behind pool cannot
// run systemd as PID 1 in an unprivileged node, or nil. It asks the
// engine (docker info), not this machine's files: the engine may run
// elsewhere than the CLI.
func CheckSystemdHost(ctx context.Context, pool *dockertest.Pool) error {
	cg, err := harness.CgroupsOf(ctx, pool)
	if err != nil {
		return fmt.Errorf("systemd procedures: %w", err)
	}
	_, err = systemdCgroups(cg)
	return err
}

// WithSystemd runs systemd as the container's PID 1 (the image must be a
// systemd variant, image.EnsureSystemdImage) and nginx as its nginx.service:
// started with `systemctl restart nginx` once the config under test is
// written, signalled and stopped by whoever the procedure says. The
// command (WithCommand) is then only used for `nginx -t`.
func WithSystemd() NodeOption { return func(c *nodeConfig) { c.systemd = true } }

// systemdCaps are what systemd needs on top of baseCaps: SETPCAP, because
// the units of systemd-journald and others narrow their capability
// bounding set (without it they fail with 218/CAPABILITIES, and the
// journal, so `journalctl -u nginx`, is lost). nginx.service needs nothing
// more than nginx itself.
var systemdCaps = []string{"SETPCAP"}

// systemdBoot bounds the wait for `systemctl is-system-running`: about 5 s
// here, and a minute or more in a VM under software emulation.
const systemdBoot = 3 * time.Minute
