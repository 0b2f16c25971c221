package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

func startBackend(t *testing.T) *backend.Server {
	t.Helper()
	b, err := backend.Start(context.Background(), backend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// runWS runs WebSocket connections against path for d, then stops the load;
// during is called halfway.
func runWS(t *testing.T, b *backend.Server, path string, n int, d time.Duration, during func()) (Summary, []WebSocketRecord, []ConnRecord) {
	t.Helper()
	dir := t.TempDir()
	l, err := RunWithOptions(context.Background(), b.URL(), NewClock(), dir, nil, Slow{},
		WithWebSockets(WebSockets{Count: n, Path: path, Interval: 20 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d / 2)
	if during != nil {
		during()
	}
	time.Sleep(d / 2)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return s, readJSONL[WebSocketRecord](t, filepath.Join(dir, WebSocketsFile)), readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
}

func TestWebSocketEchoesAndClientStop(t *testing.T) {
	b := startBackend(t)
	s, recs, conns := runWS(t, b, "/ws", 3, 400*time.Millisecond, nil)
	if len(recs) != 3 {
		t.Fatalf("records %+v, want 3", recs)
	}
	for _, r := range recs {
		if r.Ended != WSEndedClient || r.Code != 1000 || r.Sent < 5 || r.Echoed != r.Sent || r.Lost != 0 || r.Mismatched != 0 || r.Drop || r.Conn == 0 {
			t.Errorf("record %+v, want every message echoed and the client's close", r)
		}
	}
	if s.Drops() != 0 || s.WebSockets.Connections != 3 || s.WebSockets.Ended[WSEndedClient] != 3 || s.Untracked != 0 {
		t.Errorf("summary %+v, drops %d", s.WebSockets, s.Drops())
	}
	wantOutcomes(t, conns, map[string]int{ConnClosedByClient: 3})
}

func TestWebSocketServerGoingAway(t *testing.T) {
	b := startBackend(t)
	s, recs, conns := runWS(t, b, "/ws", 2, 400*time.Millisecond, func() { b.Close() })
	for _, r := range recs {
		if r.Ended != WSEndedServer || r.Code != 1001 || r.Drop || r.Echoed == 0 {
			t.Errorf("record %+v, want an orderly 1001 from the server, not a drop", r)
		}
	}
	if s.WebSockets.Codes["1001"] != 2 || s.WebSockets.Dropped != 0 {
		t.Errorf("summary %+v", s.WebSockets)
	}
	for _, c := range conns {
		if c.Outcome == ConnClosedUnderRequest || c.Outcome == ConnResetUnderRequest {
			t.Errorf("connection %+v: an orderly close is not under a request", c)
		}
	}
}

func TestWebSocketAbruptEndsAreDrops(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		ended      string
		code       int
		conn       string
	}{
		{"reset", "/ws?abort_after=3", WSEndedAbnormal, 1006, ConnResetUnderRequest},
		{"internal-error", "/ws?close_after=3&code=1011", WSEndedServer, 1011, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBackend(t)
			s, recs, conns := runWS(t, b, tc.path, 1, 300*time.Millisecond, nil)
			if len(recs) != 1 {
				t.Fatalf("records %+v", recs)
			}
			r := recs[0]
			if r.Ended != tc.ended || r.Code != tc.code || !r.Drop || r.Echoed != 3 {
				t.Errorf("record %+v, want ended %s with %d, 3 echoes, a drop", r, tc.ended, tc.code)
			}
			if s.Drops() < 1 || s.WebSockets.Dropped != 1 || s.WebSockets.Lost != int64(r.Lost) {
				t.Errorf("summary %+v, drops %d", s.WebSockets, s.Drops())
			}
			if tc.conn != "" {
				wantOutcomes(t, conns, map[string]int{tc.conn: 1})
			}
		})
	}
}

func TestWebSocketRefusedIsADrop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	l, err := RunWithOptions(context.Background(), "http://"+addr, NewClock(), dir, nil, Slow{}, WithWebSockets(WebSockets{Count: 1}))
	if err != nil {
		t.Fatal(err)
	}
	l.StopAttack()
	s, _ := l.Close()
	if s.WebSockets.Ended[WSEndedDialFailed] != 1 || s.Drops() != 1 || s.Connections[ConnRefused] != 1 {
		t.Errorf("summary %+v / %v", s.WebSockets, s.Connections)
	}
}

func runUploads(t *testing.T, target string, u Uploads, d time.Duration) (Summary, []UploadRecord, []ConnRecord) {
	t.Helper()
	dir := t.TempDir()
	l, err := RunWithOptions(context.Background(), target, NewClock(), dir, nil, Slow{}, WithUploads(u))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return s, readJSONL[UploadRecord](t, filepath.Join(dir, UploadsFile)), readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
}

func TestUploadToASlowReader(t *testing.T) {
	b := startBackend(t)
	t0 := time.Now()
	s, recs, conns := runUploads(t, b.URL(), Uploads{Count: 1, Bytes: 256 << 10, BytesPerSec: 2 << 20, Path: "/upload?read_rate=524288"}, 100*time.Millisecond)
	if time.Since(t0) < 400*time.Millisecond {
		t.Errorf("256 KiB read at 512 KiB/s finished in %v", time.Since(t0))
	}
	if len(recs) != 1 {
		t.Fatalf("records %+v, want one upload (the one in flight when the load stopped)", recs)
	}
	if r := recs[0]; r.Outcome != UploadOK || !r.Verified || r.Sent != 256<<10 || r.Status != 200 {
		t.Errorf("record %+v, want ok, verified, every byte sent", r)
	}
	if s.Uploads.OK != 1 || s.Uploads.Failed != 0 || s.Drops() != 0 {
		t.Errorf("summary %+v", s.Uploads)
	}
	// net/http closes a connection without keep-alive in its own goroutine
	// once the answer is read: it may still be open when the load ends.
	if len(conns) != 1 || (conns[0].Outcome != ConnClosedByClient && conns[0].Outcome != ConnOpenAtEnd) || conns[0].Requests != 1 {
		t.Errorf("connections %+v, want one, closed by the client or open at the end", conns)
	}
}

func TestUploadCutMidBodyIsADrop(t *testing.T) {
	for _, reset := range []bool{false, true} {
		addr := rawServer(t, func(c *net.TCPConn, br *bufio.Reader) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.CopyN(io.Discard, req.Body, 64<<10)
			if reset {
				c.SetLinger(0)
			}
			c.Close() // mid-body, no answer
		})
		s, recs, conns := runUploads(t, "http://"+addr, Uploads{Count: 1, Bytes: 1 << 20, BytesPerSec: 4 << 20}, 50*time.Millisecond)
		if len(recs) != 1 {
			t.Fatalf("reset %v: records %+v, want 1 (an uploader pauses after a failure)", reset, recs)
		}
		r := recs[0]
		if r.Outcome != UploadFailed || r.Sent <= 0 || r.Sent >= 1<<20 || (r.Class != "reset" && r.Class != "closed") {
			t.Errorf("reset %v: record %+v, want failed mid-body, reset or closed", reset, r)
		}
		if s.Uploads.Failed != 1 || s.Drops() != 1 {
			t.Errorf("reset %v: summary %+v, drops %d", reset, s.Uploads, s.Drops())
		}
		if len(conns) != 1 || (conns[0].Outcome != ConnClosedUnderRequest && conns[0].Outcome != ConnResetUnderRequest) {
			t.Errorf("reset %v: connections %+v, want one closed or reset under the request", reset, conns)
		}
	}
}

