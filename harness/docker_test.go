package harness

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Docker unreachable is one line naming the endpoint, where it came from
// and the dial's cause, never the client's own URL (http://unix.sock/_ping
// for every unix socket).
func TestConnectNamesTheEndpointNotTheClientURL(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")
	t.Setenv("DOCKER_HOST", sock)
	_, err := Connect()
	want := "docker unreachable at " + sock + " (set by DOCKER_HOST): connect: no such file or directory (is the Docker engine running?)"
	if err == nil || err.Error() != want {
		t.Fatalf("Connect: %v\nwant %s", err, want)
	}

	// The default socket, as the client reports it when nothing listens there.
	dial := &url.Error{Op: "Get", URL: "http://unix.sock/_ping",
		Err: &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/var/run/docker.sock", Net: "unix"},
			Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	msg := unreachable("unix:///var/run/docker.sock", "the default socket; DOCKER_HOST is not set", dial).Error()
	if msg != "docker unreachable at unix:///var/run/docker.sock (the default socket; DOCKER_HOST is not set): connect: connection refused (is the Docker engine running?)" ||
		strings.Contains(msg, "unix.sock/") {
		t.Fatalf("got %q", msg)
	}
}
