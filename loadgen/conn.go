package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// dialTimeout bounds every dial: the target is on loopback, so a slow dial is
// itself a failure worth seeing.
const dialTimeout = 2 * time.Second

// outcomes, in a fixed order, for the counters.
var outcomeNames = [...]string{
	ConnClosedByClient,
	ConnClosedByServerIdle,
	ConnClosedUnderRequest,
	ConnResetUnderRequest,
	ConnResetIdle,
	ConnRefused,
	ConnDialError,
	ConnOpenAtEnd,
}

func outcomeIndex(o string) int {
	for i, n := range outcomeNames {
		if n == o {
			return i
		}
	}
	panic("loadgen: unknown outcome " + o)
}

// tracker is the connection accounting of one load: it dials every
// connection, follows each request attempt on it, and writes one ConnRecord
// per connection when its outcome is known.
type tracker struct {
	clock   Clock
	netns   string // dial inside this network namespace ("" : this process's)
	conns   *jsonl // connections.jsonl
	retries *jsonl // retries.jsonl

	nextID   atomic.Uint64
	opened   atomic.Int64
	outcomes [len(outcomeNames)]atomic.Int64

	retriedWritten   atomic.Int64 // replays after request bytes reached a closed connection
	retriedLost      atomic.Int64 // those of them that then succeeded: drops no failed result shows
	retriedUnwritten atomic.Int64 // replays of a request never written (idle close race): not drops
	untracked        atomic.Int64 // GotConn with a net.Conn we did not dial: must stay 0

	mu   sync.Mutex
	live map[uint64]*trackedConn // dialed and not yet recorded
	done bool                    // finish ran: nothing more is recorded
}

func newTracker(clock Clock, conns, retries *jsonl) *tracker {
	return &tracker{clock: clock, conns: conns, retries: retries, live: make(map[uint64]*trackedConn)}
}

// record writes and counts one finished connection. A trackedConn calls it
// with its own mutex held, so that finish, which takes each connection's
// mutex, cannot pass a connection whose record is still being written.
func (t *tracker) record(rec ConnRecord) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, rec.ID)
	if t.done {
		return
	}
	t.conns.Put(rec)
	t.outcomes[outcomeIndex(rec.Outcome)].Add(1)
}

// finish records every connection still open as open_at_end (and any closed
// one still waiting for its request's fate as under request: the request
// never completed) and stops recording.
func (t *tracker) finish() {
	t.mu.Lock()
	live := make([]*trackedConn, 0, len(t.live))
	for _, c := range t.live {
		live = append(live, c)
	}
	t.mu.Unlock()
	for _, c := range live {
		c.forceFinish()
	}
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}

// isLoopbackHost reports whether host (no port, no brackets) is one of the
// names the load may talk to.
func isLoopbackHost(host string) bool {
	switch host {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// slowReadBuffer is the long downloads' socket receive buffer.
const slowReadBuffer = 64 << 10

// dialer returns the DialContext of one profile's transport: it refuses any
// address that is not loopback, records refused and failed dials, and wraps
// each connection for accounting.
func (t *tracker) dialer(profile string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("loadgen: dial %s: %w", addr, err)
		}
		if !isLoopbackHost(host) {
			return nil, fmt.Errorf("loadgen: dial %s: refusing a non-loopback address", addr)
		}
		id := t.nextID.Add(1)
		t.opened.Add(1)
		openMs := t.clock.Now()
		var nc net.Conn
		if t.netns != "" {
			nc, err = dialIn(ctx, d, t.netns, network, addr)
		} else {
			nc, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			rec := ConnRecord{ID: id, Profile: profile, OpenMs: openMs, EndMs: t.clock.Now(), Error: err.Error()}
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				rec.Outcome = ConnRefused
			case errors.Is(err, context.Canceled):
				// The transport (or the run) gave up on this dial: the
				// client's doing, not the server's.
				rec.Outcome = ConnClosedByClient
			default:
				rec.Outcome = ConnDialError
			}
			t.record(rec)
			return nil, err
		}
		if tc, ok := nc.(*net.TCPConn); ok && profile == SlowProfile {
			// A small fixed receive buffer: a held download (Slow.HoldTail)
			// leaves its tail in the server's hands, not in this socket.
			tc.SetReadBuffer(slowReadBuffer)
		}
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			nc.Close()
			t.record(ConnRecord{ID: id, Profile: profile, OpenMs: openMs, EndMs: t.clock.Now(),
				Outcome: ConnDialError, Error: "remote address is not loopback"})
			return nil, fmt.Errorf("loadgen: dial %s: connected to non-loopback %v", addr, nc.RemoteAddr())
		}
		c := &trackedConn{Conn: nc, t: t, id: id, profile: profile, openMs: openMs, local: nc.LocalAddr().String()}
		t.mu.Lock()
		if t.done {
			t.mu.Unlock()
			nc.Close()
			return nil, fmt.Errorf("loadgen: dial %s: load is closed", addr)
		}
		t.live[id] = c
		t.mu.Unlock()
		return c, nil
	}
}

