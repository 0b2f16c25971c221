package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
)

// clientConfig is what one http.Client of the load needs.
type clientConfig struct {
	profile     string
	keepAlive   bool
	connections int // cap on connections (0: none)
	stop        context.Context
	https       bool   // the target is https
	host        string // the target's host (default SNI)
	tls         TLSOptions
	tlsStats    *tlsStats
	h2Stats     *h2Stats
	streams     *jsonl // streams.jsonl
	// route, when set, dials every address to the 127.0.0.1 address of
	// its port (a targets profile: URLs name the user's hosts), with the
	// TLS server name of each URL's host.
	route Route
	// recordURL puts each request's URL in its retry and stream records
	// (a targets profile: they say which target they were).
	recordURL bool
	// checkBodies compares every 2xx body with the first one served for the
	// same method and URL (see bodyCheck); off for the long downloads,
	// which are checked to the byte by their own count.
	checkBodies bool
}

// newTransport builds a transport whose every connection goes through the
// tracker's dialer. No proxy (the environment's must not divert the load), no
// compression (bytes are counted as sent), HTTP/1.1 only.
func (t *tracker) newTransport(cfg clientConfig) *http.Transport {
	idle := 10000
	if cfg.connections > 0 {
		idle = cfg.connections
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         t.dialFor(cfg),
		DisableKeepAlives:   !cfg.keepAlive,
		DisableCompression:  true,
		MaxIdleConnsPerHost: idle, // the default (2) would close connections under load
		MaxConnsPerHost:     cfg.connections,
		ForceAttemptHTTP2:   false,
	}
	if cfg.https {
		// HTTP/1.1 over TLS: the handshake on the tracked connection, so
		// that resumption is counted; ALPN offers http/1.1 only.
		tr.TLSClientConfig = tlsConfig(cfg.tls, cfg.host, []string{"http/1.1"})
		tr.DialTLSContext = t.tlsDialer(t.dialFor(cfg), tr.TLSClientConfig, cfg.tlsStats, cfg.route != nil)
	}
	return tr
}

// roundTripper follows every request through the transport: which
// connection(s) it was given, whether it was replayed, and when its response
// was completely read.
type roundTripper struct {
	t       *tracker
	base    *http.Transport
	profile string
	stop    context.Context // ends in-flight requests when the run's context ends
	check   *bodyCheck      // nil: bodies are not compared
	withURL bool            // retry records carry the request's URL
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	st := &reqTrace{t: rt.t, profile: rt.profile, method: req.Method, startMs: rt.t.clock.Now(), id: tagRequest(req)}
	if rt.withURL {
		st.url = req.URL.String()
	}
	ctx, cancel := context.WithCancel(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: st.gotConn}))
	unhook := context.AfterFunc(rt.stop, cancel)
	release := func() { unhook(); cancel() }

	resp, err := rt.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		st.finish(attemptFailed, err)
		release()
		return nil, err
	}
	return trackBody(req, resp, st, release, rt.check), nil
}

// tagRequest gives a vegeta request its id for the server's record: the
// attack and sequence vegeta set already, as one header of the
// harness's. The request is the one vegeta built for this hit alone, so
// setting a header on it changes no one else's.
func tagRequest(req *http.Request) string {
	if id := req.Header.Get(RequestIDHeader); id != "" {
		return id
	}
	if seq := req.Header.Get("X-Vegeta-Seq"); seq != "" {
		id := req.Header.Get("X-Vegeta-Attack") + "/" + seq
		req.Header.Set(RequestIDHeader, id)
		return id
	}
	return ""
}

// trackBody hands resp back with its body followed to its end — the
// attempt settled when it is read whole, a 2xx body checked against the
// reference — or settles the attempt at once when there is no body.
func trackBody(req *http.Request, resp *http.Response, st settler, release func(), check *bodyCheck) *http.Response {
	if resp.Body == nil || resp.Body == http.NoBody {
		st.finish(attemptComplete, nil)
		release()
		return resp
	}
	tb := &trackedBody{rc: resp.Body, st: st, release: release}
	if check != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		tb.check, tb.key, tb.hash = check, req.Method+" "+req.URL.String(), sha256.New()
	}
	resp.Body = tb
	return resp
}

// reqTrace is one request's path through the connections.
type reqTrace struct {
	t       *tracker
	profile string
	method  string
	url     string // "" unless the profile records it
	id      string // RequestIDHeader
	startMs float64

	mu       sync.Mutex
	cur      *attempt
	conns    [2]uint64 // first two connection ids, inline
	more     []uint64  // any further ones
	attempts int
	firstErr string
	written  bool // an earlier attempt had been written before its connection was closed
	done     bool
}

