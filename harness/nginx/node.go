package nginx

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

const (
	// ListenPort is the port the nginx.conf under test listens on inside the
	// container; the node publishes it on 127.0.0.1 only.
	ListenPort     = 8080
	defaultPidFile = "/run/nginx.pid"
	defaultErrLog  = "/var/log/nginx/error.log"
)

// DefaultConfig is the nginx.conf the harness uses when the user gives none:
// a small page on / and a slowly served file under /slow/ (the rate comes
// from the query, so each long download can be sized to span the scenario)
// on 8080; the same page over HTTP/2 with TLS on 8443 (the node writes a
// certificate generated for it under TLSDir before nginx -t); and, for the
// proxy, WebSocket and upload traffic, an upstream on 127.0.0.2:9000 in the
// container's network namespace (loadgen/backend, started by the scenario
// when the traffic needs it). nginx 1.22 spells HTTP/2 on the listen line;
// 1.25.1 and later accept it with a warning.
const DefaultConfig = `# nginx.conf used by nginx-upgrade-harness when no --config is given.
user www-data;
worker_processes 2;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log notice;
# Bounds how long a draining worker keeps connections that never end by
# themselves (WebSockets): without it the old master outlives QUIT for as
# long as its clients stay (README: "Traffic kinds").
worker_shutdown_timeout 20s;

events {
    worker_connections 4096;
}

http {
    types {
        text/html html;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    # The second witness: one JSON line per request, on a tmpfs of its
    # own, read back after the run (README: "The server's record").
    log_format nuh_witness escape=json
        '{"id":"$http_x_nuh_request_id","pid":$pid,"connection":$connection,'
        '"connection_requests":$connection_requests,"status":$status,"bytes_sent":$bytes_sent,'
        '"body_bytes_sent":$body_bytes_sent,"content_length":"$sent_http_content_length",'
        '"request_length":$request_length,"request_time":$request_time,"msec":$msec,'
        '"protocol":"$server_protocol","upstream_status":"$upstream_status"}';
    access_log /var/lib/nuh-witness/access.jsonl nuh_witness;
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    gzip on;

    upstream nuh_backend {
        server 127.0.0.2:9000;
        keepalive 32;
    }

    map $http_upgrade $nuh_connection {
        default upgrade;
        ""      "";
    }

    server {
        listen 8080 backlog=4096;
        listen 8443 ssl http2 backlog=4096;
        ssl_certificate     /etc/nginx/nuh-tls/cert.pem;
        ssl_certificate_key /etc/nginx/nuh-tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:nuh_tls:1m;
        ssl_session_timeout 10m;
        root /srv/www;
        # Which worker answered: the client keeps it for a response whose
        # end never came (a KILLed worker logs nothing).
        add_header X-Nuh-Pid $pid always;

        location / {
            index index.html;
        }

        location = /post {
            # POST is answered without touching the file system; the body is read and discarded.
            client_body_buffer_size 64k;
            return 200 "ok\n";
        }

        location /slow/ {
            limit_rate $arg_rate;
        }

        # Reverse proxy with upstream keep-alive.
        location /backend/ {
            proxy_pass http://nuh_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /ws {
            proxy_pass http://nuh_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $nuh_connection;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }

        # Large bodies stream through to the backend as they arrive
        # (proxy_request_buffering off): an upload is still on the wire,
        # client to upstream, when a signal lands.
        location = /upload {
            client_max_body_size 64m;
            proxy_request_buffering off;
            proxy_pass http://nuh_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// Node is one nginx under test in a container: Docker's init as PID 1,
// nginx daemonised under it, its port published on 127.0.0.1 only.
type Node struct {
	pool *dockertest.Pool
	res  *dockertest.Resource
	id   string
	url  string
	cmd  []string
	// selfFrozen is set while a fault of the harness's own holds the
	// container frozen: that freeze is the experiment, not the environment.
	selfFrozen atomic.Bool
	config     []byte // nginx.conf on disk
	binary     string // the absolute path nginx runs from (cmd[0], looked up in PATH when relative)
	pidFile    string
	errLog     string
	builds     harness.BuildsInfo
	tlsURL     string            // the published TLSPort, https://127.0.0.1:PORT
	cert       *x509.Certificate // generated for this node when its config names TLSDir
	systemd    bool              // systemd is PID 1 and nginx its nginx.service
	witness    bool              // its configuration writes the server's log (WitnessLog)
	// With a configuration tree (WithTree, WithSite): the listeners it
	// declares, the published 127.0.0.1:PORT of each port, and the ports
	// the harness probes and loads through (plain HTTP and TLS).
	tree              *Tree
	listeners         []Listener
	hostAddrs         map[int]string
	mainPort, tlsPort int
}

type nodeConfig struct {
	image   string
	config  []byte
	cmd     []string
	labels  map[string]string
	sysctls map[string]string
	caps    []string
	tmpfs   map[string]string
	memory  int64
	start   bool
	systemd bool
	unit    []byte // the user's nginx.service (WithUnit); nil: the package's
	tree    *Tree
	site    *Site
	mounts  []Mount
	hosts   []string
}

// NodeOption configures StartNode.
type NodeOption func(*nodeConfig)

// WithImage names the pair image to run (required).
func WithImage(ref string) NodeOption { return func(c *nodeConfig) { c.image = ref } }

// WithConfig is the nginx.conf under test (default DefaultConfig).
func WithConfig(conf []byte) NodeOption { return func(c *nodeConfig) { c.config = conf } }

// WithCommand is the argv that starts nginx (default: /usr/sbin/nginx).
func WithCommand(argv []string) NodeOption { return func(c *nodeConfig) { c.cmd = argv } }

// WithLabel adds a label to the container (on top of the harness's own).
func WithLabel(k, v string) NodeOption { return func(c *nodeConfig) { c.labels[k] = v } }

// WithSysctl sets a namespaced sysctl, e.g. net.ipv4.tcp_migrate_req.
func WithSysctl(k, v string) NodeOption { return func(c *nodeConfig) { c.sysctls[k] = v } }

// WithCapability adds a named capability a fault needs.
func WithCapability(name string) NodeOption {
	return func(c *nodeConfig) { c.caps = append(c.caps, name) }
}

// WithMemoryLimit caps the container's memory (and memory+swap) at bytes:
// past it, the kernel's OOM killer kills processes in the container.
func WithMemoryLimit(bytes int64) NodeOption { return func(c *nodeConfig) { c.memory = bytes } }

// WithTree places a configuration tree at TreeDir (replacing what the
// image has there) instead of writing one nginx.conf.
func WithTree(t *Tree) NodeOption { return func(c *nodeConfig) { c.tree = t } }

// WithSite publishes every port the site's listeners declare (instead of
// ListenPort and TLSPort) on 127.0.0.1; the node probes and loads through
// the first plain-HTTP listener on a wildcard IPv4 address, and the first
// TLS one. Ports below 1024 get the NET_BIND_SERVICE capability.
func WithSite(s *Site) NodeOption { return func(c *nodeConfig) { c.site = s } }

// WithMounts bind-mounts host paths read-only into the container.
func WithMounts(ms ...Mount) NodeOption {
	return func(c *nodeConfig) { c.mounts = append(c.mounts, ms...) }
}

// WithExtraHosts adds NAME:IP lines to the container's /etc/hosts.
func WithExtraHosts(hosts ...string) NodeOption {
	return func(c *nodeConfig) { c.hosts = append(c.hosts, hosts...) }
}

// WithoutStart leaves nginx stopped (a procedure starts it itself).
func WithoutStart() NodeOption { return func(c *nodeConfig) { c.start = false } }

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

// nginx's master needs to switch to the worker user, own its files and
// signal its workers; nothing else is granted.
var baseCaps = []string{"CHOWN", "SETUID", "SETGID", "KILL", "DAC_OVERRIDE", "FOWNER"}

// StartNode runs the container, installs the nginx.conf, checks it with the
// old binary (`nginx -t`), starts nginx and waits until it serves.
func StartNode(ctx context.Context, pool *dockertest.Pool, opts ...NodeOption) (*Node, error) {
	c := nodeConfig{cmd: []string{harness.DefaultBinary}, config: []byte(DefaultConfig),
		labels: map[string]string{}, sysctls: map[string]string{}, start: true}
	for _, o := range opts {
		o(&c)
	}
	if c.image == "" {
		return nil, errors.New("start node: no image")
	}
	if len(c.cmd) == 0 || c.cmd[0] == "" {
		return nil, errors.New("start node: empty nginx command")
	}
	id := randomID()
	labels := harness.OwnerLabels(pool)
	labels[harness.Label+".node"] = id
	for k, v := range c.labels {
		labels[k] = v
	}
	repo, tag := splitRef(c.image)
	if c.tree != nil {
		c.config = c.tree.Main()
	}
	mainPort, tlsPortN := ListenPort, TLSPort
	ports := []int{ListenPort, TLSPort}
	if c.site != nil {
		ports = c.site.Ports()
		mainPort, tlsPortN = SiteMainPorts(c.site)
	}
	port := dc.Port(strconv.Itoa(mainPort) + "/tcp")
	exposed := []string{}
	bindings := map[dc.Port][]dc.PortBinding{}
	for _, p := range ports {
		dp := dc.Port(strconv.Itoa(p) + "/tcp")
		exposed = append(exposed, string(dp))
		bindings[dp] = []dc.PortBinding{{HostIP: "127.0.0.1", HostPort: ""}}
	}
	cmd := []string{"sleep", "infinity"}
	caps := append(append([]string{}, baseCaps...), c.caps...)
	for _, p := range ports {
		if p < 1024 {
			caps = append(caps, "NET_BIND_SERVICE") // the master binds the configuration's port below 1024
			break
		}
	}
	var mounts []string
	for _, m := range c.mounts {
		mounts = append(mounts, m.Src+":"+m.Dst+":ro")
	}
	if usesWitness(c.config, c.tree) {
		if c.tmpfs == nil {
			c.tmpfs = map[string]string{}
		}
		c.tmpfs[WitnessDir] = WitnessTmpfs
	}
	securityOpt := []string{"no-new-privileges"}
	var cgroupsV2 bool
	if c.systemd {
		// systemd as PID 1: its own /run, and a cgroup tree of its own
		// that it can write (systemdCgroups).
		cg, err := harness.CgroupsOf(ctx, pool)
		if err != nil {
			return nil, fmt.Errorf("start node: %w", err)
		}
		sc, err := systemdCgroups(cg)
		if err != nil {
			return nil, fmt.Errorf("start node: %w", err)
		}
		cmd, cgroupsV2 = sc.cmd, sc.privateNS
		caps = append(caps, sc.caps...)
		mounts = append(mounts, sc.mounts...)
		securityOpt = append(securityOpt, sc.securityOpt...)
		if c.tmpfs == nil {
			c.tmpfs = map[string]string{}
		}
		c.tmpfs["/run"], c.tmpfs["/run/lock"] = "", ""
	}
	hostConfig := func(hc *dc.HostConfig) {
		hc.Init = !c.systemd // systemd is its own init
		hc.AutoRemove = false
		hc.PublishAllPorts = false
		hc.CapDrop = []string{"ALL"}
		hc.CapAdd = caps
		if len(c.sysctls) > 0 {
			hc.Sysctls = c.sysctls
		}
		if len(c.tmpfs) > 0 {
			hc.Tmpfs = c.tmpfs
		}
		hc.RestartPolicy = dc.RestartPolicy{Name: "no"}
		if len(c.hosts) > 0 {
			hc.ExtraHosts = c.hosts
		}
		if c.memory > 0 {
			hc.Memory, hc.MemorySwap = c.memory, c.memory
		}
	}
	var res *dockertest.Resource
	var err error
	if cgroupsV2 {
		res, err = harness.RunPrivateCgroupns(ctx, pool, harness.CreateOptions{
			Config: &dc.Config{
				Image:        repo + ":" + tag,
				Cmd:          cmd,
				Labels:       labels,
				ExposedPorts: exposedSet(exposed),
				// systemd's own shutdown signal (nodes are removed, not
				// stopped; this is for a `docker stop` by hand).
				StopSignal: "SIGRTMIN+3",
			},
			HostConfig: func() *dc.HostConfig {
				hc := &dc.HostConfig{Binds: mounts, PortBindings: bindings, CapAdd: caps, SecurityOpt: securityOpt}
				hostConfig(hc)
				return hc
			}(),
		})
	} else {
		err = harness.Bounded(ctx, harness.RunTimeout, func() error {
			var err error
			res, err = pool.RunWithOptions(&dockertest.RunOptions{
				Repository:   repo,
				Tag:          tag,
				Cmd:          cmd,
				Mounts:       mounts,
				Labels:       labels,
				ExposedPorts: exposed,
				PortBindings: bindings,
				SecurityOpt:  securityOpt,
			}, hostConfig)
			return err
		})
	}
	if err != nil {
		// A container that was created but not started still carries our label.
		removeByLabel(pool, harness.Label+".node", id)
		return nil, fmt.Errorf("start node from %s: %w", c.image, err)
	}
	n := &Node{pool: pool, res: res, id: id, cmd: c.cmd, binary: c.cmd[0], config: c.config, systemd: c.systemd,
		witness: usesWitness(c.config, c.tree),
		pidFile: directive(c.config, "pid", defaultPidFile),
		errLog:  directive(c.config, "error_log", defaultErrLog),
		tree:    c.tree, mainPort: mainPort, tlsPort: tlsPortN, hostAddrs: map[int]string{}}
	for _, p := range ports {
		if hp := res.GetHostPort(strconv.Itoa(p) + "/tcp"); strings.HasPrefix(hp, "127.0.0.1:") {
			n.hostAddrs[p] = hp
		}
	}
	if c.site != nil {
		n.listeners = append([]Listener(nil), c.site.Listeners...)
	} else {
		// One nginx.conf: the ports the harness's own configuration
		// listens on (and a --config must): 8080, and 8443 with TLS.
		n.listeners = []Listener{{Addr: "*", Port: ListenPort}, {Addr: "*", Port: TLSPort, SSL: true, HTTP2: true}}
	}
	for i := range n.listeners {
		n.listeners[i].HostAddr = n.hostAddrs[n.listeners[i].Port]
	}
	hostPort := n.hostAddrs[mainPort]
	if hostPort == "" {
		n.Close()
		return nil, fmt.Errorf("start node: port %s not published on 127.0.0.1 (got %q)", port, res.GetHostPort(string(port)))
	}
	n.url = "http://" + hostPort
	if hp := n.hostAddrs[tlsPortN]; hp != "" {
		n.tlsURL = "https://" + hp
	}
	if err := n.setup(ctx, c); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) setup(ctx context.Context, c nodeConfig) error {
	if c.systemd {
		if err := n.waitSystemd(ctx); err != nil {
			return err
		}
		if c.unit != nil {
			if err := n.installUnit(ctx, c.unit); err != nil {
				return fmt.Errorf("start node: %w", err)
			}
		}
	}
	if c.tree != nil {
		if err := n.placeTree(ctx, c.tree); err != nil {
			return fmt.Errorf("start node: %w", err)
		}
	} else if err := n.WriteFile(ctx, harness.ConfigPath, c.config, 0o644); err != nil {
		return err
	}
	if usesTLSDir(c.config) {
		if err := n.installCertificate(ctx); err != nil {
			return fmt.Errorf("start node: %w", err)
		}
	}
	if !strings.HasPrefix(n.binary, "/") {
		// A command such as `nginx -g 'daemon off;'` is found in PATH; the
		// binary an upgrade replaces is the file it names. nginx itself
		// re-executes its argv[0] on USR2, as it was given.
		r, err := n.Exec(ctx, "sh", "-c", `command -v "$1"`, "sh", n.binary)
		if err != nil {
			return fmt.Errorf("start node: look up %q: %w", n.binary, err)
		}
		path := strings.TrimSpace(r.Stdout)
		if r.Exit != 0 || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("nginx command %q: %q is not found in the container's PATH", strings.Join(n.cmd, " "), n.binary)
		}
		n.binary = path
	}
	if out, err := n.ReadFile(ctx, harness.BuildsFile); err == nil {
		if err := json.Unmarshal(out, &n.builds); err != nil {
			return fmt.Errorf("start node: %s: %w", harness.BuildsFile, err)
		}
	}
	// The binary identity comes from the staged files themselves, so that
	// old and new are told apart by content, not by what builds.json claims.
	if r, err := n.Exec(ctx, "sha256sum", harness.OldBinaryStage, harness.NewBinaryStage); err == nil && r.Exit == 0 {
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[1] == harness.OldBinaryStage {
				n.builds.OldSHA256 = f[0]
			} else if len(f) == 2 && f[1] == harness.NewBinaryStage {
				n.builds.NewSHA256 = f[0]
			}
		}
	}
	if err := n.TestConfig(ctx, c.cmd[0]); err != nil {
		return err
	}
	if !c.start {
		return nil
	}
	return n.StartNginx(ctx)
}

// TestConfig runs `BINARY -t` with the node's command line options.
func (n *Node) TestConfig(ctx context.Context, binary string) error {
	argv := append([]string{binary}, n.cmd[1:]...)
	argv = append(argv, "-t", "-q")
	r, err := n.Exec(ctx, argv...)
	if err != nil {
		return fmt.Errorf("nginx -t: %w", err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("nginx.conf rejected by %s: %s", binary, causeLine(r.Stderr+r.Stdout))
	}
	return nil
}

// Where the start command's output and exit status go in the container.
const (
	startLog    = "/tmp/nginx-upgrade-harness-start.log"
	startStatus = "/tmp/nginx-upgrade-harness-start.status"
)

// startScript runs the start command (its argv after the two paths, never
// spliced into the script) with its output in a file, then records its exit
// status: a daemonising nginx exits at once, one in the foreground (`daemon
// off;`) only when it stops.
const startScript = `log="$1"; st="$2"; shift 2; rm -f "$st"; "$@" >"$log" 2>&1 </dev/null; echo $? >"$st"`

