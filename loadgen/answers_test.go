package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eofConn is a net.Conn whose reads answer with a canned response until the
// server "closes" it (eof set), then return io.EOF: the keep-alive close race
// played step by step, in the order that no live server can be made to
// produce on demand.
type eofConn struct {
	net.Conn
	mu  sync.Mutex
	eof bool
}

func (c *eofConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *eofConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.eof {
		return 0, io.EOF
	}
	return copy(p, okResponse), nil
}
func (c *eofConn) Close() error { return nil }
func (c *eofConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

// TestCloseRaceRecordsTheRetryOnItsConnection: the server's FIN is read
// while the connection sits idle, a request is written on it anyway, the
// transport closes it and replays the request on a new connection. The
// first connection's record must carry that request — closed under request,
// retried 1 — and the load's count of drops must be the report's: 1.
func TestCloseRaceRecordsTheRetryOnItsConnection(t *testing.T) {
	a := newAcct(t)
	req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	buf := make([]byte, 512)
	first := &trackedConn{Conn: &eofConn{}, t: a.tr, id: 1, profile: "race"}
	second := &trackedConn{Conn: &eofConn{}, t: a.tr, id: 2, profile: "race"}
	a.tr.live[1], a.tr.live[2] = first, second

	// A first request, served whole on the first connection.
	r1 := &reqTrace{t: a.tr, profile: "race", method: "GET"}
	r1.gotConn(gotConnInfo(first))
	first.Write(req)
	first.Read(buf)
	r1.finish(attemptComplete, nil)

	// The server closes the idle connection; the read loop sees its FIN.
	first.Conn.(*eofConn).eof = true
	first.Read(buf)
	// A second request is given the connection and written on it before the
	// transport notices; then the transport closes it and replays elsewhere.
	r2 := &reqTrace{t: a.tr, profile: "race", method: "GET"}
	r2.gotConn(gotConnInfo(first))
	first.Write(req)
	first.Close()
	r2.gotConn(gotConnInfo(second))
	second.Write(req)
	second.Read(buf)
	r2.finish(attemptComplete, nil)
	second.Close()

	conns, retries := a.end()
	var rec ConnRecord
	for _, c := range conns {
		if c.ID == 1 {
			rec = c
		}
	}
	if rec.Outcome != ConnClosedUnderRequest || rec.Retried != 1 || rec.Requests != 2 {
		t.Errorf("first connection = %+v, want closed_under_request with 2 requests, 1 retried", rec)
	}
	if len(retries) != 1 || !retries[0].Written || !retries[0].OK {
		t.Fatalf("retries = %+v, want one written request replayed with success", retries)
	}
	sum := Summary{Retried: a.tr.retriedWritten.Load(), RetriedLost: a.tr.retriedLost.Load()}
	if got := sum.Drops(); got != 1 {
		t.Errorf("Summary.Drops() = %d, want 1 (the replayed request)", got)
	}
}

// TestWrongAnswersAreFailures: a body that differs from the steady phase's
// and a redirect are failed requests, each with its own error; the requests
// served as in the steady phase are ok.
func TestWrongAnswersAreFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch i := n.Add(1); {
		case i <= 10:
			io.WriteString(w, "the page")
		case i <= 15:
			io.WriteString(w, "another page")
		case i <= 20:
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		default:
			io.WriteString(w, "the page")
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	// One connection at a time, so the server sees the requests in order.
	l, err := Run(context.Background(), srv.URL, NewClock(), dir, []Profile{
		{Name: "get", Rate: 200, MaxRequests: 30, Connections: 1, KeepAlive: true},
	}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Snapshot().Profiles[0].Requests < 30 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := sum.Profiles[0]
	if p.Requests != 30 || p.OK != 20 || p.Failed != 10 {
		t.Errorf("requests %d, ok %d, failed %d; want 30, 20, 10", p.Requests, p.OK, p.Failed)
	}
	var wrong, redirects int
	for _, r := range decodeResults(t, dir) {
		switch {
		case WrongAnswer(r.Error):
			wrong++
		case r.Code == http.StatusFound:
			redirects++
			if Succeeded(&r) {
				t.Errorf("a 302 counted as success: %+v", r)
			}
		}
	}
	if wrong != 5 || redirects != 5 {
		t.Errorf("wrong bodies %d, redirects %d; want 5 and 5", wrong, redirects)
	}
	if got := sum.Drops(); got != 10 {
		t.Errorf("Summary.Drops() = %d, want 10", got)
	}
}

func TestCancelledIsNotATimeout(t *testing.T) {
	for msg, want := range map[string]bool{
		`Get "http://127.0.0.1:8080/": context canceled`:                              true,
		"net/http: request canceled":                                                  true,
		"net/http: request canceled (Client.Timeout exceeded while awaiting headers)": false,
		"context deadline exceeded":                                                   false,
		"read tcp 127.0.0.1:5555->127.0.0.1:8080: read: connection reset by peer":     false,
		"": false,
		fmt.Sprintf("%sbody of 1 bytes (sha256 x), the steady phase served 2 bytes (sha256 y)", errWrongAnswerPrefix): false,
	} {
		if got := Cancelled(msg); got != want {
			t.Errorf("Cancelled(%q) = %t, want %t", msg, got, want)
		}
	}
	if !strings.HasPrefix(errWrongAnswerPrefix, "loadgen:") {
		t.Fatal("wrong-answer errors must name the load as their source")
	}
}
