package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

// Client is the driver's side: each call is one request and its reply.
// It has the controls of a *loadgen.Load, so a run drives a load through
// an agent as it drives one of its own.
type Client struct {
	mu  sync.Mutex
	w   io.Writer
	r   *bufio.Reader
	dir string // where Close writes the record files
	// Offset is the agent's wall clock minus the driver's, as OpTime
	// measured it (zero on one host, up to the round trip's half).
	Offset time.Duration
	// RoundTrip is OpTime's round trip: the bound on Offset's error.
	RoundTrip time.Duration
	closed    bool // the load is closed
	broken    bool // a reply did not come in time: the stream is out of step
	sum       loadgen.Summary
	closeErr  error
	timeout   time.Duration
}

// ErrClosed is a control sent after Close.
var ErrClosed = errors.New("agent: the load is closed")

// NewClient speaks to an agent through w (its stdin) and r (its stdout,
// demultiplexed); dir is the run directory the record files go to.
// timeout bounds each reply but OpWaitDownloads' and OpClose's, which
// carry their own.
func NewClient(w io.Writer, r io.Reader, dir string, timeout time.Duration) *Client {
	return &Client{w: w, r: bufio.NewReaderSize(r, 64<<10), dir: dir, timeout: timeout}
}

func (c *Client) call(req Request, timeout time.Duration) (Reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken {
		return Reply{}, fmt.Errorf("agent: %s: an earlier call got no answer in time", req.Op)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	type result struct {
		rep Reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		if _, err := c.w.Write(append(b, '\n')); err != nil {
			done <- result{err: fmt.Errorf("agent: send %s: %w", req.Op, err)}
			return
		}
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			done <- result{err: fmt.Errorf("agent: no answer to %s: %w", req.Op, err)}
			return
		}
		var rep Reply
		if err := json.Unmarshal(line, &rep); err != nil {
			done <- result{err: fmt.Errorf("agent: answer to %s: %w", req.Op, err)}
			return
		}
		done <- result{rep: rep}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		if r.err == nil && r.rep.Err != "" {
			r.err = fmt.Errorf("agent: %s: %s", req.Op, r.rep.Err)
		}
		return r.rep, r.err
	case <-t.C:
		// The stream is now out of step: every later call fails.
		c.broken = true
		return Reply{}, fmt.Errorf("agent: no answer to %s within %s", req.Op, timeout)
	}
}

// Sync measures the agent's clock against this process's (OpTime, the
// best of three round trips).
func (c *Client) Sync() error {
	best := time.Duration(-1)
	for range 3 {
		t0 := time.Now()
		rep, err := c.call(Request{Op: OpTime}, c.timeout)
		if err != nil {
			return err
		}
		t1 := time.Now()
		rt := t1.Sub(t0)
		if best >= 0 && rt >= best {
			continue
		}
		best = rt
		mid := t0.Add(rt / 2)
		c.Offset = time.Unix(0, rep.UnixNano).Sub(mid.Round(0))
		c.RoundTrip = rt
	}
	return nil
}

// Start starts the load; st.ClockUnixNano is set from clock and Offset.
func (c *Client) Start(st Start, clock loadgen.Clock) error {
	st.ClockUnixNano = clock.Start().Add(c.Offset).UnixNano()
	if st.Uploads != nil {
		up := *st.Uploads
		up.TLS.RootCAs = nil
		st.Uploads = &up
	}
	_, err := c.call(Request{Op: OpStart, Start: &st}, c.timeout)
	return err
}

// StartBackends starts stand-in upstreams in nginx's namespace, bounded
// by hardStop (before the load, or for checks without one).
func (c *Client) StartBackends(cfgs []backend.Config, hardStop time.Duration) error {
	_, err := c.call(Request{Op: OpBackends, Backends: cfgs, HardStopMs: hardStop.Milliseconds()}, c.timeout)
	return err
}

// StopBackends stops the stand-ins StartBackends started (without a load).
func (c *Client) StopBackends() error {
	_, err := c.call(Request{Op: OpStopBackends}, c.timeout)
	return err
}

