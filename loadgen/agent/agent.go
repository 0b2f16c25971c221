// Package agent runs a load (loadgen) on behalf of a driver that cannot
// reach nginx's network namespace itself — not root, in another pid or
// network namespace, or on another host than the engine. The agent is the
// tool's own static binary (the hidden subcommand Command) in a helper
// container that shares nginx's network namespace and nothing else: its
// connections go to 127.0.0.1 there, straight to nginx, as the netns path's
// do. The driver speaks to it over the container's attached stdin and
// stdout — through the engine's API, so a remote engine, Podman or a
// non-root user all work — one JSON line each way per request: the
// load's start, its controls (stop, long downloads, slow clients,
// snapshots), and at the end its record files, which the driver writes
// into the run directory as if it had run the load itself.
package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

// Command is the hidden subcommand of the CLI that runs as a load agent.
const Command = "load-agent"

// Operations of a Request.
const (
	OpTime          = "time"           // the agent's wall clock, to align the driver's clock with it
	OpBackends      = "backends"       // start stand-in backends (Backends), before or without a load
	OpStopBackends  = "stop-backends"  // stop the stand-in backends started without a load
	OpStart         = "start"          // start the stand-in backends and the load (Start)
	OpSnapshot      = "snapshot"       // the load's summary so far
	OpStopAttack    = "stop-attack"    // end the paced profiles
	OpDownloads     = "downloads"      // start N more long downloads at BytesPerSec
	OpTricklers     = "tricklers"      // start N slow clients
	OpRelease       = "release"        // let the held long downloads read their tail
	OpWaitDownloads = "wait-downloads" // wait (at most TimeoutMs) for the long downloads
	OpGet           = "get"            // one request to nginx from its namespace (Get)
	OpClose         = "close"          // close the load and the backends, send the record files (the agent goes on: it ends with its stdin)
)

// Request is one line the driver sends.
type Request struct {
	Op          string `json:"op"`
	Start       *Start `json:"start,omitempty"`
	N           int    `json:"n,omitempty"`
	BytesPerSec int64  `json:"bytes_per_sec,omitempty"`
	TimeoutMs   int64  `json:"timeout_ms,omitempty"`
	Get         *Get   `json:"get,omitempty"`
	// Backends for OpBackends; HardStopMs bounds them.
	Backends   []backend.Config `json:"backends,omitempty"`
	HardStopMs int64            `json:"hard_stop_ms,omitempty"`
}

// Reply is the agent's answer to one Request: Err names what failed.
type Reply struct {
	Err      string            `json:"err,omitempty"`
	UnixNano int64             `json:"unix_nano,omitempty"` // OpTime
	Summary  *loadgen.Summary  `json:"summary,omitempty"`   // OpSnapshot, OpClose
	Files    map[string][]byte `json:"files,omitempty"`     // OpClose: the record files by name
	Answer   *Answer           `json:"answer,omitempty"`    // OpGet
	// Timeout says the request failed on a timeout (slow), not a refusal.
	Timeout bool `json:"timeout,omitempty"`
}

// Start is what the load is: loadgen.RunWithOptions's arguments, in a form
// that crosses the wire.
type Start struct {
	Target string `json:"target"`
	// ClockUnixNano is the run clock's start on the agent's wall clock
	// (the driver's start corrected by the offset OpTime measured).
	ClockUnixNano int64               `json:"clock_unix_nano"`
	Profiles      []Profile           `json:"profiles"`
	Slow          loadgen.Slow        `json:"slow"`
	WebSockets    *loadgen.WebSockets `json:"websockets,omitempty"`
	Uploads       *loadgen.Uploads    `json:"uploads,omitempty"`
	// CertPEM is the node's certificate: the TLS profiles verify nginx
	// with it (the driver's x509 pool does not cross the wire).
	CertPEM []byte `json:"cert_pem,omitempty"`
	// Backends are the stand-in upstreams to serve in the namespace
	// (Netns is ignored: the agent is in it).
	Backends []backend.Config `json:"backends,omitempty"`
	// HardStopMs bounds the load from its start, whatever the driver does.
	HardStopMs int64 `json:"hard_stop_ms"`
}

// Profile is a loadgen.Profile with its targets' bodies, which
// loadgen.Target does not marshal.
type Profile struct {
	loadgen.Profile
	Bodies [][]byte `json:"bodies,omitempty"`
}

// WireProfiles converts profiles for the wire.
func WireProfiles(ps []loadgen.Profile) []Profile {
	out := make([]Profile, len(ps))
	for i, p := range ps {
		out[i].Profile = p
		out[i].Profile.TLS.RootCAs = nil
		for _, t := range p.Targets {
			out[i].Bodies = append(out[i].Bodies, t.Body)
		}
	}
	return out
}

