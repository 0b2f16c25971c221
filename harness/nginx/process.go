package nginx

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// Snapshot reads the process table, the pid files and the error log size.
func (n *Node) Snapshot(ctx context.Context) (proc.Snapshot, error) {
	r, err := n.execWithin(ctx, n.probeTimeout(), nil, nil, "sh", "-c", proc.Script, "sh", n.pidFile, n.errLog)
	if err != nil {
		return proc.Snapshot{}, fmt.Errorf("read process table: %w", err)
	}
	if r.Exit != 0 {
		return proc.Snapshot{}, fmt.Errorf("read process table: exit %d: %s", r.Exit, harness.LastLine(r.Stderr+r.Stdout))
	}
	s, err := proc.Parse(r.Stdout)
	if err != nil {
		return s, err
	}
	for i := range s.Procs {
		if s.Procs[i].Role == proc.RoleMaster {
			s.Procs[i].Binary = n.identify(s.Procs[i].SHA256)
		}
	}
	return s, nil
}

// identify names a binary by its content: old, new or unknown.
func (n *Node) identify(sum string) string {
	switch {
	case sum == "":
		return "unknown"
	case sum == n.builds.OldSHA256 && sum == n.builds.NewSHA256:
		return "same"
	case sum == n.builds.OldSHA256:
		return "old"
	case sum == n.builds.NewSHA256:
		return "new"
	}
	return "unknown"
}

// Signal sends sig (e.g. "USR2") to the pids inside the container, in one
// kill(1) call, as argv.
func (n *Node) Signal(ctx context.Context, sig string, pids ...int) error {
	argv := []string{"kill", "-s", sig}
	for _, pid := range pids {
		if pid <= 1 {
			return fmt.Errorf("signal %s: refusing pid %d", sig, pid)
		}
		argv = append(argv, strconv.Itoa(pid))
	}
	if len(pids) == 0 {
		return fmt.Errorf("signal %s: no pid", sig)
	}
	r, err := n.execWithin(ctx, n.probeTimeout(), nil, nil, argv...)
	if err != nil {
		return fmt.Errorf("signal %s to %v: %w", sig, pids, err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("signal %s to %v: %s", sig, pids, harness.LastLine(r.Stderr))
	}
	return nil
}

// LogSince returns the error log's lines after offset bytes.
func (n *Node) LogSince(ctx context.Context, offset int64) ([]string, error) {
	r, err := n.execWithin(ctx, n.probeTimeout(), nil, nil, "tail", "-c", "+"+strconv.FormatInt(offset+1, 10), n.errLog)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