// Every kind in one load, each under its own name.
func TestAllKindsTogether(t *testing.T) {
	b := startBackend(t)
	cert, _ := testCert(t)
	h2srv := httptestTLS(t, cert)
	dir := t.TempDir()
	l, err := RunWithOptions(context.Background(), b.URL(), NewClock(), dir, []Profile{
		{Name: "http1", Rate: 100},
		{Name: "http1-keepalive", Rate: 100, KeepAlive: true, Method: "POST", Body: []byte("x"), Path: "/backend/post"},
		{Name: "proxy", Rate: 50, KeepAlive: true, Path: "/backend/x?delay=20ms"},
		{Name: "http2", Rate: 100, HTTP2: true, Target: h2srv},
	}, Slow{},
		WithWebSockets(WebSockets{Count: 2, Interval: 50 * time.Millisecond}),
		WithUploads(Uploads{Count: 1, Bytes: 64 << 10, BytesPerSec: 512 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s.Drops() != 0 || s.Untracked != 0 {
		t.Fatalf("summary %+v, drops %d", s, s.Drops())
	}
	for _, p := range s.Profiles {
		if p.Requests < 10 || p.OK != p.Requests {
			t.Errorf("profile %+v", p)
		}
	}
	if s.WebSockets.Connections != 2 || s.WebSockets.Echoed == 0 || s.Uploads.OK < 1 {
		t.Errorf("websockets %+v, uploads %+v", s.WebSockets, s.Uploads)
	}
	names := map[string]bool{}
	for _, c := range readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile)) {
		names[c.Profile] = true
	}
	for _, n := range []string{"http1", "http1-keepalive", "proxy", "http2", WebSocketProfile, UploadProfile} {
		if !names[n] {
			t.Errorf("no connection record for %s (have %v)", n, names)
		}
	}
	results := decodeResults(t, dir)
	byName := map[string]int{}
	for _, r := range results {
		byName[r.Attack]++
	}
	if byName["http2"] == 0 || byName["http1"] == 0 {
		t.Errorf("results by profile %v", byName)
	}
}