// StartNginx starts nginx by the node's command line — daemonised or in the
// foreground, as the command has it — and waits until a master with workers
// serves on the published port. A command that exits with an error fails at
// once, with its cause.
func (n *Node) StartNginx(ctx context.Context) error {
	if n.systemd {
		return n.startUnit(ctx)
	}
	argv := append([]string{"sh", "-c", startScript, "sh", startLog, startStatus}, n.cmd...)
	if err := n.execDetached(ctx, argv...); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	const timeout = 15 * time.Second
	deadline := time.Now().Add(timeout)
	var upSince time.Time
	for {
		if r, err := n.Exec(ctx, "cat", startStatus); err == nil && r.Exit == 0 {
			if code := strings.TrimSpace(r.Stdout); code != "" && code != "0" {
				out, _ := n.ReadFile(ctx, startLog)
				return fmt.Errorf("start nginx (%s): exit %s: %s", strings.Join(n.cmd, " "), code, causeLine(string(out)))
			}
		}
		err := n.WaitServing(ctx, 500*time.Millisecond)
		if err == nil {
			return nil
		}
		// nginx binds every listener before it forks a worker: a master
		// with workers that the port has not answered for a while never
		// will (its configuration listens elsewhere). No use waiting out
		// the timeout.
		up := errors.Is(err, errUpNotAnswering)
		switch {
		case !up:
			upSince = time.Time{}
		case upSince.IsZero():
			upSince = time.Now()
		case time.Since(upSince) >= upNotAnsweringFor:
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := n.ReadFile(ctx, startLog)
			if l := strings.TrimSpace(string(out)); l != "" {
				return fmt.Errorf("%w; the start command said: %s", err, causeLine(l))
			}
			return err
		}
	}
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

// errUpNotAnswering is WaitServing's error when the master and its workers
// were up at the last look and the port refused or closed the probe.
var errUpNotAnswering = errors.New("its master and workers are up")

// upNotAnsweringFor is how long StartNginx lets a master with workers
// leave its port unanswered before it gives up.
const upNotAnsweringFor = 2 * time.Second

// WaitServing waits until nginx.pid names a live master with workers and
// the published port answers with a status below 500. A check under way at
// the deadline is let finish (each is bounded on its own: ProbeTimeout, the
// probe's 2 s): on a slow host — a VM under software emulation — one exec
// takes longer than a short window, and cutting it would never see nginx
// serve.
func (n *Node) WaitServing(ctx context.Context, timeout time.Duration) error {
	window, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var last string
		up := false
		s, err := n.Snapshot(ctx)
		if err == nil {
			if s.IsMaster(s.PidFile) && len(s.Workers(s.PidFile)) > 0 {
				if err := n.Probe(ctx); err == nil {
					return nil
				} else {
					// Refused or closed, not slow: a busy worker that has
					// not answered yet is no proof of a port nobody binds.
					var ne net.Error
					slow := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
					last, up = err.Error(), !slow
				}
			} else {
				last = s.String()
			}
		} else {
			last = err.Error()
		}
		select {
		case <-window.Done():
			if up {
				return fmt.Errorf("nginx not serving after %s: %w, but the port did not answer: %s", timeout, errUpNotAnswering, last)
			}
			return fmt.Errorf("nginx not serving after %s: %s", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Probe sends one GET / to the published port (127.0.0.1 only).
func (n *Node) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/", nil)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET / answered %s", resp.Status)
	}
	return nil
}

// URL is the base URL of nginx on the host's loopback.
func (n *Node) URL() string { return n.url }

// InnerURL is the base URL of nginx on the loopback of the container's own
// network namespace (see NetnsPath).
func (n *Node) InnerURL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.mainPort) }

