package loadgen

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/http2"
)

// Why the HTTP/2 transport replayed a stream on another connection
// (StreamRecord.Retries). The first three are the protocol's own guarantee
// that the server never processed the stream (RFC 9113 §8.7): safe, not drops.
const (
	RetryGoAway        = "goaway"         // the server's GOAWAY named a last stream id below it
	RetryRefusedStream = "refused_stream" // RST_STREAM REFUSED_STREAM
	RetryUnusable      = "unusable"       // the connection had ended before the stream was sent
	// RetryUnexplained is a replay with none of that evidence on the
	// connection: the stream may have been processed. A drop.
	RetryUnexplained = "unexplained"
)

// SafeRetry tells whether a replay for that reason is one the protocol
// guarantees harmless.
func SafeRetry(reason string) bool {
	switch reason {
	case RetryGoAway, RetryRefusedStream, RetryUnusable:
		return true
	}
	return false
}

// h2Stats counts one HTTP/2 profile's streams.
type h2Stats struct {
	retriedSafe     atomic.Int64 // requests replayed only for never-processed reasons
	retriedUnsafe   atomic.Int64 // requests replayed at least once without that guarantee
	retriedUnsafeOK atomic.Int64 // those of them that then succeeded: drops no failed result shows
}

// evidence is what a connection's server said, read from the frames it
// sent (above TLS): GOAWAY and RST_STREAM are what decide whether a stream
// the transport replayed was processed.
type evidence struct {
	goaway        bool
	goawayLast    uint32
	goawayCode    http2.ErrCode
	refused       int // RST_STREAM REFUSED_STREAM
	otherResets   int // RST_STREAM with any other code
	ended         bool
	lastResetCode http2.ErrCode
}

// h2Conn is the TLS connection handed to the HTTP/2 transport, reading the
// frame headers the server sends as they pass.
type h2Conn struct {
	*tls.Conn
	tc *trackedConn

	mu  sync.Mutex
	ev  evidence
	hdr [9]byte // a frame header being read
	nh  int     // bytes of hdr read
	pay [8]byte // the first payload bytes of GOAWAY / RST_STREAM
	np  int
	typ byte
	rem int // payload bytes of the current frame still to come
}

func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.feed(p[:n])
	if err != nil {
		c.ev.ended = true
	}
	c.mu.Unlock()
	return n, err
}

// feed parses the server's frame stream: 9-byte headers (length, type,
// flags, stream id), then payloads, of which only GOAWAY's and RST_STREAM's
// first bytes are kept.
func (c *h2Conn) feed(b []byte) {
	for len(b) > 0 {
		if c.nh < len(c.hdr) {
			k := copy(c.hdr[c.nh:], b)
			c.nh += k
			b = b[k:]
			if c.nh < len(c.hdr) {
				return
			}
			c.rem = int(c.hdr[0])<<16 | int(c.hdr[1])<<8 | int(c.hdr[2])
			c.typ = c.hdr[3]
			c.np = 0
			if c.rem == 0 {
				c.frameDone()
			}
			continue
		}
		k := min(c.rem, len(b))
		if c.typ == byte(http2.FrameGoAway) || c.typ == byte(http2.FrameRSTStream) {
			c.np += copy(c.pay[c.np:], b[:k])
		}
		c.rem -= k
		b = b[k:]
		if c.rem == 0 {
			c.frameDone()
		}
	}
}

func (c *h2Conn) frameDone() {
	switch {
	case c.typ == byte(http2.FrameGoAway) && c.np >= 8:
		c.ev.goaway = true
		c.ev.goawayLast = binary.BigEndian.Uint32(c.pay[:4]) & (1<<31 - 1)
		c.ev.goawayCode = http2.ErrCode(binary.BigEndian.Uint32(c.pay[4:8]))
	case c.typ == byte(http2.FrameRSTStream) && c.np >= 4:
		code := http2.ErrCode(binary.BigEndian.Uint32(c.pay[:4]))
		if code == http2.ErrCodeRefusedStream {
			c.ev.refused++
		} else {
			c.ev.otherResets++
		}
		c.ev.lastResetCode = code
	}
	c.nh, c.np, c.rem = 0, 0, 0
}

func (c *h2Conn) evidence() evidence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ev
}

// retryReason says why a stream started on c with the evidence before was
// replayed, from what the server said since. A reset with another code
// (e.g. PROTOCOL_ERROR, which some transports replay) outweighs a refusal
// seen on the same connection: the stream may have been processed.
func retryReason(before, now evidence) string {
	switch {
	case now.otherResets > before.otherResets && now.refused == before.refused && !now.goaway:
		return RetryUnexplained
	case now.refused > before.refused:
		return RetryRefusedStream
	case now.goaway:
		return RetryGoAway
	case before.ended:
		return RetryUnusable
	}
	return RetryUnexplained
}

