// Package backend is the upstream the harness puts behind nginx for the proxy
// traffic: an HTTP server, served from the harness's own process, that can
// listen inside a container's network namespace (no binary in the container)
// or on the host's loopback.
//
// It answers:
//
//   - "/" and "/backend/…": a known body (the same on every request, so the
//     load can check it), with the header X-Backend naming this server;
//     "?delay=250ms" (or "?delay=250", milliseconds) holds the answer that
//     long, so that requests are in flight to the upstream during a transition.
//   - "/ws": a WebSocket echo; "?close_after=N&code=C" closes with code C
//     after N echoes, "?abort_after=N" resets the TCP connection after N
//     echoes (no close frame), for tests and positive controls.
//   - "/upload": reads and counts the request body and answers its length and
//     SHA-256 (JSON, and headers X-Upload-Bytes and X-Upload-Sha256);
//     "?read_rate=N" reads at N bytes per second.
//
// Keep-alive is on, with an idle timeout longer than nginx's upstream
// keepalive_timeout (60 s by default), so that nginx, not the backend, closes
// idle upstream connections.
package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen/internal/netns"
)

// Limits on what a request may ask.
const (
	MaxDelay    = 60 * time.Second
	IdleTimeout = 120 * time.Second
	// MaxMessage bounds one WebSocket message.
	MaxMessage = 1 << 20
	// shutdownGrace bounds how long Close waits for requests in flight.
	shutdownGrace = 10 * time.Second
)

// Header names the backend sets.
const (
	HeaderBackend      = "X-Backend"
	HeaderUploadBytes  = "X-Upload-Bytes"
	HeaderUploadSha256 = "X-Upload-Sha256"
)

// Config says where the backend listens.
type Config struct {
	// Addr is IP:PORT to listen on (port 0: any free port), loopback only:
	// 127.0.0.x or ::1. Default 127.0.0.1:0.
	Addr string
	// Netns, when set, is the network namespace to listen in (e.g.
	// /proc/PID/ns/net of a container's process); it needs root.
	Netns string
	// Name is sent in the X-Backend header and the body. Default "backend".
	Name string
	// AnyPath answers the known body on every path but /ws and /upload (a
	// stand-in for a user's upstream, whatever location proxies to it);
	// otherwise only / and /backend/… are answered, anything else is 404.
	AnyPath bool
}

// UploadAnswer is the body of an answer to /upload.
type UploadAnswer struct {
	Bytes  int64  `json:"bytes"`
	Sha256 string `json:"sha256"`
}

// Server is a running backend.
type Server struct {
	name    string
	anyPath bool
	ln      net.Listener
	srv     *http.Server
	body    []byte

	stop     context.Context // ends the WebSocket sessions (with 1001)
	stopNow  context.CancelFunc
	ws       sync.WaitGroup // WebSocket handlers (hijacked: Shutdown does not wait for them)
	served   chan struct{}  // Serve returned
	unhook   func() bool
	once     sync.Once
	closeErr error
}

// Body is the known body the backend answers on "/" and "/backend/…".
func Body(name string) []byte {
	return []byte("nginx-upgrade-harness backend " + name + "\n")
}

// Start listens and serves until Close or the end of ctx.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "backend"
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("backend: address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("backend: address %q: want a loopback IP literal (127.0.0.x or ::1)", cfg.Addr)
	}
	var ln net.Listener
	if cfg.Netns != "" {
		ln, err = netns.Listen(cfg.Netns, "tcp", cfg.Addr)
	} else {
		ln, err = net.Listen("tcp", cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("backend: listen on %s: %w", cfg.Addr, err)
	}
	stop, stopNow := context.WithCancel(context.Background())
	s := &Server{name: cfg.Name, anyPath: cfg.AnyPath, ln: ln, body: Body(cfg.Name), stop: stop, stopNow: stopNow, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWebSocket)
	mux.HandleFunc("/upload", s.serveUpload)
	mux.HandleFunc("/", s.serveBody)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       IdleTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(ln)
	}()
	s.unhook = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

