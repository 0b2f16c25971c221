package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// writeContext writes a Docker CLI context store entry for name in dir.
func writeContext(t *testing.T, dir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	meta := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	b := fmt.Sprintf(`{"Name":%q,"Metadata":{},"Endpoints":{"docker":{"Host":%q,"SkipTLSVerify":false}}}`, name, host)
	if err := os.WriteFile(filepath.Join(meta, "meta.json"), []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The engine comes from DOCKER_HOST, else a Docker context (DOCKER_CONTEXT,
// else config.json's currentContext), else the default socket; a context
// not in the store or reached over ssh is one line naming it.
func TestEngineFromDockerContext(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	if ep, _, err := Engine(); err != nil || ep != "unix:///var/run/docker.sock" {
		t.Fatalf("no context: %q %v", ep, err)
	}
	writeContext(t, dir, "ci-engine", "unix:///var/run/docker.sock")
	writeContext(t, dir, "far", "ssh://builder@10.0.0.7")
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"ci-engine"}`), 0o644)
	ep, origin, err := Engine()
	if err != nil || ep != "unix:///var/run/docker.sock" || !strings.Contains(origin, `"ci-engine"`) || !strings.Contains(origin, "currentContext") {
		t.Fatalf("current context: %q %q %v", ep, origin, err)
	}
	t.Setenv("DOCKER_CONTEXT", "far")
	if _, _, err := Engine(); err == nil || !strings.Contains(err.Error(), "ssh") || !strings.Contains(err.Error(), "DOCKER_HOST=unix://") {
		t.Fatalf("ssh context: %v", err)
	}
	t.Setenv("DOCKER_CONTEXT", "nope")
	if _, _, err := Engine(); err == nil || !strings.Contains(err.Error(), `docker context "nope" (from DOCKER_CONTEXT): not in the context store`) {
		t.Fatalf("unknown context: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix:///elsewhere.sock")
	if ep, _, err := Engine(); err != nil || ep != "unix:///elsewhere.sock" {
		t.Fatalf("DOCKER_HOST first: %q %v", ep, err)
	}
	// Live: the context's engine is the one Connect reaches.
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "ci-engine")
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Fatalf("the engine's socket: %v (container tests never skip)", err)
	}
	pool, err := Connect()
	if err != nil {
		t.Fatal(err)
	}
	if got := EndpointOf(pool); got != "unix:///var/run/docker.sock" {
		t.Fatalf("Connect through the context reached %q", got)
	}
}