// Get is one request the agent sends to nginx for the driver (is it
// serving, what a configuration answers before the load).
type Get struct {
	Method string      `json:"method"`
	URL    string      `json:"url"` // http:// or https://127.0.0.1:PORT/… only
	Host   string      `json:"host,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	// HTTP2 speaks HTTP/2 over TLS (ALPN h2) to an https URL; the
	// certificate is not verified (a check of what is served, not of trust).
	HTTP2 bool `json:"http2,omitempty"`
	// WebSocket opens a WebSocket on the URL (ws:// for http://), sends
	// Body as a text message and answers the echo as the Answer's Body.
	WebSocket bool `json:"websocket,omitempty"`
	// TimeoutMs bounds it (default 5 s).
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// Answer is what came back for a Get; redirects are not followed.
type Answer struct {
	Status        int         `json:"status"`
	StatusText    string      `json:"status_text"`
	Header        http.Header `json:"header"`
	ContentLength int64       `json:"content_length"`
	Body          []byte      `json:"body"`
}

// maxAnswer bounds the body of an Answer.
const maxAnswer = 1 << 20

// Main is the agent (the hidden subcommand): it serves requests from stdin
// until stdin's end, writing the load's files under a directory
// of its own in dir (default the system's temporary directory).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dir := os.TempDir()
	if len(args) == 2 && args[0] == "--dir" {
		dir = args[1]
	} else if len(args) != 0 {
		fmt.Fprintf(stderr, "%s: usage: %s [--dir DIR]\n", Command, Command)
		return 2
	}
	if err := Serve(context.Background(), stdin, stdout, dir); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Command, err)
		return 1
	}
	return 0
}

// Serve answers the requests read from in on out until in's end (the
// driver let go); whatever is open then is closed.
func Serve(ctx context.Context, in io.Reader, out io.Writer, dir string) error {
	s := &server{dir: dir}
	defer s.shutdown()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req Request
		var rep Reply
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			rep.Err = "bad request: " + err.Error()
		} else {
			rep = s.do(ctx, req)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return sc.Err()
}

type server struct {
	dir      string
	runDir   string
	load     *loadgen.Load
	backends []*backend.Server
	cancels  []context.CancelFunc
}

// startBackends starts stand-in upstreams in the namespace, bounded by
// hardStopMs.
func (s *server) startBackends(ctx context.Context, cfgs []backend.Config, hardStopMs int64) error {
	if len(cfgs) == 0 {
		return nil
	}
	if hardStopMs <= 0 {
		return errors.New("backends: no hard stop: every stand-in is bounded in time")
	}
	bctx, cancel := context.WithTimeout(ctx, time.Duration(hardStopMs)*time.Millisecond)
	s.cancels = append(s.cancels, cancel)
	for _, b := range cfgs {
		b.Netns = ""
		srv, err := backend.Start(bctx, b)
		if err != nil {
			return fmt.Errorf("stand-in backend on %s: %w", b.Addr, err)
		}
		s.backends = append(s.backends, srv)
	}
	return nil
}

func (s *server) do(ctx context.Context, req Request) (rep Reply) {
	fail := func(err error) Reply { return Reply{Err: err.Error()} }
	switch req.Op {
	case OpTime:
		return Reply{UnixNano: time.Now().UnixNano()}
	case OpStart:
		if s.load != nil {
			return fail(errors.New("the load is already started"))
		}
		if req.Start == nil {
			return fail(errors.New("start: no load given"))
		}
		if err := s.start(ctx, *req.Start); err != nil {
			s.shutdown()
			return fail(err)
		}
		return Reply{}
	case OpBackends:
		if err := s.startBackends(ctx, req.Backends, req.HardStopMs); err != nil {
			return fail(err)
		}
		return Reply{}
	case OpStopBackends:
		if s.load != nil {
			return fail(errors.New("stop-backends: a load runs: they stop with it"))
		}
		s.closeBackends()
		return Reply{}
	case OpGet:
		if req.Get == nil {
			return fail(errors.New("get: no request given"))
		}
		a, err := Send(ctx, *req.Get)
		if err != nil {
			var ne net.Error
			return Reply{Err: err.Error(), Timeout: errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())}
		}
		return Reply{Answer: a}
	}
	if s.load == nil && req.Op == OpClose {
		s.shutdown()
		return Reply{}
	}
	if s.load == nil {
		return fail(fmt.Errorf("%s: no load started", req.Op))
	}
	switch req.Op {
	case OpSnapshot:
		sum := s.load.Snapshot()
		return Reply{Summary: &sum}
	case OpStopAttack:
		s.load.StopAttack()
		return Reply{}
	case OpDownloads:
		if err := s.load.StartDownloads(req.N, req.BytesPerSec); err != nil {
			return fail(err)
		}
		return Reply{}
	case OpRelease:
		s.load.ReleaseDownloads()
		return Reply{}
	case OpTricklers:
		if err := s.load.StartTricklers(req.N); err != nil {
			return fail(err)
		}
		return Reply{}
	case OpWaitDownloads:
		wctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
		defer cancel()
		if err := s.load.WaitDownloads(wctx); err != nil {
			return fail(err)
		}
		return Reply{}
	case OpClose:
		sum, err := s.load.Close()
		s.load = nil
		s.closeBackends()
		rep := Reply{Summary: &sum}
		files, ferr := readFiles(s.runDir)
		rep.Files = files
		if err = errors.Join(err, ferr); err != nil {
			rep.Err = err.Error()
		}
		return rep
	}
	return fail(fmt.Errorf("unknown operation %q", req.Op))
}

func (s *server) start(ctx context.Context, st Start) error {
	if st.HardStopMs <= 0 {
		return errors.New("start: no hard stop: every load is bounded in time")
	}
	runDir, err := os.MkdirTemp(s.dir, "nuh-load-")
	if err != nil {
		return err
	}
	s.runDir = runDir
	lctx, cancel := context.WithTimeout(ctx, time.Duration(st.HardStopMs)*time.Millisecond)
	s.cancels = append(s.cancels, cancel)
	if err := s.startBackends(ctx, st.Backends, st.HardStopMs); err != nil {
		return err
	}
	var pool *x509.CertPool
	if len(st.CertPEM) > 0 {
		pool = x509.NewCertPool()
		blk, _ := pem.Decode(st.CertPEM)
		if blk == nil {
			return errors.New("start: the node's certificate is not PEM")
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("start: the node's certificate: %w", err)
		}
		pool.AddCert(cert)
	}
	profiles := make([]loadgen.Profile, len(st.Profiles))
	for i, wp := range st.Profiles {
		p := wp.Profile
		if pool != nil && p.TLS.ServerName != "" {
			p.TLS.RootCAs = pool
		}
		p.Targets = append([]loadgen.Target(nil), p.Targets...)
		for j := range p.Targets {
			if j < len(wp.Bodies) {
				p.Targets[j].Body = wp.Bodies[j]
			}
		}
		profiles[i] = p
	}
	opts := []loadgen.Option{loadgen.ProbeOnSocket(filepath.Join(runDir, "control-probe.sock"))}
	if st.WebSockets != nil {
		opts = append(opts, loadgen.WithWebSockets(*st.WebSockets))
	}
	if st.Uploads != nil {
		up := *st.Uploads
		if pool != nil && up.TLS.ServerName != "" {
			up.TLS.RootCAs = pool
		}
		opts = append(opts, loadgen.WithUploads(up))
	}
	clock := loadgen.NewClockAt(time.Unix(0, st.ClockUnixNano))
	s.load, err = loadgen.RunWithOptions(lctx, st.Target, clock, runDir, profiles, st.Slow, opts...)
	return err
}

func (s *server) closeBackends() {
	for _, b := range s.backends {
		b.Close()
	}
	s.backends = nil
}

func (s *server) shutdown() {
	if s.load != nil {
		s.load.Close()
		s.load = nil
	}
	s.closeBackends()
	for _, c := range s.cancels {
		c()
	}
	s.cancels = nil
}

// readFiles reads the regular files of dir (the load's records; not the
// probe's socket).
func readFiles(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return files, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

// Send sends g to nginx: to 127.0.0.1 only, whatever is asked. The agent
// sends a driver's Get with it; a driver that reaches nginx's published
// port sends its own.
func Send(ctx context.Context, g Get) (*Answer, error) {
	u, err := url.Parse(g.URL)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() != "127.0.0.1" || u.User != nil {
		return nil, fmt.Errorf("get %s: only http(s)://127.0.0.1 is asked from the agent", g.URL)
	}
	timeout := 5 * time.Second
	if g.TimeoutMs > 0 {
		timeout = time.Duration(g.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if g.WebSocket {
		return echo(ctx, g)
	}
	var body io.Reader
	if g.Body != nil {
		body = bytes.NewReader(g.Body)
	}
	req, err := http.NewRequestWithContext(ctx, g.Method, g.URL, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range g.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if g.Host != "" {
		req.Host = g.Host
	}
	var rt http.RoundTripper
	if g.HTTP2 {
		tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}}
		defer tr.CloseIdleConnections()
		rt = tr
	} else {
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		rt = tr
	}
	client := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	return &Answer{Status: resp.StatusCode, StatusText: resp.Status, Header: resp.Header, ContentLength: resp.ContentLength, Body: b}, nil
}

// echo opens a WebSocket, sends g.Body and reads one message back.
func echo(ctx context.Context, g Get) (*Answer, error) {
	wsURL := "ws" + strings.TrimPrefix(g.URL, "http")
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("answered %s: %w", resp.Status, err)
		}
		return nil, err
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, g.Body); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("no echo: %w", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	return &Answer{Status: http.StatusSwitchingProtocols, StatusText: "101 Switching Protocols", Header: resp.Header, Body: msg}, nil
}
