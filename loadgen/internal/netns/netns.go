// Package netns creates sockets inside another network namespace (a
// container's) from this process: a thread enters the namespace only for the
// time it takes to create the socket, which then stays in that namespace for
// its whole life, whichever thread uses it.
package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a thread moved into the network namespace at path, and
// moves the thread back.
func Do(path string, fn func() error) error {
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

// Check tells whether this process can enter the namespace at path.
func Check(path string) error { return Do(path, func() error { return nil }) }

// Dial dials addr from inside the namespace at path (IP literals only: a
// name would make the dialer spread over goroutines and threads).
func Dial(ctx context.Context, d *net.Dialer, path, network, addr string) (net.Conn, error) {
	var nc net.Conn
	var derr error
	if err := Do(path, func() error {
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

// Listen creates a listening socket on addr inside the namespace at path
// (an IP literal and a port). Connections it accepts belong to that
// namespace; they are served from this process.
func Listen(path, network, addr string) (net.Listener, error) {
	var ln net.Listener
	var lerr error
	if err := Do(path, func() error {
		ln, lerr = net.Listen(network, addr)
		return nil
	}); err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	return ln, lerr
}
