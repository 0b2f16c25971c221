package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// coder/websocket (formerly nhooyr.io/websocket): maintained by Coder,
	// no dependencies, context on every call, safe for one reader and one
	// writer at once, and it dials through a caller's *http.Client — so the
	// connection is made by the tracker's dialer and accounted like any
	// other. CloseStatus gives the peer's close code, or -1 when no close
	// frame came (1006). gorilla/websocket would do too, but its dialer
	// bypasses http.Transport and its close codes come from error types.
	"github.com/coder/websocket"
)

// Defaults and bounds of the WebSocket traffic.
const (
	WebSocketProfile      = "websocket"
	DefaultWebSocketPath  = "/ws"
	DefaultWSInterval     = time.Second
	DefaultWSDrain        = 2 * time.Second
	MaxWebSockets         = 1024
	wsNoCloseFrame        = 1006
	wsMessagePrefixFormat = "%d "
)

// WebSocketRecord.Ended values.
const (
	WSEndedClient     = "client"       // the load stopped: we sent 1000 and the server answered: not a drop
	WSEndedCancelled  = "cancelled"    // the run was aborted: closed at once, not a drop
	WSEndedServer     = "server_close" // the server sent a close frame (see Code)
	WSEndedAbnormal   = "abnormal"     // the connection ended without a close frame (1006): a drop
	WSEndedDialFailed = "dial_failed"  // the handshake failed (refused, reset, not 101): a drop
)

// WebSockets is a set of long-lived WebSocket connections, each sending a
// numbered message every Interval and expecting its echo. A connection that
// ends is not reopened: its end is the finding.
type WebSockets struct {
	Name     string        // profile name in records; default "websocket"
	Count    int           // connections (0: none; at most MaxWebSockets)
	Target   string        // base URL (http://…; default the load's target)
	Path     string        // default "/ws"
	Interval time.Duration // between messages on one connection; default 1 s
	// Drain is how long the load, stopping, waits for the echoes still due
	// before it closes (default 2 s); messages still unanswered then are lost.
	Drain time.Duration
	// Payload pads each message to this many bytes (default: the number only).
	Payload int
}

// WithWebSockets adds WebSocket connections to the load (websockets.jsonl).
func WithWebSockets(w WebSockets) Option { return func(o *options) { o.ws = w } }

func (w WebSockets) withDefaults() (WebSockets, error) {
	if w.Count < 0 || w.Count > MaxWebSockets {
		return w, fmt.Errorf("websockets: count %d: want 0..%d", w.Count, MaxWebSockets)
	}
	if w.Name == "" {
		w.Name = WebSocketProfile
	}
	if w.Path == "" {
		w.Path = DefaultWebSocketPath
	}
	if !strings.HasPrefix(w.Path, "/") {
		return w, fmt.Errorf("websockets: path %q must start with /", w.Path)
	}
	if w.Target != "" {
		if _, err := checkTarget(w.Target, false); err != nil {
			return w, fmt.Errorf("websockets: %w", err)
		}
	}
	if w.Interval <= 0 {
		w.Interval = DefaultWSInterval
	}
	if w.Drain <= 0 {
		w.Drain = DefaultWSDrain
	}
	if w.Payload < 0 || w.Payload > 1<<20 {
		return w, fmt.Errorf("websockets: payload %d: want 0..1 MiB", w.Payload)
	}
	return w, nil
}

// WebSocketRecord is one WebSocket connection: what it exchanged and how it
// ended.
type WebSocketRecord struct {
	ID      int     `json:"id"`
	Profile string  `json:"profile"`
	Conn    uint64  `json:"conn,omitempty"` // its ConnRecord id
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Sent    int     `json:"sent"`
	Echoed  int     `json:"echoed"`
	// Lost counts messages sent and never echoed (not counted for a
	// cancelled connection: see Unanswered).
	Lost       int    `json:"lost"`
	Unanswered int    `json:"unanswered,omitempty"` // pending when the run was aborted
	Mismatched int    `json:"mismatched"`           // echoes unlike any message pending
	Ended      string `json:"ended"`                // WSEnded…
	// Code is the close code the server sent (1000 normal, 1001 going
	// away…), 1006 when the connection ended without a close frame, or the
	// code we sent when the client ended it.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	Drop   bool   `json:"drop"` // see WebSocketDrop
	// ServerPid is the worker that answered the handshake (PidHeader).
	ServerPid int `json:"server_pid,omitempty"`
}

