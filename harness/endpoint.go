package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// ConnectTo returns a pool on the Docker engine at endpoint
// (unix:///var/run/docker.sock, tcp://127.0.0.1:2375, …), after checking
// that the engine answers within the ping deadline.
func ConnectTo(ctx context.Context, endpoint string) (*dockertest.Pool, error) {
	pool, err := dockertest.NewPool(endpoint)
	if err != nil {
		return nil, unreachable(endpoint, "", err)
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Client.PingWithContext(pctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || pctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", pingTimeout)
		}
		return nil, unreachable(endpoint, "", err)
	}
	return pool, nil
}

// CheckEndpoint refuses, before anything connects, an engine whose address
// says it is on another machine: the load goes only to 127.0.0.1 (a
// container's published port, or its network namespace on this host), and
// neither reaches a container another machine runs.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("--docker-host %q: want unix:///PATH or tcp://127.0.0.1:PORT", endpoint)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("--docker-host %q: want unix:///PATH", endpoint)
		}
		return nil
	case "tcp", "http", "https":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("--docker-host %s: an engine on another machine: the load goes only to 127.0.0.1, which does not reach its containers — run that engine's cells on its own machine (--shard I/N there, then report merge)", endpoint)
	}
	return fmt.Errorf("--docker-host %s: scheme %q not supported (want unix:// or tcp:// to this machine; an ssh:// engine is on another machine: run its cells there with --shard)", endpoint, u.Scheme)
}

// CheckLocal checks that the engine behind pool runs on this machine (its
// name is this host's name, and it sees this host's kernel): a socket
// forwarded from another machine looks local by its address alone. The
// load's 127.0.0.1 and network namespaces are this machine's.
func CheckLocal(ctx context.Context, pool *dockertest.Pool, endpoint string) error {
	type answer struct {
		name, kernel string
		err          error
	}
	ch := make(chan answer, 1)
	go func() {
		info, err := pool.Client.Info()
		if err != nil {
			ch <- answer{err: err}
			return
		}
		ch <- answer{name: info.Name, kernel: info.KernelVersion}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-time.After(CallTimeout):
		return fmt.Errorf("docker info at %s: no answer within %s", endpoint, CallTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if a.err != nil {
		return fmt.Errorf("docker info at %s: %s", endpoint, OneLine(a.err.Error()))
	}
	host, _ := os.Hostname()
	if a.name != host || (a.kernel != "" && a.kernel != KernelRelease()) {
		return fmt.Errorf("--docker-host %s: the engine runs on %q (kernel %s), not on this machine %q: the load goes only to 127.0.0.1, which does not reach its containers — run its cells there (--shard I/N), then report merge",
			endpoint, a.name, a.kernel, host)
	}
	return nil
}

// EndpointOf names the engine a pool talks to.
func EndpointOf(pool *dockertest.Pool) string {
	return strings.TrimSpace(pool.Client.Endpoint())
}

// CheckUpdate tells whether the engine can change a running container's
// resources (docker update, which the cpu-starve fault needs): asked to
// update a container that does not exist, an engine with the endpoint
// says there is no such container; one without it (Podman 4's Docker
// API) answers a bare 404.
func CheckUpdate(ctx context.Context, pool *dockertest.Pool) error {
	err := Bounded(ctx, CallTimeout, func() error {
		return pool.Client.UpdateContainer(Label+"-no-such-container-"+randomHex(4), dc.UpdateContainerOptions{Context: ctx})
	})
	if NoUpdateEndpoint(err) {
		return errNoUpdate(pool)
	}
	return nil
}

// UpdateErr is err from a docker update of a running container, said in
// one line when the engine has no update endpoint.
func UpdateErr(pool *dockertest.Pool, err error) error {
	if NoUpdateEndpoint(err) {
		return fmt.Errorf("%w: %w", errNoUpdate(pool), err)
	}
	return err
}

func errNoUpdate(pool *dockertest.Pool) error {
	return fmt.Errorf("the engine at %s cannot change a running container's CPU quota (no /containers/{id}/update: Podman's Docker API lacks it)", EndpointOf(pool))
}

// NoUpdateEndpoint tells whether err is an engine's answer that it has no
// update endpoint: a 404 that is not "no such container".
func NoUpdateEndpoint(err error) bool {
	var de *dc.Error
	return errors.As(err, &de) && de.Status == 404 && !strings.Contains(strings.ToLower(de.Message), "no such container")
}
