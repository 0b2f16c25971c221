package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestResetMidResponse(t *testing.T) {
	addr := rawServer(t, func(c *net.TCPConn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
		time.Sleep(50 * time.Millisecond) // let the client read the headers
		c.SetLinger(0)                    // close with RST
		c.Close()
	})
	a := newAcct(t)
	c, _ := a.client(true)
	if _, err := getBody(c, "GET", "http://"+addr+"/"); err == nil {
		t.Fatal("GET of a reset response succeeded")
	}
	a.waitRecords(1)
	conns, retries := a.end()
	wantOutcomes(t, conns, map[string]int{ConnResetUnderRequest: 1})
	if len(retries) != 0 {
		t.Errorf("retries = %+v, want none (a fresh connection is never replayed)", retries)
	}
	if len(conns) != 1 || conns[0].Requests != 1 || !strings.Contains(conns[0].Error, "reset") {
		t.Errorf("record = %+v, want 1 request and a reset error", conns[0])
	}
}

func TestServerClosesIdleKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		want  string
	}{{"fin", false, ConnClosedByServerIdle}, {"rst", true, ConnResetIdle}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, func(c *net.TCPConn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, okResponse)
				time.Sleep(50 * time.Millisecond) // idle keep-alive timeout
				if tc.reset {
					c.SetLinger(0)
				}
				c.Close()
			})
			a := newAcct(t)
			c, _ := a.client(true)
			if body, err := getBody(c, "GET", "http://"+addr+"/"); err != nil || body != "ok" {
				t.Fatalf("GET = %q, %v", body, err)
			}
			a.waitRecords(1)
			conns, _ := a.end()
			wantOutcomes(t, conns, map[string]int{tc.want: 1})
		})
	}
}

// closeSecondRequest answers the first request on each connection and closes
// the connection after reading the second one, without answering it: what a
// worker that exits under a keep-alive client does.
func closeSecondRequest(c *net.TCPConn, br *bufio.Reader) {
	if _, err := readRequest(br); err != nil {
		return
	}
	io.WriteString(c, okResponse)
	if _, err := readRequest(br); err != nil {
		return
	}
	c.Close()
}

func TestCloseUnderRequestGETIsRetriedAndCounted(t *testing.T) {
	addr := rawServer(t, closeSecondRequest)
	a := newAcct(t)
	c, _ := a.client(true)
	for i := range 2 {
		if body, err := getBody(c, "GET", "http://"+addr+"/"); err != nil || body != "ok" {
			t.Fatalf("GET %d = %q, %v (net/http should have replayed it)", i, body, err)
		}
	}
	a.waitRecords(1)
	conns, retries := a.end()
	wantOutcomes(t, conns, map[string]int{ConnClosedUnderRequest: 1, ConnOpenAtEnd: 1})
	if got := a.tr.retriedWritten.Load(); got != 1 {
		t.Errorf("retried (written) = %d, want 1", got)
	}
	if len(retries) != 1 {
		t.Fatalf("retries = %+v, want one", retries)
	}
	r := retries[0]
	var first, second ConnRecord
	for _, cr := range conns {
		if cr.Outcome == ConnClosedUnderRequest {
			first = cr
		} else {
			second = cr
		}
	}
	if r.Attempts != 2 || len(r.Conns) != 2 || r.Conns[0] != first.ID || r.Conns[1] != second.ID ||
		!r.Written || !r.OK || r.Error != "EOF" {
		t.Errorf("retry = %+v, want 2 attempts on conns [%d %d], written, ok, error EOF", r, first.ID, second.ID)
	}
	if first.Requests != 2 || first.Retried != 1 || second.Requests != 1 {
		t.Errorf("records = %+v / %+v, want 2 requests and 1 retried on the first, 1 request on the second", first, second)
	}
}

func TestCloseUnderRequestPOSTFails(t *testing.T) {
	addr := rawServer(t, closeSecondRequest)
	a := newAcct(t)
	c, _ := a.client(true)
	if _, err := getBody(c, "POST", "http://"+addr+"/"); err != nil {
		t.Fatalf("first POST: %v", err)
	}
	if _, err := getBody(c, "POST", "http://"+addr+"/"); err == nil {
		t.Fatal("second POST succeeded; want the error of the close (POST is not replayable)")
	}
	a.waitRecords(1)
	conns, retries := a.end()
	wantOutcomes(t, conns, map[string]int{ConnClosedUnderRequest: 1})
	if len(retries) != 0 || a.tr.retriedWritten.Load() != 0 {
		t.Errorf("retries = %+v, want none", retries)
	}
}

