package loadgen

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// decodeResults reads every complete result in results.gob.
func decodeResults(t *testing.T, dir string) []vegeta.Result {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.DecoderFor(f)
	if dec == nil {
		t.Fatal("vegeta.DecoderFor: format not recognised")
	}
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode result %d: %v", len(out), err)
		}
		out = append(out, r)
	}
}

func TestRunResultsReadableLiveAndAfterClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	dir := t.TempDir()
	clock := NewClock()
	l, err := Run(context.Background(), srv.URL, clock, dir, []Profile{
		{Name: "get", Rate: 100, KeepAlive: true},
		{Name: "post", Rate: 50, Method: "POST", Body: []byte("x=1"), KeepAlive: false},
	}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // a few flushes
	live := decodeResults(t, dir)
	if len(live) == 0 {
		t.Fatal("no result readable while the run goes on")
	}
	if snap := l.Snapshot(); snap.Profiles[0].Requests == 0 {
		t.Errorf("snapshot shows no request: %+v", snap)
	}
	time.Sleep(300 * time.Millisecond)
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	all := decodeResults(t, dir)
	var total int64
	for _, p := range sum.Profiles {
		total += p.Requests
		if p.Failed != 0 || p.OK != p.Requests || p.Requests < 20 {
			t.Errorf("profile %+v: want >= 20 requests, all ok", p)
		}
	}
	if int64(len(all)) != total || len(all) < len(live) {
		t.Errorf("results on disk = %d (live %d), summary total = %d", len(all), len(live), total)
	}
	perAttack := map[string]int{}
	for _, r := range all {
		perAttack[r.Attack]++
		if off := r.Timestamp.Sub(clock.Start()); off < 0 || off > 10*time.Second {
			t.Errorf("result timestamp %v is %v from the clock's start", r.Timestamp, off)
		}
		if len(r.Body) != 0 || r.Headers != nil {
			t.Errorf("result keeps a body or headers: %+v", r)
		}
	}
	if perAttack["get"] == 0 || perAttack["post"] == 0 {
		t.Errorf("results per attack = %v", perAttack)
	}
	conns := readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
	got := countOutcomes(conns)
	if int64(len(conns)) != sum.Opened || got[ConnClosedUnderRequest]+got[ConnResetUnderRequest]+got[ConnRefused]+got[ConnDialError] != 0 {
		t.Errorf("connections = %v over %d records, opened %d: want no drop and one record per connection", got, len(conns), sum.Opened)
	}
	if got[ConnOpenAtEnd] == 0 {
		t.Errorf("connections = %v: want the keep-alive connections open at the end", got)
	}
	var posts, postReqs, gets, getReqs int
	for _, c := range conns {
		switch c.Profile {
		case "post":
			posts++
			postReqs += c.Requests
		case "get":
			gets++
			getReqs += c.Requests
		}
	}
	if int64(getReqs) != sum.Profiles[0].Requests || gets*4 > getReqs {
		t.Errorf("get profile: %d connections carried %d requests of %d: keep-alive should reuse connections",
			gets, getReqs, sum.Profiles[0].Requests)
	}
	if int64(postReqs) != sum.Profiles[1].Requests || posts != postReqs {
		t.Errorf("post profile: %d connections carried %d requests, want one connection per request (%d)", posts, postReqs, sum.Profiles[1].Requests)
	}
	if sum.Drops() != 0 || sum.Retried != 0 || sum.Untracked != 0 {
		t.Errorf("summary = %+v: want no drop, no retry, no untracked connection", sum)
	}
	for _, name := range []string{DownloadsFile, RetriesFile} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || len(b) != 0 {
			t.Errorf("%s = %q, %v: want an empty file", name, b, err)
		}
	}
}

func TestRunRefusesNonLoopbackTarget(t *testing.T) {
	for _, target := range []string{
		"http://10.1.2.3:80", "http://example.com/", "http://127.0.0.2:8080", "https://127.0.0.1:8443",
		"http://[2001:db8::1]:80", "http://user@127.0.0.1:80", "127.0.0.1:80",
	} {
		dir := t.TempDir()
		l, err := Run(context.Background(), target, NewClock(), dir, []Profile{{Rate: 1}}, Slow{})
		if err == nil {
			l.Close()
			t.Errorf("Run(%q) accepted a non-loopback target", target)
		}
	}
	for _, target := range []string{"http://127.0.0.1:80", "http://localhost:8080/", "http://[::1]:80"} {
		if _, err := CheckTarget(target); err != nil {
			t.Errorf("CheckTarget(%q) = %v, want nil", target, err)
		}
	}
}

