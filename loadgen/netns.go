package loadgen

import (
	"context"
	"net"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen/internal/netns"
)

// Option adjusts a load started by RunWithOptions.
type Option func(*options)

type options struct {
	netns       string
	probeSocket string
	ws          WebSockets
	up          Uploads
}

// InNetns makes every connection of the load in the network namespace at
// path (e.g. /proc/PID/ns/net of a container's process), so that the load
// reaches 127.0.0.1 inside it directly, with no port proxy between the client
// and the server. It needs the right to enter that namespace (root).
func InNetns(path string) Option { return func(o *options) { o.netns = path } }

// ProbeOnSocket puts the observer's control probe and its responder on
// the unix socket at path instead of this process's 127.0.0.1: for a load
// that runs inside nginx's network namespace (a load agent), whose
// loopback a fault may delay (netem) — the probe must go through nothing
// a fault touches.
func ProbeOnSocket(path string) Option { return func(o *options) { o.probeSocket = path } }

// CheckNetns tells whether this process can enter the namespace at path.
func CheckNetns(path string) error { return netns.Check(path) }

// dialIn dials addr from inside the namespace at path.
func dialIn(ctx context.Context, d *net.Dialer, path, network, addr string) (net.Conn, error) {
	return netns.Dial(ctx, d, path, network, addr)
}
