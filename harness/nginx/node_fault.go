package nginx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// What a fault does to the node's container from outside: freeze it, starve
// it of CPU. Every call is harness.Bounded.

// freezerPaths are where a container's freezer state lives on the host,
// cgroup v1 (cgroupfs driver) first, then v2 (systemd driver).
func freezerPaths(fullID string) []string {
	return []string{
		filepath.Join("/sys/fs/cgroup/freezer/docker", fullID, "freezer.state"),
		filepath.Join("/sys/fs/cgroup/system.slice", "docker-"+fullID+".scope", "cgroup.freeze"),
	}
}

// Freeze stops every process of the container through its freezer cgroup,
// as `docker pause` does — but without Docker, so that no `docker exec` in
// flight can hang on it: an exec that lands meanwhile is frozen with the
// rest and goes on at the thaw.
func (n *Node) Freeze(ctx context.Context) error {
	n.selfFrozen.Store(true)
	return n.setFrozen(ctx, true)
}

// Thaw resumes the processes Freeze stopped.
func (n *Node) Thaw(ctx context.Context) error {
	err := n.setFrozen(ctx, false)
	if err == nil {
		n.selfFrozen.Store(false)
	}
	return err
}

func (n *Node) setFrozen(ctx context.Context, frozen bool) error {
	if n.res == nil {
		return errors.New("node closed")
	}
	for _, p := range freezerPaths(n.res.Container.ID) {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		v1 := strings.HasSuffix(p, "freezer.state")
		want := map[bool]string{true: "FROZEN", false: "THAWED"}[frozen]
		val := want
		if !v1 {
			val = map[bool]string{true: "1", false: "0"}[frozen]
		}
		if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
			return fmt.Errorf("%s container: %w", strings.ToLower(want), err)
		}
		if !v1 {
			return nil
		}
		// cgroup v1 goes through FREEZING: wait until it settled.
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile(p)
			if err == nil && strings.TrimSpace(string(b)) == want {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("container freezer still %q, not %s, after 5s", strings.TrimSpace(string(b)), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return fmt.Errorf("no freezer cgroup for container %.12s on this host (looked in %s)", n.res.Container.ID,
		strings.Join(freezerPaths(n.res.Container.ID), ", "))
}

// LimitCPU sets the container's CPU quota in cores; 0 lifts it.
func (n *Node) LimitCPU(ctx context.Context, cores float64) error {
	if n.res == nil {
		return errors.New("node closed")
	}
	const period = 100000
	quota := -1
	if cores > 0 {
		quota = int(cores * period)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := n.pool.Client.UpdateContainer(n.res.Container.ID, dc.UpdateContainerOptions{CPUPeriod: period, CPUQuota: quota, Context: cctx})
	if err != nil {
		return fmt.Errorf("docker update --cpu-quota %d: %w", quota, harness.UpdateErr(n.pool, err))
	}
	return nil
}

// WithTmpfs mounts a small tmpfs at dir (options as `--tmpfs`, e.g.
// "size=256k"), for a fault that fills it.
func WithTmpfs(dir, options string) NodeOption {
	return func(c *nodeConfig) {
		if c.tmpfs == nil {
			c.tmpfs = map[string]string{}
		}
		c.tmpfs[dir] = options
	}
}