// SetDir is the run directory Close writes the record files to.
func (c *Client) SetDir(dir string) {
	c.mu.Lock()
	c.dir = dir
	c.mu.Unlock()
}

// GetError is a Get the agent could not make: Timeout tells a slow answer
// from a refusal (as net.Error does).
type GetError struct {
	Msg     string
	timeout bool
}

func (e *GetError) Error() string   { return e.Msg }
func (e *GetError) Timeout() bool   { return e.timeout }
func (e *GetError) Temporary() bool { return false }

// Get sends one request to nginx from the agent's namespace.
func (c *Client) Get(g Get) (*Answer, error) {
	t := c.timeout
	if g.TimeoutMs > 0 {
		t = time.Duration(g.TimeoutMs)*time.Millisecond + c.timeout
	}
	rep, err := c.call(Request{Op: OpGet, Get: &g}, t)
	if rep.Err != "" {
		return nil, &GetError{Msg: rep.Err, timeout: rep.Timeout}
	}
	if err != nil {
		return nil, err
	}
	return rep.Answer, nil
}

// Snapshot is the load's summary so far (the zero summary when the agent
// does not answer: it is a progress line's, never a verdict's).
func (c *Client) Snapshot() loadgen.Summary {
	if c.isClosed() {
		return c.sum
	}
	rep, err := c.call(Request{Op: OpSnapshot}, c.timeout)
	if err != nil || rep.Summary == nil {
		return loadgen.Summary{}
	}
	return *rep.Summary
}

// StopAttack ends the paced profiles.
func (c *Client) StopAttack() {
	if !c.isClosed() {
		c.call(Request{Op: OpStopAttack}, c.timeout)
	}
}

// StartDownloads starts n more long downloads at bytesPerSec.
func (c *Client) StartDownloads(n int, bytesPerSec int64) error {
	if c.isClosed() {
		return ErrClosed
	}
	_, err := c.call(Request{Op: OpDownloads, N: n, BytesPerSec: bytesPerSec}, c.timeout)
	return err
}

// ReleaseDownloads lets the held long downloads read their tail.
func (c *Client) ReleaseDownloads() error {
	if c.isClosed() {
		return ErrClosed
	}
	_, err := c.call(Request{Op: OpRelease}, c.timeout)
	return err
}

// StartTricklers starts n slow clients.
func (c *Client) StartTricklers(n int) error {
	if c.isClosed() {
		return ErrClosed
	}
	_, err := c.call(Request{Op: OpTricklers, N: n}, c.timeout)
	return err
}

// WaitDownloads waits for the long downloads, at most until ctx ends.
func (c *Client) WaitDownloads(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	d := time.Hour
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	if d <= 0 {
		return context.DeadlineExceeded
	}
	_, err := c.call(Request{Op: OpWaitDownloads, TimeoutMs: d.Milliseconds()}, d+c.timeout)
	return err
}

// closeTimeout bounds the agent's close: the load's own close (its
// WebSockets' drain, its files) and the files' way back.
const closeTimeout = 2 * time.Minute

// Close closes the load and writes its record files into the run
// directory; a second Close returns the first one's result.
func (c *Client) Close() (loadgen.Summary, error) {
	if c.isClosed() {
		return c.sum, c.closeErr
	}
	rep, err := c.call(Request{Op: OpClose}, closeTimeout)
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if rep.Summary != nil {
		c.sum = *rep.Summary
	}
	var werr error
	for name, b := range rep.Files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			werr = errors.Join(werr, fmt.Errorf("agent: a record file named %q", name))
			continue
		}
		werr = errors.Join(werr, os.WriteFile(filepath.Join(c.dir, name), b, 0o644))
	}
	if err == nil && len(rep.Files) == 0 && rep.Summary != nil {
		err = errors.New("agent: the load's record files did not come back")
	}
	c.closeErr = errors.Join(err, werr)
	return c.sum, c.closeErr
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