// newH2Client is the http.Client of an HTTP/2 profile: HTTPS with ALPN h2
// only, every connection dialed through the tracker, every stream followed.
func (t *tracker) newH2Client(cfg clientConfig, host string) (*http.Client, *http2.Transport) {
	tcfg := tlsConfig(cfg.tls, host, []string{http2.NextProtoTLS})
	dialTLS := t.tlsDialer(t.dialFor(cfg), tcfg, cfg.tlsStats, cfg.route != nil)
	base := &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			nc, err := dialTLS(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := nc.(*tls.Conn)
			if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
				tc.Close()
				return nil, errors.New("loadgen: server did not negotiate h2 (ALPN " + strconv.Quote(p) + ")")
			}
			return &h2Conn{Conn: tc, tc: connOf(tc)}, nil
		},
		TLSClientConfig:    tcfg,
		DisableCompression: true,
	}
	stop := cfg.stop
	if stop == nil {
		stop = context.Background()
	}
	rt := &h2RoundTripper{t: t, base: base, profile: cfg.profile, stop: stop, stats: cfg.h2Stats, streams: cfg.streams, withURL: cfg.recordURL}
	if cfg.checkBodies {
		rt.check = &bodyCheck{}
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, base
}

type h2RoundTripper struct {
	t       *tracker
	base    *http2.Transport
	profile string
	stop    context.Context
	check   *bodyCheck
	stats   *h2Stats
	streams *jsonl // streams.jsonl (nil: not written)
	withURL bool   // stream records carry the request's URL
}

func (rt *h2RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	st := &streamTrace{rt: rt, method: req.Method, startMs: rt.t.clock.Now()}
	tagRequest(req) // streams are reconciled through results.gob, which carries the same id
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
	st.status = resp.StatusCode
	return trackBody(req, resp, st, release, rt.check), nil
}

// streamTrace is one request's streams: one per connection the transport
// gave it (a replay is a new stream on another connection).
type streamTrace struct {
	rt      *h2RoundTripper
	method  string
	url     string // "" unless the profile records it
	startMs float64
	status  int

	mu      sync.Mutex
	cur     *h2Conn
	before  evidence // cur's evidence when the stream started
	conns   []uint64
	retries []string
	done    bool
}

func (s *streamTrace) gotConn(info httptrace.GotConnInfo) {
	hc, ok := info.Conn.(*h2Conn)
	if !ok || hc.tc == nil {
		s.rt.t.untracked.Add(1)
		return
	}
	s.mu.Lock()
	prev, before := s.cur, s.before
	s.mu.Unlock()
	if prev != nil {
		reason := retryReason(before, prev.evidence())
		prev.tc.streamEnd(attemptFailed, SafeRetry(reason))
		s.mu.Lock()
		s.retries = append(s.retries, reason)
		s.mu.Unlock()
	}
	ev := hc.evidence()
	hc.tc.streamStart()
	s.mu.Lock()
	s.cur, s.before = hc, ev
	s.conns = append(s.conns, hc.tc.id)
	s.mu.Unlock()
}

func (s *streamTrace) finish(st attemptState, err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	cur := s.cur
	s.cur = nil
	rec := StreamRecord{Ms: s.startMs, EndMs: s.rt.t.clock.Now(), Profile: s.rt.profile, Method: s.method, URL: s.url,
		Conns: s.conns, Retries: s.retries, Status: s.status}
	s.mu.Unlock()
	if cur != nil {
		cur.tc.streamEnd(st, false)
	}
	safe := true
	for _, r := range rec.Retries {
		safe = safe && SafeRetry(r)
	}
	switch {
	case len(rec.Retries) == 0:
	case safe:
		s.rt.stats.retriedSafe.Add(1)
	default:
		s.rt.stats.retriedUnsafe.Add(1)
		if st == attemptComplete {
			s.rt.stats.retriedUnsafeOK.Add(1)
		}
	}
	switch {
	case st == attemptComplete && err == nil:
		rec.Outcome = StreamOK
		if rec.Status < 200 || rec.Status > 299 {
			rec.Outcome, rec.Class = StreamFailed, "status_"+strconv.Itoa(rec.Status)
		}
	case st == attemptAbandoned, err != nil && Cancelled(err.Error()):
		rec.Outcome = StreamCancelled
	default:
		rec.Outcome, rec.Class = StreamFailed, h2Class(err)
	}
	if err != nil {
		rec.Error = err.Error()
	}
	if s.rt.streams == nil {
		return
	}
	s.rt.t.mu.Lock()
	done := s.rt.t.done
	s.rt.t.mu.Unlock()
	if !done {
		s.rt.streams.Put(rec)
	}
}

// h2Class names what ended a failed stream, as the client saw it.
func h2Class(err error) string {
	var se http2.StreamError
	var ge http2.GoAwayError
	switch {
	case err == nil:
		return "error"
	case WrongAnswer(err.Error()):
		return "wrong_answer"
	case errors.As(err, &se):
		return "rst_stream_" + strings.ToLower(se.Code.String())
	case errors.As(err, &ge):
		// GOAWAY then close, and this stream at or below its last stream
		// id: the server may have processed it.
		return "goaway_" + strings.ToLower(ge.ErrCode.String())
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		strings.Contains(err.Error(), "Timeout exceeded"):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), strings.Contains(err.Error(), "connection lost"):
		return "connection_lost"
	}
	return "error"
}
