package nginx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// ExecResult is the outcome of a command run in the container.
type ExecResult struct {
	Exit   int
	Stdout string
	Stderr string
}

// Exec runs argv in the container (no shell) and returns its exit status;
// err is only for a command that could not be run at all.
func (n *Node) Exec(ctx context.Context, argv ...string) (ExecResult, error) {
	return n.ExecEnv(ctx, nil, nil, argv...)
}

// ExecEnv is Exec with environment variables and standard input. It is
// Bounded by ctx's deadline (a procedure's timeout), or by harness.ExecTimeout
// when ctx has none.
func (n *Node) ExecEnv(ctx context.Context, env []string, stdin []byte, argv ...string) (ExecResult, error) {
	timeout := harness.ExecTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Round(time.Millisecond)
	}
	return n.execWithin(ctx, timeout, env, stdin, argv...)
}

// execWithin runs argv in the container with every Docker call of it
// Bounded by timeout. A call that fails or is abandoned is a *harness.CallError
// naming the container's state.
func (n *Node) execWithin(ctx context.Context, timeout time.Duration, env []string, stdin []byte, argv ...string) (ExecResult, error) {
	if n.res == nil {
		return ExecResult{}, errors.New("node closed")
	}
	id := n.res.Container.ID
	var out, errb bytes.Buffer
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	began := time.Now()
	exit, err := harness.ExecIn(cctx, n.pool.Client, id, env, in, &out, &errb, argv...)
	cancel()
	if err == nil {
		n.execCost.add(time.Since(began))
	}
	if err != nil {
		err = harness.CallErr(ctx, timeout, err)
		if ctx.Err() != nil {
			return ExecResult{}, fmt.Errorf("exec %s: %w", argv[0], err)
		}
		state, _, ended := harness.ContainerState(context.Background(), n.pool, id)
		return ExecResult{}, &harness.CallError{Call: "docker exec " + argv[0], Container: id, Err: err, State: state, Ended: ended}
	}
	return ExecResult{Exit: exit, Stdout: out.String(), Stderr: errb.String()}, nil
}

// execDetached starts argv in the container and returns without waiting for it.
func (n *Node) execDetached(ctx context.Context, argv ...string) error {
	if n.res == nil {
		return errors.New("node closed")
	}
	ex, err := n.pool.Client.CreateExec(dc.CreateExecOptions{Container: n.res.Container.ID, Cmd: argv, Context: ctx})
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	if err := n.pool.Client.StartExec(ex.ID, dc.StartExecOptions{Detach: true, Context: ctx}); err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return nil
}

// ReadFile reads a file in the container.
func (n *Node) ReadFile(ctx context.Context, path string) ([]byte, error) {
	r, err := n.Exec(ctx, "cat", path)
	if err != nil {
		return nil, err
	}
	if r.Exit != 0 {
		return nil, fmt.Errorf("read %s: %s", path, harness.LastLine(r.Stderr))
	}
	return []byte(r.Stdout), nil
}

// WriteFile puts a file into the container (through the archive API, no shell).
func (n *Node) WriteFile(ctx context.Context, path string, data []byte, mode int64) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir, name := path[:strings.LastIndexByte(path, '/')+1], path[strings.LastIndexByte(path, '/')+1:]
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		return err
	}
	tw.Write(data)
	tw.Close()
	if err := n.upload(ctx, dir, &buf); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// upload extracts a tar stream into dir in the container (the archive
// API, no shell), under a deadline.
func (n *Node) upload(ctx context.Context, dir string, buf *bytes.Buffer) error {
	if n.res == nil {
		return errors.New("node closed")
	}
	id := n.res.Container.ID
	err := harness.Bounded(ctx, harness.CallTimeout, func() error {
		uctx, cancel := context.WithTimeout(ctx, harness.CallTimeout)
		defer cancel()
		return n.pool.Client.UploadToContainer(id, dc.UploadToContainerOptions{InputStream: buf, Path: dir, Context: uctx})
	})
	if err != nil {
		state, _, ended := harness.ContainerState(context.Background(), n.pool, id)
		return &harness.CallError{Call: "docker cp (upload)", Container: id, Err: err, State: state, Ended: ended}
	}
	return nil
}

// StartAs starts argv in the container as user (a name or uid:gid: not
// root) and returns without waiting for it: a process of the container's
// own, in its cgroup, that ends with it.
func (n *Node) StartAs(ctx context.Context, user string, argv ...string) error {
	if n.res == nil {
		return errors.New("node closed")
	}
	return harness.Bounded(ctx, harness.CallTimeout, func() error {
		ex, err := n.pool.Client.CreateExec(dc.CreateExecOptions{Container: n.res.Container.ID, Cmd: argv, User: user, Context: ctx})
		if err != nil {
			return fmt.Errorf("exec %s: %w", argv[0], err)
		}
		if err := n.pool.Client.StartExec(ex.ID, dc.StartExecOptions{Detach: true, Context: ctx}); err != nil {
			return fmt.Errorf("exec %s: %w", argv[0], err)
		}
		return nil
	})
}

// execCalibration is what the node's first execs took: the host's speed at
// rest (before the load starts), which a slow host (an emulated VM) scales
// its deadlines and long downloads by.
type execCalibration struct {
	mu    sync.Mutex
	first []time.Duration
}

// calibrationExecs is how many first execs the calibration keeps.
const calibrationExecs = 7

func (c *execCalibration) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.first) < calibrationExecs {
		c.first = append(c.first, d)
	}
}

// median of the first execs (0: none yet).
func (c *execCalibration) median() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.first) == 0 {
		return 0
	}
	ds := append([]time.Duration(nil), c.first...)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// ExecCost is the median of the node's first execs: about 0.1 s on a
// machine like this one, seconds in an emulated VM (docs/vm.md).
func (n *Node) ExecCost() time.Duration { return n.execCost.median() }

// probeSlowFactor scales a probe's deadline on a slow host: a probe is a
// few execs' worth of work, and one that takes this many times the host's
// exec at rest is lost, not slow.
const probeSlowFactor = 25

// probeTimeout bounds one probe: harness.ProbeTimeout, or more on a host
// whose execs at rest are slow.
func (n *Node) probeTimeout() time.Duration {
	return max(harness.ProbeTimeout, probeSlowFactor*n.ExecCost())
}