// TLSURL is the base URL of the published TLSPort on the host's loopback
// ("" when Docker did not publish it).
func (n *Node) TLSURL() string { return n.tlsURL }

// InnerTLSURL is the base URL of TLSPort inside the container's network
// namespace.
func (n *Node) InnerTLSURL() string { return fmt.Sprintf("https://127.0.0.1:%d", n.tlsPort) }

// NetnsPath is the container's network namespace as the host sees it, for a
// load that connects from inside it (loadgen.InNetns).
func (n *Node) NetnsPath() string {
	return fmt.Sprintf("/proc/%d/ns/net", n.res.Container.State.Pid)
}

// ID is the node's label value (also used in leftovers sweeps).
func (n *Node) ID() string { return n.id }

// ContainerID is the Docker container id.
func (n *Node) ContainerID() string { return n.res.Container.ID }

// Builds tells which binary is which in this node's image.
func (n *Node) Builds() harness.BuildsInfo { return n.builds }

// PidFile and ErrorLog are the paths nginx uses in the container.
func (n *Node) PidFile() string  { return n.pidFile }
func (n *Node) ErrorLog() string { return n.errLog }

// Binary is the absolute path of the file nginx was started from (its
// argv[0], looked up in PATH when the command names it relatively).
func (n *Node) Binary() string { return n.binary }