func TestDownloadsCompleteAndCut(t *testing.T) {
	const size = 256 << 10
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow/big.bin" || r.URL.Query().Get("rate") != "65536" {
			http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := []byte(strings.Repeat("x", 16<<10))
		cut := n.Add(1)%2 == 0
		for sent := 0; sent < size; sent += len(chunk) {
			if cut && sent >= size/2 {
				// A worker killed mid-download: the connection ends short.
				w.(http.Flusher).Flush()
				c, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					c.Close()
				}
				return
			}
			w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, nil,
		Slow{Count: 2, ExpectedBytes: size, BytesPerSec: 65536})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitDownloads(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Downloads != (DownloadSummary{Started: 2, Completed: 1, Cut: 1}) {
		t.Errorf("downloads = %+v, want 2 started, 1 completed, 1 cut", sum.Downloads)
	}
	dls := readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile))
	if len(dls) != 2 {
		t.Fatalf("download records = %+v", dls)
	}
	for _, d := range dls {
		switch {
		case d.Completed:
			if d.Received != size || d.Status != 200 || d.Error != "" {
				t.Errorf("completed download %+v", d)
			}
		default:
			if d.Received != size/2 || d.Error == "" || d.Error == "cancelled" {
				t.Errorf("cut download %+v: want %d bytes and the read error", d, size/2)
			}
		}
		if !strings.HasSuffix(d.URL, "/slow/big.bin?rate=65536") || d.EndMs <= d.StartMs {
			t.Errorf("download %+v", d)
		}
	}
	conns := readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
	got := countOutcomes(conns)
	if len(conns) != 2 || got[ConnClosedUnderRequest] != 1 || conns[0].Profile != SlowProfile {
		t.Errorf("connections = %+v: want 2 slow connections, one closed under its request", conns)
	}
}

func TestWaitDownloadsCancels(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, nil, Slow{Count: 1, ExpectedBytes: 1000000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := l.WaitDownloads(ctx); err == nil {
		t.Error("WaitDownloads returned nil with a download still running")
	}
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	dls := readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile))
	if len(dls) != 1 || dls[0].Completed || dls[0].Error != "cancelled" || dls[0].Received != 1 {
		t.Errorf("downloads = %+v, want one cancelled after 1 byte", dls)
	}
	if sum.Downloads.Cancelled != 1 || sum.Downloads.Cut != 0 {
		t.Errorf("summary downloads = %+v, want 1 cancelled by the client, none cut", sum.Downloads)
	}
}

// TestCancelStopsPromptly is the Ctrl-C path: the server never answers, the
// context ends, and Close must return at once with readable files.
func TestCancelStopsPromptly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			return
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Run(ctx, srv.URL, NewClock(), dir, []Profile{
		{Name: "stall", Rate: 50, KeepAlive: true, Timeout: 30 * time.Second},
		{Name: "fast", Rate: 50, Path: "/fast", KeepAlive: true},
	}, Slow{Count: 2, Path: "/stall", ExpectedBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	cancel()
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v after cancel", d)
	}
	results := decodeResults(t, dir)
	var total int64
	for _, p := range sum.Profiles {
		total += p.Requests
	}
	if int64(len(results)) != total || sum.Profiles[1].OK == 0 {
		t.Errorf("results on disk = %d, summary %+v", len(results), sum)
	}
	if sum.Downloads.Cancelled != 2 || sum.Downloads.Cut != 0 {
		t.Errorf("downloads = %+v, want 2 cancelled by the client", sum.Downloads)
	}
	conns := readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
	if int64(len(conns)) != sum.Opened {
		t.Errorf("%d connection records for %d connections", len(conns), sum.Opened)
	}
	readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile))
}

func TestRunRejectsBadProfiles(t *testing.T) {
	for _, ps := range [][]Profile{
		{{Rate: 0}},
		{{Rate: MaxRate + 1}},
		{{Rate: 1, Method: "DELETE"}},
		{{Rate: 1, Path: "nope"}},
		{{Name: "a", Rate: 1}, {Name: "a", Rate: 1}},
		{{Name: SlowProfile, Rate: 1}},
	} {
		if l, err := Run(context.Background(), "http://127.0.0.1:1", NewClock(), t.TempDir(), ps, Slow{}); err == nil {
			l.Close()
			t.Errorf("Run(%+v) accepted", ps)
		}
	}
}