func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := newAcct(t)
	c, _ := a.client(true)
	if _, err := getBody(c, "GET", "http://"+addr+"/"); err == nil {
		t.Fatal("GET to a closed port succeeded")
	}
	conns, _ := a.end()
	wantOutcomes(t, conns, map[string]int{ConnRefused: 1})
	if a.tr.opened.Load() != 1 {
		t.Errorf("opened = %d, want 1", a.tr.opened.Load())
	}
}

// TestCloseRightAfterCompleteResponse is the race between net/http's read
// loop seeing the server's close and the body reader being told the response
// is complete: the server answers and closes at once, on every connection. No
// connection may count as closed under a request.
func TestCloseRightAfterCompleteResponse(t *testing.T) {
	for _, tc := range []struct {
		name, response string
		body           string
	}{
		{"content-length", okResponse, "ok"},
		{"no-body", "HTTP/1.1 204 No Content\r\n\r\n", ""},
		{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nok", "ok"},
		{"connection-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, func(c *net.TCPConn, br *bufio.Reader) {
				if _, err := readRequest(br); err != nil {
					return
				}
				io.WriteString(c, tc.response)
				c.Close()
			})
			a := newAcct(t)
			const workers, each = 8, 40
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						// A client of its own per request: each request gets a
						// fresh connection, so none is replayed.
						c, tr := a.client(true)
						body, err := getBody(c, "GET", "http://"+addr+"/")
						if err == nil && body != tc.body {
							err = fmt.Errorf("body %q", body)
						}
						if err != nil {
							errs <- err
						}
						time.Sleep(time.Millisecond)
						tr.CloseIdleConnections()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("request failed: %v", err)
			}
			a.waitRecords(workers * each)
			conns, retries := a.end()
			got := countOutcomes(conns)
			if len(conns) != workers*each || got[ConnClosedByClient]+got[ConnClosedByServerIdle] != workers*each {
				t.Errorf("outcomes = %v over %d records, want %d closed by client or idle", got, len(conns), workers*each)
			}
			if len(retries) != 0 {
				t.Errorf("retries = %d, want 0", len(retries))
			}
			t.Logf("outcomes: %v", got)
		})
	}
}

func TestKeepAliveOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	a := newAcct(t)
	c, _ := a.client(false)
	const n = 50
	for range n {
		if body, err := getBody(c, "GET", srv.URL+"/"); err != nil || body != "ok" {
			t.Fatalf("GET = %q, %v", body, err)
		}
	}
	a.waitRecords(n)
	conns, _ := a.end()
	got := countOutcomes(conns)
	if len(conns) != n || got[ConnClosedByClient]+got[ConnClosedByServerIdle] != n {
		t.Errorf("outcomes = %v over %d records, want %d connections closed by client or idle", got, len(conns), n)
	}
	for _, cr := range conns {
		if cr.Requests != 1 {
			t.Errorf("record %+v: want exactly 1 request per connection", cr)
		}
	}
}

func TestDialerRefusesNonLoopback(t *testing.T) {
	a := newAcct(t)
	dial := a.tr.dialer("test")
	for _, addr := range []string{"10.1.2.3:80", "example.com:80", "127.0.0.2:80", "[2001:db8::1]:80"} {
		if c, err := dial(context.Background(), "tcp", addr); err == nil {
			c.Close()
			t.Errorf("dial %s succeeded", addr)
		}
	}
	if a.tr.opened.Load() != 0 {
		t.Errorf("opened = %d, want 0 (refused before dialing)", a.tr.opened.Load())
	}
}

func TestRedirectOffLoopbackNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://10.1.2.3/", http.StatusFound))
	defer srv.Close()
	a := newAcct(t)
	c, _ := a.client(true)
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status = %d, want the 302 itself", resp.StatusCode)
	}
}

// A close under the first request of a fresh connection is never replayed by
// net/http, even for GET: the request fails.
func TestCloseUnderFirstRequestNotRetried(t *testing.T) {
	addr := rawServer(t, func(c *net.TCPConn, br *bufio.Reader) {
		if _, err := readRequest(br); err == nil {
			c.Close()
		}
	})
	a := newAcct(t)
	c, _ := a.client(true)
	if _, err := getBody(c, "GET", "http://"+addr+"/"); err == nil {
		t.Fatal("GET succeeded")
	}
	a.waitRecords(1)
	conns, retries := a.end()
	wantOutcomes(t, conns, map[string]int{ConnClosedUnderRequest: 1})
	if len(retries) != 0 {
		t.Errorf("retries = %+v, want none", retries)
	}
}
