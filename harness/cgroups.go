package harness

// What the engine says of its cgroups, and a container create that names
// its cgroup namespace (which the Docker client library cannot).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// EngineCgroups is the engine's cgroup setup, as `docker info` reports it.
type EngineCgroups struct {
	// Version is "1" or "2". Engines before 20.10 (API 1.41) do not report
	// it; they only ever ran on cgroup v1, and Version is "1" then.
	Version string
	Driver  string // cgroupfs or systemd
	// AppArmor is true when the engine confines containers with AppArmor
	// (its security options name it).
	AppArmor bool
}

// CgroupsOf asks the engine — not this machine's /sys/fs/cgroup: the
// engine may run elsewhere than the CLI — which cgroup version and driver
// it runs its containers with. The client library's DockerInfo has no
// CgroupVersion field, so /info is read raw.
func CgroupsOf(ctx context.Context, pool *dockertest.Pool) (EngineCgroups, error) {
	var info struct {
		CgroupVersion   string
		CgroupDriver    string
		SecurityOptions []string
	}
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	if err := apiDo(cctx, pool.Client, http.MethodGet, "/info", &info); err != nil {
		return EngineCgroups{}, fmt.Errorf("docker info at %s: %s", EndpointOf(pool), OneLine(CallErr(ctx, CallTimeout, err).Error()))
	}
	c := EngineCgroups{Version: info.CgroupVersion, Driver: info.CgroupDriver}
	if c.Version == "" {
		c.Version = "1"
	}
	for _, o := range info.SecurityOptions {
		if strings.Contains(o, "name=apparmor") {
			c.AppArmor = true
		}
	}
	return c, nil
}

// CreateOptions is what RunPrivateCgroupns creates: the library's own
// Config and HostConfig, sent as they are, plus the cgroup namespace mode.
type CreateOptions struct {
	Config     *dc.Config
	HostConfig *dc.HostConfig
}

// RunPrivateCgroupns creates and starts a container with a private cgroup
// namespace and returns it as a dockertest resource. go-dockerclient's
// HostConfig has no CgroupnsMode field (Docker API 1.41): the create is
// sent to the engine's API directly, the library's HostConfig encoded as
// it would encode it with "CgroupnsMode": "private" added, so that every
// other field means exactly what it means for the nodes the library
// starts. The engine's default mode is not relied on: it is "host" on
// cgroup v1 and for clients that speak an API older than 1.41, and
// daemon.json can change it.
func RunPrivateCgroupns(ctx context.Context, pool *dockertest.Pool, o CreateOptions) (*dockertest.Resource, error) {
	hc, err := json.Marshal(o.HostConfig)
	if err != nil {
		return nil, err
	}
	var hostConfig map[string]any
	if err := json.Unmarshal(hc, &hostConfig); err != nil {
		return nil, err
	}
	hostConfig["CgroupnsMode"] = "private"
	cf, err := json.Marshal(o.Config)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(cf, &body); err != nil {
		return nil, err
	}
	body["HostConfig"] = hostConfig
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var created struct{ Id string }
	cctx, cancel := context.WithTimeout(ctx, RunTimeout)
	defer cancel()
	if err := apiSend(cctx, pool.Client, http.MethodPost, "/containers/create", payload, &created); err != nil {
		return nil, fmt.Errorf("create container (private cgroup namespace): %w", CallErr(ctx, RunTimeout, err))
	}
	if err := apiSend(cctx, pool.Client, http.MethodPost, "/containers/"+url.PathEscape(created.Id)+"/start", nil, nil); err != nil {
		return nil, fmt.Errorf("start container %.12s: %w", created.Id, CallErr(ctx, RunTimeout, err))
	}
	// Published ports are assigned once the container runs: inspect
	// until every exposed port has its binding (as the library does).
	for i := 0; ; i++ {
		var c dc.Container
		if err := apiDo(cctx, pool.Client, http.MethodGet, "/containers/"+url.PathEscape(created.Id)+"/json", &c); err != nil {
			return nil, fmt.Errorf("inspect container %.12s: %w", created.Id, CallErr(ctx, RunTimeout, err))
		}
		bound := c.NetworkSettings != nil
		if bound {
			for _, b := range c.NetworkSettings.Ports {
				if len(b) == 0 {
					bound = false
				}
			}
		}
		if bound || i >= 10 {
			return &dockertest.Resource{Container: &c}, nil
		}
		select {
		case <-cctx.Done():
			return nil, fmt.Errorf("inspect container %.12s: %w", created.Id, CallErr(ctx, RunTimeout, cctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// apiSend is apiDo with a JSON body.
func apiSend(ctx context.Context, c *dc.Client, method, path string, body []byte, out any) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, engineURL(c)+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s (HTTP %d)", OneLine(apiMessage(resp)), resp.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
