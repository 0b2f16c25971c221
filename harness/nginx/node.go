package nginx

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
)

// ListenPort is the port the nginx.conf under test listens on inside the
// container; the node publishes it on 127.0.0.1 only.
const ListenPort = 8080

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
	execCost   execCalibration // the first execs' durations (ExecCost)
	config     []byte          // nginx.conf on disk
	binary     string          // the absolute path nginx runs from (cmd[0], looked up in PATH when relative)
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
	netnsOnce         sync.Once // NetnsReachable's answer, looked at once
	netnsErr          error
	agentBox          *harness.Agent // the load agent's container (WithAgent)
	agent             *agent.Client
	mainPort, tlsPort int
}

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
	if c.agent != "" && (c.agentAlways || n.NetnsReachable() != nil) {
		if err := n.startAgent(ctx, c.agent); err != nil {
			n.Close()
			return nil, fmt.Errorf("start node: %w", err)
		}
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

// NetnsReachable tells whether this process may enter the container's
// network namespace at NetnsPath, and that the pid there is the
// container's: the engine names the pid as its own host sees it, which is
// another process, or none, for a process in another pid namespace (a CLI
// in a container of its own) or on another host (a remote engine). The
// container's /etc/hostname, read through that pid's root, must be the
// container's hostname.
// It is looked at once per node: the answer does not change while the
// container runs.
func (n *Node) NetnsReachable() error {
	n.netnsOnce.Do(func() { n.netnsErr = n.netnsReachable() })
	return n.netnsErr
}

func (n *Node) netnsReachable() error {
	pid := n.res.Container.State.Pid
	if err := loadgen.CheckNetns(n.NetnsPath()); err != nil {
		return err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/hostname", pid))
	if err != nil {
		return fmt.Errorf("pid %d, the container's on the engine's host, is not readable as the container here: %v", pid, err)
	}
	if got, want := strings.TrimSpace(string(b)), n.res.Container.Config.Hostname; got != want {
		return fmt.Errorf("pid %d here has hostname %q, not the container's %q: this process is in another pid namespace than the engine's", pid, got, want)
	}
	return nil
}

// Pool is the engine the node runs on.
func (n *Node) Pool() *dockertest.Pool { return n.pool }

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
	var agentErr error
	if n.agentBox != nil {
		agentErr = n.agentBox.Close() // its stdin ends: the agent closes what it runs and exits
		n.agentBox = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), harness.CloseTimeout)
	defer cancel()
	return errors.Join(agentErr, harness.RemoveContainer(ctx, n.pool, id))
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

// removeByLabel force-removes the containers carrying label k=v.
func removeByLabel(pool *dockertest.Pool, k, v string) {
	harness.PruneWhere(context.Background(), pool, func(_ string, l map[string]string) bool { return l[k] == v })
}
