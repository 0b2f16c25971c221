package loadgen

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// acct is a tracker writing to a temporary directory, for tests that drive
// clients by hand (one request at a time, so counts are exact).
type acct struct {
	t     testing.TB
	dir   string
	tr    *tracker
	files []*msgFile
}

func newAcct(t testing.TB) *acct {
	t.Helper()
	dir := t.TempDir()
	cf, err := createMsgFile(dir, ConnectionsFile)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := createMsgFile(dir, RetriesFile)
	if err != nil {
		t.Fatal(err)
	}
	return &acct{t: t, dir: dir, tr: newTracker(NewClock(), newJSONL(cf), newJSONL(rf)), files: []*msgFile{cf, rf}}
}

func (a *acct) client(keepAlive bool) (*http.Client, *http.Transport) {
	c, tr := a.tr.newClient(clientConfig{profile: "test", keepAlive: keepAlive})
	c.Timeout = 5 * time.Second
	a.t.Cleanup(tr.CloseIdleConnections)
	return c, tr
}

// end records what is still open and returns the records on disk.
func (a *acct) end() ([]ConnRecord, []RetryRecord) {
	a.t.Helper()
	a.tr.finish()
	for _, f := range a.files {
		if err := f.Close(); err != nil {
			a.t.Fatal(err)
		}
	}
	if n := a.tr.untracked.Load(); n != 0 {
		a.t.Errorf("GotConn saw %d connections the dialer did not wrap", n)
	}
	return readJSONL[ConnRecord](a.t, filepath.Join(a.dir, ConnectionsFile)),
		readJSONL[RetryRecord](a.t, filepath.Join(a.dir, RetriesFile))
}

// waitRecords waits until n connection records have been written (a
// connection is recorded when it is closed, which net/http does in its own
// goroutine).
func (a *acct) waitRecords(n int64) {
	a.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var got int64
		for i := range a.tr.outcomes {
			got += a.tr.outcomes[i].Load()
		}
		if got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.t.Fatalf("timed out waiting for %d connection records", n)
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	dec := json.NewDecoder(f)
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
}

func countOutcomes(recs []ConnRecord) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.Outcome]++
	}
	return m
}

func wantOutcomes(t *testing.T, recs []ConnRecord, want map[string]int) {
	t.Helper()
	got := countOutcomes(recs)
	if len(got) != len(want) {
		t.Errorf("outcomes = %v, want %v (records %+v)", got, want, recs)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("outcomes = %v, want %v (records %+v)", got, want, recs)
			return
		}
	}
}

// rawServer serves each accepted connection with handle, on 127.0.0.1.
func rawServer(t *testing.T, handle func(c *net.TCPConn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c.(*net.TCPConn), bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRequest reads one whole request (headers and body) from br.
func readRequest(br *bufio.Reader) (*http.Request, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return req, err
}

func getBody(c *http.Client, method, url string) (string, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func gotConnInfo(c net.Conn) httptrace.GotConnInfo {
	return httptrace.GotConnInfo{Conn: c, Reused: true}
}