// TestRunCountsRetriesUnderVegeta drives the close-under-the-second-request
// server through vegeta: GET replays hide the close from the results, so the
// retries must show in the summary and in retries.jsonl; POST fails instead.
func TestRunCountsRetriesUnderVegeta(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			addr := rawServer(t, closeSecondRequest)
			dir := t.TempDir()
			l, err := Run(context.Background(), "http://"+addr, NewClock(), dir,
				[]Profile{{Name: "p", Rate: 40, Method: method, Body: []byte("x"), KeepAlive: true}}, Slow{})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(600 * time.Millisecond)
			sum, err := l.Close()
			if err != nil {
				t.Fatal(err)
			}
			p := sum.Profiles[0]
			under := sum.Connections[ConnClosedUnderRequest]
			retries := readJSONL[RetryRecord](t, filepath.Join(dir, RetriesFile))
			t.Logf("summary %+v", sum)
			switch method {
			case "GET":
				if p.Failed != 0 || sum.Retried == 0 || under < sum.Retried ||
					int64(len(retries)) != sum.Retried+sum.RetriedUnwritten {
					t.Errorf("GET: profile %+v, retried %d, closed under request %d, %d retry lines",
						p, sum.Retried, under, len(retries))
				}
				for _, r := range retries {
					if r.Attempts < 2 || len(r.Conns) != r.Attempts || !r.OK || r.Method != "GET" {
						t.Errorf("retry line %+v", r)
					}
				}
			case "POST":
				if p.Failed == 0 || sum.Retried != 0 || len(retries) != 0 || under != p.Failed {
					t.Errorf("POST: profile %+v, retried %d, closed under request %d, %d retry lines: want every close a failed request",
						p, sum.Retried, under, len(retries))
				}
			}
			if got := int64(len(decodeResults(t, dir))); got != p.Requests {
				t.Errorf("%d results on disk, %d in the summary", got, p.Requests)
			}
		})
	}
}

// TestHeldDownloadsWaitForRelease: a download with a hold tail reads up to
// it, then reads nothing until ReleaseDownloads, and the server cannot
// finish meanwhile: the tail is larger than what the sockets' buffers take
// on loopback (the server's send buffer, the client's fixed receive
// buffer). After the release it completes, to the byte, and says how long
// it was held.
func TestHeldDownloadsWaitForRelease(t *testing.T) {
	const size, tail = 16 << 20, 12 << 20
	var served atomic.Int64 // bytes the handler got written
	finished := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			served.Add(int64(len(chunk)))
		}
		finished <- time.Now()
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, nil,
		Slow{Count: 1, ExpectedBytes: size, BytesPerSec: 1 << 30, HoldTail: tail})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	select {
	case <-finished:
		t.Fatalf("the server finished writing %d bytes while the client held its last %d: the tail is not in the server's hands", size, tail)
	default:
	}
	if got := served.Load(); got <= size-tail || got >= size {
		t.Errorf("served %d bytes during the hold: want more than the %d read before it, less than all", got, size-tail)
	}
	released := time.Now()
	l.ReleaseDownloads()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitDownloads(ctx); err != nil {
		t.Fatal(err)
	}
	if end := <-finished; end.Before(released) {
		t.Errorf("the server finished at %s, before the release at %s", end, released)
	}
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	dls := readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile))
	if len(dls) != 1 || !dls[0].Completed || dls[0].Received != size || dls[0].HeldMs < 900 {
		t.Errorf("downloads = %+v: want one completed to the byte after a hold of about 1 s", dls)
	}
}

// TestReleasedDownloadsDoNotHold: released before they reach their tail
// (the step was sent in time), downloads read straight through.
func TestReleasedDownloadsDoNotHold(t *testing.T) {
	const size = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // the release comes first
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(make([]byte, size))
	}))
	defer srv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, nil, Slow{Count: 2, ExpectedBytes: size, HoldTail: size / 2})
	if err != nil {
		t.Fatal(err)
	}
	l.ReleaseDownloads()
	l.ReleaseDownloads() // twice is harmless
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitDownloads(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range readJSONL[DownloadRecord](t, filepath.Join(dir, DownloadsFile)) {
		if !d.Completed || d.HeldMs != 0 {
			t.Errorf("download %+v: want completed, never held", d)
		}
	}
}
