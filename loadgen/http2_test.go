package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// testCert is a self-signed certificate for 127.0.0.1, made per test run.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nuh-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"nuh.test"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// h2Acct is an HTTP/2 client of its own tracker, driven by hand.
func (a *acct) h2Client(opts TLSOptions) (*http.Client, *http2.Transport, *tlsStats, *h2Stats, string) {
	sf, err := createMsgFile(a.dir, StreamsFile)
	if err != nil {
		a.t.Fatal(err)
	}
	a.files = append(a.files, sf)
	ts, hs := &tlsStats{}, &h2Stats{}
	c, tr := a.tr.newH2Client(clientConfig{profile: "h2", tls: opts, tlsStats: ts, h2Stats: hs, streams: newJSONL(sf), checkBodies: true}, "127.0.0.1")
	c.Timeout = 5 * time.Second
	a.t.Cleanup(tr.CloseIdleConnections)
	return c, tr, ts, hs, filepath.Join(a.dir, StreamsFile)
}

func TestHTTP2StreamsAndResumption(t *testing.T) {
	cert, pool := testCert(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	a := newAcct(t)
	// Verified against the run's CA, with a name the certificate holds.
	c, tr, ts, _, streamsPath := a.h2Client(TLSOptions{RootCAs: pool, ServerName: "nuh.test"})
	for i := range 6 {
		if body, err := getBody(c, "GET", srv.URL+"/"); err != nil || body != "ok" {
			t.Fatalf("GET %d = %q, %v", i, body, err)
		}
		if i == 2 {
			tr.CloseIdleConnections() // the next request needs a new connection, which resumes
		}
	}
	a.waitRecords(1)
	conns, _ := a.end()
	streams := readJSONL[StreamRecord](t, streamsPath)
	if len(streams) != 6 {
		t.Fatalf("streams = %d records, want 6", len(streams))
	}
	for _, s := range streams {
		if s.Outcome != StreamOK || len(s.Conns) != 1 || len(s.Retries) != 0 || s.Status != 200 {
			t.Errorf("stream %+v, want ok on one connection", s)
		}
	}
	if len(conns) != 2 {
		t.Fatalf("connections %+v, want 2", conns)
	}
	if conns[0].TLS != TLSFull || conns[0].Proto != "h2" || conns[0].Requests != 3 || conns[0].Outcome != ConnClosedByClient {
		t.Errorf("first connection %+v, want a full handshake, h2, 3 streams, closed by the client", conns[0])
	}
	if conns[1].TLS != TLSResumed || conns[1].Requests != 3 || conns[1].Outcome != ConnOpenAtEnd {
		t.Errorf("second connection %+v, want a resumed session, 3 streams, open at end", conns[1])
	}
	if ts.full.Load() != 1 || ts.resumed.Load() != 1 {
		t.Errorf("handshakes full %d resumed %d, want 1 and 1", ts.full.Load(), ts.resumed.Load())
	}
}

func TestHTTP2WrongCAFails(t *testing.T) {
	cert, _ := testCert(t)
	_, otherPool := testCert(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	a := newAcct(t)
	c, _, ts, _, _ := a.h2Client(TLSOptions{RootCAs: otherPool})
	if _, err := getBody(c, "GET", srv.URL+"/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET with the wrong CA: %v, want a certificate error", err)
	}
	if ts.failed.Load() != 1 {
		t.Errorf("failed handshakes = %d, want 1", ts.failed.Load())
	}
}

// rawH2 serves HTTP/2 over TLS on 127.0.0.1: the first connection is handed
// to first (which speaks frames by hand), later ones to a real HTTP/2 server.
func rawH2(t *testing.T, first func(c net.Conn, fr *http2.Framer)) string {
	t.Helper()
	cert, _ := testCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var n atomic.Int64
	h2srv := &http2.Server{}
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
				defer c.Close()
				if n.Add(1) > 1 {
					if err := c.(*tls.Conn).Handshake(); err != nil {
						return
					}
					h2srv.ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(okHandler)})
					return
				}
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				if err := fr.WriteSettings(); err != nil {
					t.Errorf("settings: %v", err)
				}
				first(c, fr)
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
	return "https://" + ln.Addr().String()
}