// WebSocketDrop is the rule for one connection: a failed handshake, an end
// without a close frame (1006: nginx, which relays WebSocket bytes without
// reading them, never sends a close frame itself — a worker that ends a
// proxied connection just closes it), or a close frame whose code is not an
// orderly one, all while the client had not stopped. Orderly: 1000 (normal),
// 1001 (going away: what a server or proxy shutting down says) and 1012
// (service restart). An orderly close by the server is reported, by code,
// but is not a drop by itself; its messages lost are.
func WebSocketDrop(ended string, code int) bool {
	switch ended {
	case WSEndedClient, WSEndedCancelled:
		return false
	case WSEndedServer:
		return !orderlyClose(code)
	}
	return true
}

func orderlyClose(code int) bool {
	switch websocket.StatusCode(code) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusServiceRestart:
		return true
	}
	return false
}

// wsStats are the running totals of the WebSocket connections.
type wsStats struct {
	conns, sent, echoed, lost, mismatched, dropped atomic.Int64
	mu                                             sync.Mutex
	ended                                          map[string]int64
	codes                                          map[string]int64
}

func (s *wsStats) add(r WebSocketRecord) {
	s.conns.Add(1)
	s.sent.Add(int64(r.Sent))
	s.echoed.Add(int64(r.Echoed))
	s.lost.Add(int64(r.Lost))
	s.mismatched.Add(int64(r.Mismatched))
	if r.Drop {
		s.dropped.Add(1)
	}
	s.mu.Lock()
	if s.ended == nil {
		s.ended, s.codes = map[string]int64{}, map[string]int64{}
	}
	s.ended[r.Ended]++
	if r.Code != 0 && (r.Ended == WSEndedServer || r.Ended == WSEndedAbnormal) {
		s.codes[strconv.Itoa(r.Code)]++
	}
	s.mu.Unlock()
}

// WebSocketSummary totals the WebSocket connections.
type WebSocketSummary struct {
	Connections int64 `json:"connections"`
	Sent        int64 `json:"sent"`
	Echoed      int64 `json:"echoed"`
	Lost        int64 `json:"lost"`       // drops
	Mismatched  int64 `json:"mismatched"` // drops (a wrong answer)
	Dropped     int64 `json:"dropped"`    // connections that ended as a drop (WebSocketDrop)
	// Ended counts connections by how they ended (WSEnded…); Codes counts
	// the server's close codes ("1000", "1001", …, "1006" for no close frame).
	Ended map[string]int64 `json:"ended"`
	Codes map[string]int64 `json:"codes"`
}

func (s *wsStats) summary() WebSocketSummary {
	out := WebSocketSummary{Connections: s.conns.Load(), Sent: s.sent.Load(), Echoed: s.echoed.Load(),
		Lost: s.lost.Load(), Mismatched: s.mismatched.Load(), Dropped: s.dropped.Load(),
		Ended: map[string]int64{}, Codes: map[string]int64{}}
	s.mu.Lock()
	for k, v := range s.ended {
		out.Ended[k] = v
	}
	for k, v := range s.codes {
		out.Codes[k] = v
	}
	s.mu.Unlock()
	return out
}

