package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/ory/dockertest/v3/docker/pkg/stdcopy"
)

// AgentCommand is the hidden subcommand of the CLI that runs as a load
// agent (loadgen/agent.Command; the CLI's tests hold the two equal).
const AgentCommand = "load-agent"

// agentTmp is the agent's only writable place (a tmpfs): the load's record
// files, until they are sent back.
const agentTmp = "/tmp"

// Agent is a helper container in nginx's network namespace running the
// tool's own static binary as a load agent; Stdin and Stdout are its
// attached stdio (Stdout demultiplexed).
type Agent struct {
	pool      *dockertest.Pool
	container string
	conn      net.Conn
	Stdin     io.Writer
	Stdout    io.Reader
}

// StartAgent starts a load agent that shares the network namespace of the
// container nodeContainer — and nothing else: not its pid namespace, its
// cgroup (a fault that freezes or starves nginx's container leaves the
// agent alone) or its files. It runs as nobody with every capability
// dropped, a read-only root and a tmpfs for its records; its image holds
// binary alone (the reaper's image). It carries the run's labels: the
// run's end, or its reaper, removes it.
func StartAgent(ctx context.Context, pool *dockertest.Pool, binary, nodeContainer string) (*Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	ref, err := ensureReaperImage(ctx, pool, binary)
	if err != nil {
		return nil, fmt.Errorf("load agent: %w", err)
	}
	var c *dc.Container
	err = Bounded(ctx, CallTimeout, func() (err error) {
		c, err = pool.Client.CreateContainer(dc.CreateContainerOptions{
			Context: ctx,
			Name:    fmt.Sprintf("%s-agent-%s-%s", Label, RunID(), randomHex(3)),
			Config: &dc.Config{
				Image:      ref,
				Entrypoint: []string{reaperBinPath, AgentCommand, "--dir", agentTmp},
				User:       "65534:65534",
				OpenStdin:  true, StdinOnce: true,
				AttachStdin: true, AttachStdout: true, AttachStderr: true,
				Labels: OwnerLabels(pool),
			},
			HostConfig: &dc.HostConfig{
				AutoRemove:     true,
				NetworkMode:    "container:" + nodeContainer,
				CapDrop:        []string{"ALL"},
				SecurityOpt:    []string{"no-new-privileges"},
				ReadonlyRootfs: true,
				Tmpfs:          map[string]string{agentTmp: "rw,size=512m,mode=1777"},
			},
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create load agent from %s: %s", ref, OneLine(CallErr(ctx, readyTimeout, err).Error()))
	}
	a := &Agent{pool: pool, container: c.ID}
	fail := func(err error) (*Agent, error) {
		a.Close()
		return nil, err
	}
	conn, stream, err := attachStdio(ctx, pool.Client, c.ID)
	if err != nil {
		return fail(fmt.Errorf("attach to load agent %.12s: %s", c.ID, OneLine(CallErr(ctx, readyTimeout, err).Error())))
	}
	a.conn = conn
	if err := pool.Client.StartContainerWithContext(c.ID, nil, ctx); err != nil {
		return fail(fmt.Errorf("start load agent %.12s: %s", c.ID, OneLine(CallErr(ctx, readyTimeout, err).Error())))
	}
	conn.SetDeadline(time.Time{})
	out, w := io.Pipe()
	errs := &tailWriter{}
	go func() {
		_, err := stdcopy.StdCopy(w, errs, stream)
		if err == nil {
			err = io.EOF
		}
		if t := errs.String(); t != "" {
			err = errors.New("load agent: " + OneLine(t))
		}
		w.CloseWithError(err)
	}()
	a.Stdin, a.Stdout = conn, out
	return a, nil
}

// Close ends the agent's stdio and removes its container.
func (a *Agent) Close() error {
	if a.conn != nil {
		a.conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	return RemoveContainer(ctx, a.pool, a.container)
}

// tailWriter keeps the last few KB written to it (the agent's stderr).
type tailWriter struct{ b []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return string(t.b) }