// untilHeaders reads frames (acknowledging settings) until a request's
// HEADERS, and returns its stream id (0: the connection ended).
func untilHeaders(fr *http2.Framer) uint32 {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			return f.StreamID
		}
	}
}

// drain reads until the client closes (or a second).
func drain(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, c)
}

func TestHTTP2NeverProcessedStreamsAreSafeRetries(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		answer       func(fr *http2.Framer, id uint32)
	}{
		{"goaway", RetryGoAway, func(fr *http2.Framer, id uint32) { fr.WriteGoAway(id-1, http2.ErrCodeNo, nil) }},
		{"refused-stream", RetryRefusedStream, func(fr *http2.Framer, id uint32) {
			// REFUSED_STREAM ends that stream only: the replay may come on
			// this same connection, and is answered.
			fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
			if id = untilHeaders(fr); id != 0 {
				var buf bytes.Buffer
				hpack.NewEncoder(&buf).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
				fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndHeaders: true})
				fr.WriteData(id, true, []byte("ok"))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawH2(t, func(c net.Conn, fr *http2.Framer) {
				if id := untilHeaders(fr); id != 0 {
					tc.answer(fr, id)
					drain(c)
				}
			})
			a := newAcct(t)
			c, tr, _, hs, streamsPath := a.h2Client(TLSOptions{})
			if body, err := getBody(c, "GET", url+"/"); err != nil || body != "ok" {
				t.Fatalf("GET = %q, %v (the transport should have replayed it)", body, err)
			}
			tr.CloseIdleConnections()
			a.waitRecords(1)
			conns, _ := a.end()
			streams := readJSONL[StreamRecord](t, streamsPath)
			if len(streams) != 1 || streams[0].Outcome != StreamOK || len(streams[0].Conns) != 2 ||
				len(streams[0].Retries) != 1 || streams[0].Retries[0] != tc.reason {
				t.Fatalf("streams %+v, want one ok after one %s retry", streams, tc.reason)
			}
			if hs.retriedSafe.Load() != 1 || hs.retriedUnsafe.Load() != 0 {
				t.Errorf("retried safe %d unsafe %d, want 1 and 0", hs.retriedSafe.Load(), hs.retriedUnsafe.Load())
			}
			for _, cr := range conns {
				if cr.Outcome == ConnClosedUnderRequest || cr.Outcome == ConnResetUnderRequest {
					t.Errorf("connection %+v: a stream the server never processed is not lost", cr)
				}
			}
			var refused int
			for _, cr := range conns {
				refused += cr.Refused
			}
			if refused != 1 {
				t.Errorf("connections %+v, want 1 refused stream", conns)
			}
			s := Summary{Profiles: []ProfileSummary{{RetriedSafe: hs.retriedSafe.Load()}}}
			if s.Drops() != 0 {
				t.Errorf("drops = %d, want 0", s.Drops())
			}
		})
	}
}