// wsSession runs one connection until stop (the load stopping: drain and
// close with 1000) or abort (the run's context: close at once).
func (t *tracker) wsSession(id int, w WebSockets, url string, clock Clock, stop <-chan struct{}, abort context.Context, out *jsonl, stats *wsStats) {
	rec := WebSocketRecord{ID: id, Profile: w.Name, StartMs: clock.Now()}
	defer func() {
		rec.EndMs = clock.Now()
		rec.Drop = WebSocketDrop(rec.Ended, rec.Code)
		stats.add(rec)
		t.mu.Lock()
		done := t.done
		t.mu.Unlock()
		if !done {
			out.Put(rec)
		}
	}()

	var tc *trackedConn
	var att *attempt
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c := connOf(info.Conn); c != nil {
			tc, att = c, c.assign()
		} else {
			t.untracked.Add(1)
		}
	}}
	// The connection's context lives as long as the session: net/http ties
	// the upgraded connection to the request's context.
	ctx, cancel := context.WithCancel(httptrace.WithClientTrace(abort, trace))
	defer cancel()
	transport := t.newTransport(clientConfig{profile: w.Name, keepAlive: true})
	defer transport.CloseIdleConnections()
	dctx, dcancel := context.WithTimeout(ctx, DefaultTimeout)
	c, hresp, err := websocket.Dial(dctx, url, &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		CompressionMode: websocket.CompressionDisabled,
		HTTPHeader:      http.Header{RequestIDHeader: {"ws/" + strconv.Itoa(id)}},
	})
	dcancel()
	if hresp != nil {
		rec.ServerPid, _ = strconv.Atoi(hresp.Header.Get(PidHeader))
	}
	// The handshake's attempt is settled when the session ends: a server
	// end of the connection while it was open is then under a request.
	settle := func(st attemptState) {
		if tc != nil && att != nil {
			tc.settle(att, st, false)
		}
	}
	if tc != nil {
		rec.Conn = tc.id
	}
	if err != nil {
		settle(attemptFailed)
		rec.Ended, rec.Error = WSEndedDialFailed, err.Error()
		if abort.Err() != nil {
			rec.Ended = WSEndedCancelled
		}
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 21)

	var mu sync.Mutex
	pending := map[int]bool{}
	readErr := make(chan error, 1)
	go func() {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			seq, ok := parseSeq(msg)
			mu.Lock()
			if ok && pending[seq] {
				delete(pending, seq)
				rec.Echoed++
			} else {
				rec.Mismatched++
			}
			mu.Unlock()
		}
	}()
	pad := strings.Repeat("x", w.Payload)
	tick := time.NewTicker(w.Interval)
	defer tick.Stop()
	send := func(seq int) error {
		msg := fmt.Sprintf(wsMessagePrefixFormat, seq) + pad
		mu.Lock()
		pending[seq] = true
		rec.Sent++
		mu.Unlock()
		return c.Write(ctx, websocket.MessageText, []byte(msg))
	}
	finish := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch code := websocket.CloseStatus(err); {
		case abort.Err() != nil:
			rec.Ended = WSEndedCancelled
			rec.Unanswered = len(pending)
			settle(attemptAbandoned)
			return
		case code != -1:
			rec.Ended, rec.Code = WSEndedServer, int(code)
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				rec.Reason = ce.Reason
			}
			if orderlyClose(rec.Code) {
				settle(attemptComplete)
			} else {
				settle(attemptFailed)
			}
		default:
			rec.Ended, rec.Code, rec.Error = WSEndedAbnormal, wsNoCloseFrame, err.Error()
			settle(attemptFailed)
		}
		rec.Lost = len(pending)
	}
	seq := 0
	if err := send(seq); err != nil {
		c.CloseNow()
		finish(<-readErr)
		return
	}
	for {
		select {
		case <-tick.C:
			seq++
			if err := send(seq); err != nil {
				c.CloseNow()
				// The reader sees the same end, with the close frame if any.
				finish(<-readErr)
				return
			}
		case err := <-readErr:
			finish(err)
			return
		case <-abort.Done():
			c.CloseNow()
			finish(<-readErr)
			return
		case <-stop:
			// Stop sending, let the echoes due arrive, then close: ours is
			// the client's end, not a drop; what stayed unanswered is lost.
			deadline := time.Now().Add(w.Drain)
			for time.Now().Before(deadline) {
				mu.Lock()
				n := len(pending)
				mu.Unlock()
				if n == 0 {
					break
				}
				select {
				case err := <-readErr:
					finish(err)
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			cerr := c.Close(websocket.StatusNormalClosure, "load stopped")
			err := <-readErr
			mu.Lock()
			rec.Ended, rec.Code = WSEndedClient, int(websocket.StatusNormalClosure)
			rec.Lost = len(pending)
			if cerr != nil {
				rec.Error = cerr.Error()
			}
			mu.Unlock()
			_ = err
			settle(attemptComplete)
			return
		}
	}
}

func parseSeq(msg []byte) (int, bool) {
	s := string(msg)
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