// Command is the argv that starts nginx.
func (n *Node) Command() []string { return append([]string(nil), n.cmd...) }

// Close removes the container (force: never `docker stop`, whose SIGWINCH
// would make nginx stop its workers), thawing it first if it is paused or
// frozen, every call under a deadline. The error names a container that
// could not be removed (`nginx-upgrade-harness prune` removes it later).
func (n *Node) Close() error {
	if n == nil || n.res == nil {
		return nil
	}
	id := n.res.Container.ID
	n.res = nil
	ctx, cancel := context.WithTimeout(context.Background(), harness.CloseTimeout)
	defer cancel()
	return harness.RemoveContainer(ctx, n.pool, id)
}

// State names the container's state as Docker and the kernel report it
// (see harness.ContainerState); abnormal is false for a running, unfrozen
// container with no OOM kill.
func (n *Node) State(ctx context.Context) (state string, abnormal, ended bool) {
	if n.res == nil {
		return "removed", true, true
	}
	return harness.ContainerState(ctx, n.pool, n.res.Container.ID)
}

// WatchFrozen samples the kernel's freezer of the container every 100 ms
// (a file read on the host, no Docker call) until stop is called; stop
// returns for how long the container was seen frozen — paused from
// outside, or its freezer cgroup set by hand — and when first. A freeze
// stalls nginx and the harness's execs alike: a run that met one measured
// its environment, not nginx.
func (n *Node) WatchFrozen() (stop func() (frozen time.Duration, first time.Time)) {
	if n.res == nil {
		return func() (time.Duration, time.Time) { return 0, time.Time{} }
	}
	id := n.res.Container.ID
	const every = 100 * time.Millisecond
	quit, done := make(chan struct{}), make(chan struct{})
	var frozen time.Duration
	var first time.Time
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				if st := harness.FreezerState(id); (st == "FROZEN" || st == "FREEZING") && !n.selfFrozen.Load() {
					if first.IsZero() {
						first = now
					}
					frozen += every
				}
			}
		}
	}()
	var once sync.Once
	return func() (time.Duration, time.Time) {
		once.Do(func() { close(quit); <-done })
		return frozen, first
	}
}

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
	exit, err := harness.ExecIn(cctx, n.pool.Client, id, env, in, &out, &errb, argv...)
	cancel()
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