func TestHTTP2ServerCloseUnderStreamsIsADrop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		want  string
		class string
	}{
		{"fin", false, ConnClosedUnderRequest, "connection_lost"},
		{"rst", true, ConnResetUnderRequest, ""},
		{"rst-stream", false, "", "rst_stream_internal_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawH2(t, func(c net.Conn, fr *http2.Framer) {
				id := untilHeaders(fr)
				if id == 0 {
					return
				}
				if tc.name == "rst-stream" {
					fr.WriteRSTStream(id, http2.ErrCodeInternal)
					drain(c)
					return
				}
				tcp := c.(*tls.Conn).NetConn().(*net.TCPConn)
				if tc.reset {
					tcp.SetLinger(0)
					tcp.Close()
					return
				}
				tcp.CloseWrite() // a FIN: no GOAWAY, no close_notify
				drain(tcp)
			})
			a := newAcct(t)
			c, tr, _, hs, streamsPath := a.h2Client(TLSOptions{})
			if _, err := getBody(c, "GET", url+"/"); err == nil {
				t.Fatal("GET succeeded; want the error of the close")
			}
			tr.CloseIdleConnections()
			a.waitRecords(1)
			conns, _ := a.end()
			streams := readJSONL[StreamRecord](t, streamsPath)
			if len(streams) != 1 || streams[0].Outcome != StreamFailed || len(streams[0].Retries) != 0 {
				t.Fatalf("streams %+v, want one failed, not replayed", streams)
			}
			if tc.class != "" && streams[0].Class != tc.class {
				t.Errorf("class %q, want %q (%s)", streams[0].Class, tc.class, streams[0].Error)
			}
			if tc.want != "" {
				wantOutcomes(t, conns, map[string]int{tc.want: 1})
			}
			if hs.retriedSafe.Load()+hs.retriedUnsafe.Load() != 0 {
				t.Errorf("retries counted: %d safe, %d unsafe", hs.retriedSafe.Load(), hs.retriedUnsafe.Load())
			}
		})
	}
}

// chanListener hands out the connections a dispatcher gives it.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// A graceful shutdown (GOAWAY, then the streams in flight are answered) of
// the server a load is on, while a second server takes the new connections:
// what nginx's old workers do after WINCH. No stream may fail; replays, if
// any, must be safe ones.
func TestHTTP2GracefulShutdownUnderLoad(t *testing.T) {
	cert, _ := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	slowOK := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	old := &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	next := &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	var current atomic.Pointer[chanListener]
	current.Store(old)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case current.Load().ch <- c:
			case <-time.After(time.Second):
				c.Close()
			}
		}
	}()
	oldSrv, nextSrv := &http.Server{Handler: slowOK}, &http.Server{Handler: slowOK}
	for _, s := range []*http.Server{oldSrv, nextSrv} {
		http2.ConfigureServer(s, nil)
	}
	go oldSrv.Serve(tls.NewListener(old, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}))
	go nextSrv.Serve(tls.NewListener(next, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}))
	defer nextSrv.Close()
	dir := t.TempDir()
	l, err := Run(context.Background(), "http://127.0.0.1:1", NewClock(), dir,
		[]Profile{{Name: "h2", Rate: 400, HTTP2: true, Target: "https://" + ln.Addr().String()}}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	current.Store(next)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := oldSrv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := s.Profiles[0]
	if p.Requests < 150 || p.Failed != 0 || p.RetriedUnsafe != 0 || s.Drops() != 0 || s.Untracked != 0 {
		t.Fatalf("summary %+v", s)
	}
	if p.HandshakesFull+p.HandshakesResumed < 2 {
		t.Errorf("handshakes %d full + %d resumed, want a second connection after the shutdown", p.HandshakesFull, p.HandshakesResumed)
	}
	conns := readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
	for _, c := range conns {
		if c.Outcome == ConnClosedUnderRequest || c.Outcome == ConnResetUnderRequest {
			t.Errorf("connection %+v closed under a stream by a graceful shutdown", c)
		}
	}
	streams := readJSONL[StreamRecord](t, filepath.Join(dir, StreamsFile))
	if int64(len(streams)) != p.Requests {
		t.Errorf("%d stream records for %d requests", len(streams), p.Requests)
	}
	t.Logf("requests %d, safe retries %d, handshakes %d full %d resumed, connections %v",
		p.Requests, p.RetriedSafe, p.HandshakesFull, p.HandshakesResumed, s.Connections)
}

// httptestTLS is an HTTP/2-enabled TLS server answering "ok", as an https URL.
func httptestTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}
