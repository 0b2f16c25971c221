package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A load that enters a network namespace makes its connections there: here
// the namespace is this process's own (entering it takes the same right as
// entering a container's), so the local server must see every request.
func TestRunInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("entering a network namespace needs root (CI runs as root)")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	dir := t.TempDir()
	l, err := RunWithOptions(context.Background(), srv.URL, NewClock(), dir,
		[]Profile{{Rate: 200, KeepAlive: false}}, Slow{}, InNetns("/proc/self/ns/net"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Profiles[0]; p.Requests < 50 || p.Failed != 0 || s.Opened < 50 || s.Untracked != 0 {
		t.Fatalf("summary: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, ConnectionsFile)); err != nil {
		t.Fatal(err)
	}
}

func TestNetnsThatCannotBeEnteredIsAnError(t *testing.T) {
	_, err := RunWithOptions(context.Background(), "http://127.0.0.1:1", NewClock(), t.TempDir(),
		[]Profile{{Rate: 1}}, Slow{}, InNetns("/nonexistent/ns/net"))
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ns/net") {
		t.Fatalf("err = %v", err)
	}
}
