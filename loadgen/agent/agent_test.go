package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

// pipeAgent serves an agent over pipes, as the container's attached stdio
// would carry it, and returns the driver's client.
func pipeAgent(t *testing.T, runDir string) (*Client, chan error) {
	c, done, _ := pipeAgentIn(t, runDir)
	return c, done
}

// pipeAgentIn is pipeAgent with the agent's stdin, whose end ends it.
func pipeAgentIn(t *testing.T, runDir string) (*Client, chan error, io.Closer) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(context.Background(), inR, outW, t.TempDir())
		outW.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() { inW.Close() })
	return NewClient(inW, outR, runDir, 5*time.Second), done, inW
}

// The load runs in the agent, against a real server on a socket; the
// driver controls it and gets its record files back into its run
// directory, on its own clock.
func TestAgentRunsTheLoadAndSendsItsRecords(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	runDir := t.TempDir()
	c, done, stdin := pipeAgentIn(t, runDir)
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if c.Offset > c.RoundTrip || -c.Offset > c.RoundTrip {
		t.Errorf("offset %s on one host, beyond the round trip %s", c.Offset, c.RoundTrip)
	}
	clock := loadgen.NewClock()
	err := c.Start(Start{Target: srv.URL, Profiles: WireProfiles([]loadgen.Profile{{Name: "get", Rate: 100, KeepAlive: true}}),
		HardStopMs: 30000}, clock)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if s := c.Snapshot(); len(s.Profiles) != 1 || s.Profiles[0].Requests == 0 {
		t.Fatalf("snapshot through the agent: %+v", s)
	}
	c.StopAttack()
	sum, err := c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Profiles[0].OK == 0 || sum.Profiles[0].Failed != 0 {
		t.Fatalf("summary: %+v", sum.Profiles[0])
	}
	for _, f := range []string{loadgen.ResultsFile, loadgen.ConnectionsFile, loadgen.ObserverFile} {
		if fi, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Errorf("record file %s: %v", f, err)
		} else if f != loadgen.ConnectionsFile && fi.Size() == 0 {
			t.Errorf("record file %s is empty", f)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, "control-probe.sock")); err == nil {
		t.Error("the probe's socket came back as a record file")
	}
	// The observer's windows are on the driver's clock: the first starts at 0.
	b, _ := os.ReadFile(filepath.Join(runDir, loadgen.ObserverFile))
	if !strings.HasPrefix(string(b), `{"start_ms":0,`) {
		t.Errorf("observer's first window: %.80s", b)
	}
	if _, err := c.Close(); err != nil {
		t.Errorf("a second close: %v", err)
	}
	if err := c.StartDownloads(1, 1000); err != ErrClosed {
		t.Errorf("downloads after close: %v, want ErrClosed", err)
	}
	// The agent outlives its load (the node still asks nginx through it)
	// and ends with its stdin.
	if a, err := c.Get(Get{Method: "GET", URL: srv.URL}); err != nil || a.Status != 200 {
		t.Fatalf("a get after the load closed: %+v %v", a, err)
	}
	stdin.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not end with its stdin")
	}
}

// The stand-in backends run in the agent, and a Get reaches only 127.0.0.1.
func TestAgentServesBackendsAndGetsOnlyLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	c, _ := pipeAgent(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := c.StartBackends([]backend.Config{{Addr: addr, Name: "stand-in"}}, 0); err == nil {
		t.Fatal("unbounded stand-ins were accepted")
	}
	if err := c.StartBackends([]backend.Config{{Addr: addr, Name: "stand-in"}}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if a, err := c.Get(Get{Method: "GET", URL: "http://" + addr + "/"}); err != nil || a.Header.Get(backend.HeaderBackend) != "stand-in" {
		t.Fatalf("the stand-in through the agent: %+v %v", a, err)
	}
	err = c.Start(Start{Target: srv.URL, Profiles: WireProfiles([]loadgen.Profile{{Name: "get", Rate: 10}}), HardStopMs: 30000}, loadgen.NewClock())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.Get(Get{Method: "GET", URL: srv.URL + "/x"})
	if err != nil || a.Status != 200 || string(a.Body) != "hello" {
		t.Fatalf("get: %+v %v", a, err)
	}
	if _, err := c.Get(Get{Method: "GET", URL: "http://10.0.0.1/"}); err == nil || !strings.Contains(err.Error(), "only http(s)://127.0.0.1") {
		t.Fatalf("get to another address: %v", err)
	}
	if err := c.Start(Start{Target: srv.URL, HardStopMs: 1}, loadgen.NewClock()); err == nil {
		t.Fatal("a second start was accepted")
	}
}

// A load without a hard stop is refused: every load is bounded in time.
func TestAgentRefusesAnUnboundedLoad(t *testing.T) {
	c, _ := pipeAgent(t, t.TempDir())
	err := c.Start(Start{Target: "http://127.0.0.1:1", Profiles: WireProfiles([]loadgen.Profile{{Rate: 1}})}, loadgen.NewClock())
	if err == nil || !strings.Contains(err.Error(), "bounded") {
		t.Fatalf("unbounded load: %v", err)
	}
}