type connKey struct{}

// Addr is the address the backend listens on (IP:PORT), in its namespace.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close ends the WebSocket sessions with 1001 (going away), stops accepting,
// lets the requests in flight finish (at most 10 s, then closes their
// connections) and waits for every handler. Calling it again returns the
// same.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.unhook()
		s.stopNow()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			s.srv.Close()
		}
		<-s.served
		s.ws.Wait()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("backend: requests still in flight after %v: closed", shutdownGrace)
		}
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) serveBody(w http.ResponseWriter, r *http.Request) {
	if !s.anyPath && r.URL.Path != "/" && r.URL.Path != "/backend" && !strings.HasPrefix(r.URL.Path, "/backend/") {
		http.NotFound(w, r)
		return
	}
	if r.Body != nil {
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	}
	if d, ok := parseDelay(r.URL.Query().Get("delay")); ok {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	} else if r.URL.Query().Has("delay") {
		http.Error(w, "bad delay", http.StatusBadRequest)
		return
	}
	w.Header().Set(HeaderBackend, s.name)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
	w.Write(s.body)
}

// parseDelay reads "250ms", "2s" or "250" (milliseconds), at most MaxDelay.
func parseDelay(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		ms, err := strconv.Atoi(v)
		if err != nil {
			return 0, false
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d < 0 || d > MaxDelay {
		return 0, false
	}
	return d, true
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	var rd io.Reader = r.Body
	if v := r.URL.Query().Get("read_rate"); v != "" {
		rate, err := strconv.ParseInt(v, 10, 64)
		if err != nil || rate <= 0 {
			http.Error(w, "bad read_rate", http.StatusBadRequest)
			return
		}
		rd = &slowReader{r: r.Body, rate: rate, start: time.Now(), ctx: r.Context()}
	}
	h := sha256.New()
	n, err := io.Copy(h, rd)
	if err != nil {
		// The client went away (or the body was cut): nothing to answer.
		return
	}
	ans := UploadAnswer{Bytes: n, Sha256: hex.EncodeToString(h.Sum(nil))}
	w.Header().Set(HeaderBackend, s.name)
	w.Header().Set(HeaderUploadBytes, strconv.FormatInt(n, 10))
	w.Header().Set(HeaderUploadSha256, ans.Sha256)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ans)
}

// slowReader reads at most rate bytes per second on average.
type slowReader struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
	ctx   context.Context
}

func (s *slowReader) Read(p []byte) (int, error) {
	chunk := max(s.rate/20, 1)
	if int64(len(p)) > chunk {
		p = p[:chunk]
	}
	due := s.start.Add(time.Duration(float64(s.n) / float64(s.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return 0, s.ctx.Err()
		}
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	return n, err
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	closeAfter, _ := strconv.Atoi(q.Get("close_after"))
	abortAfter, _ := strconv.Atoi(q.Get("abort_after"))
	code := websocket.StatusNormalClosure
	if v := q.Get("code"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 1000 || c > 4999 {
			http.Error(w, "bad code", http.StatusBadRequest)
			return
		}
		code = websocket.StatusCode(c)
	}
	raw, _ := r.Context().Value(connKey{}).(net.Conn)
	s.ws.Add(1)
	defer s.ws.Done()
	if s.stop.Err() != nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(MaxMessage)
	// The session ends on Close (1001, going away) or when the client goes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stopped := context.AfterFunc(s.stop, func() {
		c.Close(websocket.StatusGoingAway, "backend shutting down")
		cancel()
	})
	defer stopped()
	for echoed := 0; ; echoed++ {
		if closeAfter > 0 && echoed >= closeAfter {
			c.Close(code, "close_after")
			return
		}
		if abortAfter > 0 && echoed >= abortAfter {
			if tc, ok := raw.(*net.TCPConn); ok {
				tc.SetLinger(0) // the close sends a reset
			}
			c.CloseNow()
			return
		}
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}
