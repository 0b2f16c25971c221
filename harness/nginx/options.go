package nginx

// nodeConfig is what a node's options ask of StartNode.
type nodeConfig struct {
	image       string
	config      []byte
	cmd         []string
	labels      map[string]string
	sysctls     map[string]string
	caps        []string
	tmpfs       map[string]string
	memory      int64
	start       bool
	systemd     bool
	unit        []byte // the user's nginx.service (WithUnit); nil: the package's
	tree        *Tree
	site        *Site
	mounts      []Mount
	hosts       []string
	agent       string // the static binary of a load agent (WithAgent)
	agentAlways bool
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