// attempt is one request given one connection (net/http may give the same
// request several connections when it replays it). Its fields are guarded by
// its connection's mutex.
type attempt struct {
	c       *trackedConn
	written bool         // request bytes reached the connection
	state   attemptState // what became of it
}

type attemptState uint8

const (
	attemptPending   attemptState = iota
	attemptComplete               // the whole response was read
	attemptFailed                 // it ended without a complete response (error or replay elsewhere)
	attemptAbandoned              // the client stopped reading (not the server's doing)
)

// how the server ended a connection, as the client saw it.
type serverEnd uint8

const (
	endNone  serverEnd = iota
	endEOF             // read returned io.EOF
	endReset           // ECONNRESET or EPIPE
)

// trackedConn is a net.Conn that knows which request attempt it carries and
// how it ended.
//
// Outstanding = an attempt whose request bytes were written and whose
// response has not been completely read. When the server's EOF or reset is
// seen, the attempt outstanding at that moment (if any) is remembered; the
// connection's outcome is decided only once that attempt is settled, because
// net/http's read loop can see the server's close of a connection before the
// goroutine reading the body has been told the body is complete (it is
// released only after the loop has put the connection back in the pool and
// gone back to reading). A close after a complete response is not a drop.
type trackedConn struct {
	net.Conn
	t       *tracker
	id      uint64
	profile string
	local   string
	openMs  float64

	mu       sync.Mutex
	cur      *attempt // the attempt most recently given this connection
	requests int      // attempts whose bytes were written here
	retried  int      // written attempts net/http replayed elsewhere
	end      serverEnd
	endErr   string
	under    *attempt // the attempt outstanding when the server ended it
	lost     int      // written attempts that failed after the server ended the connection
	closed   bool
	endMs    float64
	recorded bool

	tls   string // TLS handshake outcome (TLSFull…), "" for plain TCP
	proto string // ALPN protocol negotiated

	// HTTP/2: one connection carries many streams at once; cur and under
	// (above) are HTTP/1.1's one-request-at-a-time and stay unused.
	h2       bool
	inflight int // streams started here and not yet settled
	refused  int // streams the server declared never processed (GOAWAY, REFUSED_STREAM), replayed elsewhere
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.serverEnded(err)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	// Mark the attempt written before the bytes go out: the server may
	// answer and close before this goroutine runs again, and that close
	// must find the request outstanding. Undo it if nothing was written.
	c.mu.Lock()
	a := c.cur
	first := a != nil && !a.written && a.state == attemptPending
	if first {
		a.written = true
		c.requests++
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if first && n == 0 {
		c.mu.Lock()
		a.written = false
		c.requests--
		if c.under == a {
			c.under = nil
		}
		c.mu.Unlock()
	}
	if err != nil {
		c.serverEnded(err)
	}
	return n, err
}

// classify maps a read or write error to what the server did; errors of our
// own making (deadlines, use of a closed connection) are not server ends.
func classify(err error) serverEnd {
	switch {
	case errors.Is(err, io.EOF):
		return endEOF
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return endReset
	}
	return endNone
}

func (c *trackedConn) serverEnded(err error) {
	e := classify(err)
	if e == endNone {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.end != endNone || c.closed {
		return
	}
	c.end, c.endErr = e, err.Error()
	if a := c.cur; a != nil && a.written && a.state == attemptPending {
		c.under = a
	}
}

// assign gives the connection a new attempt (httptrace GotConn).
func (c *trackedConn) assign() *attempt {
	a := &attempt{c: c}
	c.mu.Lock()
	c.cur = a
	c.mu.Unlock()
	return a
}

// settle records what became of attempt a on c; replayed marks that net/http
// replays the request elsewhere. It returns whether a had been written and
// the error that ended the connection.
func (c *trackedConn) settle(a *attempt, st attemptState, replayed bool) (written bool, endErr string) {
	c.mu.Lock()
	written, endErr = a.written, c.endErr
	if a.state != attemptPending {
		c.mu.Unlock()
		return written, endErr
	}
	a.state = st
	if replayed && a.written {
		c.retried++
	}
	if st == attemptFailed && a.written && c.end != endNone {
		// A request written on a connection the server ended, and never
		// answered on it: lost here, whether the end came before or after
		// the bytes went out.
		c.lost++
	}
	c.finishLocked()
	c.mu.Unlock()
	return written, endErr
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return err
	}
	c.closed = true
	c.endMs = c.t.clock.Now()
	c.finishLocked()
	c.mu.Unlock()
	return err
}

// finishLocked records the connection once it is closed and the attempt
// outstanding at the server's end (if any) is settled.
func (c *trackedConn) finishLocked() {
	if c.recorded || !c.closed {
		return
	}
	var outcome string
	switch {
	case c.h2 && c.inflight > 0:
		return // wait for every stream to settle: each tells whether it was lost or never processed
	case c.end == endNone:
		outcome = ConnClosedByClient
	case c.under != nil && c.under.state == attemptPending:
		return // wait for the attempt to settle
	case c.cur != nil && c.cur.written && c.cur.state == attemptPending:
		// The keep-alive close race: the server's FIN was read before the
		// request was written, and the request was written anyway. Wait for
		// it to settle, so that a replay elsewhere is on this record.
		return
	case c.tls == TLSFailed:
		// The server ended the connection during the handshake, which a
		// request was waiting on.
		outcome = ConnClosedUnderRequest
		if c.end == endReset {
			outcome = ConnResetUnderRequest
		}
	case c.lost > 0:
		outcome = ConnClosedUnderRequest
		if c.end == endReset {
			outcome = ConnResetUnderRequest
		}
	default: // nothing outstanding, or the response was complete after all
		outcome = ConnClosedByServerIdle
		if c.end == endReset {
			outcome = ConnResetIdle
		}
	}
	c.recordLocked(outcome)
}

func (c *trackedConn) recordLocked(outcome string) {
	c.recorded = true
	rec := ConnRecord{ID: c.id, Profile: c.profile, Local: c.local, OpenMs: c.openMs, EndMs: c.endMs,
		Outcome: outcome, Requests: c.requests, Retried: c.retried, Error: c.endErr,
		TLS: c.tls, Proto: c.proto, Refused: c.refused}
	c.cur, c.under = nil, nil // free the attempts
	c.t.record(rec)
}

// forceFinish is the end of the run: a connection still open is open_at_end;
// a closed one whose outstanding attempt never settled is under request.
func (c *trackedConn) forceFinish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recorded {
		return
	}
	if !c.closed {
		c.endMs = c.t.clock.Now()
		c.recordLocked(ConnOpenAtEnd)
		return
	}
	if c.finishLocked(); c.recorded {
		return
	}
	outcome := ConnClosedUnderRequest
	if c.end == endReset {
		outcome = ConnResetUnderRequest
	}
	c.recordLocked(outcome)
}

func (c *trackedConn) setTLS(outcome, proto string) {
	c.mu.Lock()
	c.tls, c.proto = outcome, proto
	c.h2 = proto == "h2"
	c.mu.Unlock()
}

// streamStart counts an HTTP/2 stream given this connection.
func (c *trackedConn) streamStart() {
	c.mu.Lock()
	c.inflight++
	c.requests++
	c.mu.Unlock()
}

// streamEnd settles a stream: st is what became of it; neverProcessed
// marks a stream the server declared it never processed (replayed
// elsewhere, safely), which is not lost even on a connection the server
// ended.
func (c *trackedConn) streamEnd(st attemptState, neverProcessed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	switch {
	case neverProcessed:
		c.refused++
	case st == attemptFailed && c.end != endNone:
		c.lost++
	}
	c.finishLocked()
}