// Snapshot reads the process table, the pid files and the error log size.
func (n *Node) Snapshot(ctx context.Context) (proc.Snapshot, error) {
	r, err := n.execWithin(ctx, harness.ProbeTimeout, nil, nil, "sh", "-c", proc.Script, "sh", n.pidFile, n.errLog)
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
	r, err := n.execWithin(ctx, harness.ProbeTimeout, nil, nil, argv...)
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
	r, err := n.execWithin(ctx, harness.ProbeTimeout, nil, nil, "tail", "-c", "+"+strconv.FormatInt(offset+1, 10), n.errLog)
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

// directive finds a main-context directive's first argument in nginx.conf
// text (pid, error_log), or returns def.
func directive(conf []byte, name, def string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+([^\s;]+)[^;]*;`)
	m := re.FindSubmatch(conf)
	if m == nil {
		return def
	}
	v := string(m[1])
	if name == "error_log" && (v == "stderr" || strings.HasPrefix(v, "syslog:")) {
		return def
	}
	return v
}

// exposedSet is the ports a container exposes, as the engine's create takes them.
func exposedSet(ports []string) map[dc.Port]struct{} {
	m := map[dc.Port]struct{}{}
	for _, p := range ports {
		m[dc.Port(p)] = struct{}{}
	}
	return m
}

func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// causeLine is nginx's [emerg] line when there is one (nginx -t ends with
// "test failed", which names no cause), else the last line.
func causeLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[emerg]") {
			return strings.TrimSpace(l)
		}
	}
	return harness.LastLine(out)
}

// removeByLabel force-removes the containers carrying label k=v.
func removeByLabel(pool *dockertest.Pool, k, v string) {
	harness.PruneWhere(context.Background(), pool, func(_ string, l map[string]string) bool { return l[k] == v })
}