func (s *reqTrace) gotConn(info httptrace.GotConnInfo) {
	c := connOf(info.Conn)
	if c == nil {
		s.t.untracked.Add(1)
		return
	}
	s.mu.Lock()
	prev := s.cur
	s.mu.Unlock()
	if prev != nil {
		// A second connection for the same request: net/http is replaying it
		// because the previous one was closed under it.
		written, endErr := prev.c.settle(prev, attemptFailed, true)
		s.mu.Lock()
		if s.firstErr == "" {
			s.firstErr = endErr
			if endErr == "" {
				s.firstErr = "connection closed"
			}
		}
		s.written = s.written || written
		s.mu.Unlock()
	}
	a := c.assign()
	s.mu.Lock()
	s.cur = a
	if s.attempts < len(s.conns) {
		s.conns[s.attempts] = c.id
	} else {
		s.more = append(s.more, c.id)
	}
	s.attempts++
	s.mu.Unlock()
}

// finish settles the last attempt and, for a replayed request, writes its
// RetryRecord.
func (s *reqTrace) finish(st attemptState, err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	a := s.cur
	s.cur = nil
	attempts, written, firstErr := s.attempts, s.written, s.firstErr
	var conns []uint64
	if attempts > 1 {
		conns = append(append(make([]uint64, 0, attempts), s.conns[:min(attempts, len(s.conns))]...), s.more...)
	}
	s.mu.Unlock()
	if a != nil {
		a.c.settle(a, st, false)
	}
	if attempts < 2 {
		return
	}
	if written {
		s.t.retriedWritten.Add(1)
		if st == attemptComplete {
			s.t.retriedLost.Add(1)
		}
	} else {
		s.t.retriedUnwritten.Add(1)
	}
	rec := RetryRecord{ID: s.id, Ms: s.startMs, EndMs: s.t.clock.Now(), Profile: s.profile, Method: s.method, URL: s.url,
		Attempts: attempts, Conns: conns, Error: firstErr, Written: written, OK: st == attemptComplete}
	if err != nil {
		rec.Final = err.Error()
	}
	s.t.mu.Lock()
	done := s.t.done
	s.t.mu.Unlock()
	if !done {
		s.t.retries.Put(rec)
	}
}

// settler is what a tracked body reports to: one request's trace (HTTP/1.1
// or HTTP/2).
type settler interface{ finish(attemptState, error) }

// trackedBody marks the attempt complete when the body reaches EOF and,
// when bodies are checked, compares it with the reference.
type trackedBody struct {
	rc      io.ReadCloser
	st      settler
	release func()
	once    sync.Once

	check *bodyCheck
	key   string
	hash  hash.Hash
	size  int64
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if b.hash != nil && n > 0 {
		b.hash.Write(p[:n])
		b.size += int64(n)
	}
	switch {
	case err == nil:
	case err == io.EOF: // the sentinel itself: an unexpected EOF is a cut body
		b.st.finish(attemptComplete, nil)
		if b.hash != nil {
			if werr := b.check.compare(b.key, b.size, b.hash.Sum(nil)); werr != nil {
				return n, werr
			}
		}
	default:
		b.st.finish(attemptFailed, err)
	}
	return n, err
}

// bodyCheck holds, per method and URL, the body first served with a 2xx
// status (in the steady phase, before any step): every later 2xx body must be
// the same, size and SHA-256, or the request is a wrong answer. A user's page
// may be anything; it must not change in the middle of an upgrade.
type bodyCheck struct {
	refs sync.Map // key → *bodyRef
}

type bodyRef struct {
	size int64
	sum  string
}

func (c *bodyCheck) compare(key string, size int64, sum []byte) error {
	got := &bodyRef{size: size, sum: hex.EncodeToString(sum)}
	v, loaded := c.refs.LoadOrStore(key, got)
	if !loaded {
		return nil
	}
	if ref := v.(*bodyRef); ref.size != got.size || ref.sum != got.sum {
		return fmt.Errorf("%sbody of %d bytes (sha256 %.12s), the steady phase served %d bytes (sha256 %.12s)",
			errWrongAnswerPrefix, got.size, got.sum, ref.size, ref.sum)
	}
	return nil
}

func (b *trackedBody) Close() error {
	b.st.finish(attemptAbandoned, nil) // no-op when Read already settled it
	err := b.rc.Close()
	b.once.Do(b.release)
	return err
}

// newClient is the http.Client of one profile (or of one download): the
// tracking RoundTripper over a transport of its own. It never follows
// redirects (a redirect could lead off loopback; the dialer refuses that
// too).
func (t *tracker) newClient(cfg clientConfig) (*http.Client, *http.Transport) {
	base := t.newTransport(cfg)
	stop := cfg.stop
	if stop == nil {
		stop = context.Background()
	}
	rt := &roundTripper{t: t, base: base, profile: cfg.profile, stop: stop, withURL: cfg.recordURL}
	if cfg.checkBodies {
		rt.check = &bodyCheck{}
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, base
}
