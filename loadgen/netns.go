package loadgen

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Option adjusts a load started by RunWithOptions.
type Option func(*options)

type options struct {
	netns string
}

// InNetns makes every connection of the load in the network namespace at
// path (e.g. /proc/PID/ns/net of a container's process), so that the load
// reaches 127.0.0.1 inside it directly, with no port proxy between the client
// and the server. It needs the right to enter that namespace (root).
func InNetns(path string) Option { return func(o *options) { o.netns = path } }

// CheckNetns tells whether this process can enter the namespace at path.
func CheckNetns(path string) error {
	return withNetns(path, func() error { return nil })
}

// withNetns runs fn on a thread moved into the network namespace at path,
// and moves the thread back. A socket created there stays in that namespace
// for its whole life, whichever thread uses it afterwards.
func withNetns(path string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the other namespace: leave it locked, so
		// that it ends with this goroutine and nothing else runs on it.
		return fmt.Errorf("leave network namespace %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// dialIn dials addr from inside the namespace at path (IP literals only:
// a name would make the dialer spread over goroutines and threads).
func dialIn(ctx context.Context, d *net.Dialer, path, network, addr string) (net.Conn, error) {
	var nc net.Conn
	var derr error
	if err := withNetns(path, func() error {
		nc, derr = d.DialContext(ctx, network, addr)
		return nil
	}); err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	return nc, derr
}
