package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen/internal/netns"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestBodyHeaderAndDelay(t *testing.T) {
	s := start(t, Config{Name: "b1"})
	for _, path := range []string{"/", "/backend/x", "/backend/x?delay=200ms", "/backend?delay=200"} {
		t0 := time.Now()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, Body("b1")) || resp.Header.Get(HeaderBackend) != "b1" {
			t.Errorf("%s: %d %q %v", path, resp.StatusCode, b, resp.Header)
		}
		if strings.Contains(path, "delay") && time.Since(t0) < 190*time.Millisecond {
			t.Errorf("%s answered in %v, before its delay", path, time.Since(t0))
		}
	}
	for _, path := range []string{"/other", "/backend/x?delay=forever"} {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s: status %d, want an error", path, resp.StatusCode)
		}
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "localhost:0", "10.0.0.1:0"} {
		if s, err := Start(context.Background(), Config{Addr: addr}); err == nil {
			s.Close()
			t.Errorf("Start(%s) succeeded", addr)
		}
	}
}

func TestUploadCountsAndHashes(t *testing.T) {
	s := start(t, Config{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	sum := sha256.Sum256(body)
	t0 := time.Now()
	resp, err := http.Post(s.URL()+"/upload?read_rate=131072", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans UploadAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	if ans.Bytes != int64(len(body)) || ans.Sha256 != hex.EncodeToString(sum[:]) ||
		resp.Header.Get(HeaderUploadBytes) != fmt.Sprint(len(body)) || resp.Header.Get(HeaderUploadSha256) != ans.Sha256 {
		t.Errorf("answer %+v, headers %v", ans, resp.Header)
	}
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("64 KiB read at 128 KiB/s in %v: the read rate is not applied", d)
	}
}

func TestWebSocketEchoAndGoingAwayOnClose(t *testing.T) {
	s := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		msg := fmt.Sprintf("m%d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("read after Close: %v (status %d), want 1001", err, got)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
}

// A listener created in another network namespace is reachable there only.
// With iproute2 and root, a namespace of its own is created (and removed);
// else the test runs in this process's namespace (/proc/self/ns/net), which
// still goes through the setns path.
func TestListensInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs root (CI runs as root)")
	}
	path, own := "/proc/self/ns/net", false
	name := fmt.Sprintf("nuh-backend-test-%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", name).Run(); err == nil {
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
		if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("lo up: %v: %s", err, out)
		}
		path, own = "/var/run/netns/"+name, true
	} else {
		t.Logf("ip netns add: %v; testing in this process's own namespace", err)
	}
	s := start(t, Config{Netns: path, Addr: "127.0.0.1:0", Name: "ns"})
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return netns.Dial(ctx, &net.Dialer{}, path, network, addr)
		}}}
	resp, err := client.Get(s.URL() + "/backend/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, Body("ns")) {
		t.Errorf("body %q", b)
	}
	if own {
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			c.Close()
			t.Errorf("%s reached from the host's namespace: the backend does not listen in %s", s.Addr(), path)
		}
	}
}
