package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/net/http2"
)

// Load is a running load: attacks, long downloads, connection accounting and
// the files they stream to. Run starts it; Close ends it.
type Load struct {
	clock Clock
	tr    *tracker

	resFile, connFile, dlFile, retryFile *msgFile
	streamFile, wsFile, upFile           *msgFile
	downloads                            *jsonl
	streams                              *jsonl

	profiles   []*profileRun
	results    chan *vegeta.Result
	fwdWG      sync.WaitGroup
	writerDone chan struct{}
	writeErr   error // set by the writer goroutine before writerDone closes

	slow        Slow
	dir         string
	base        string // target base URL
	tricklers   *jsonl // slow clients' records, once one started
	trickleFile *msgFile
	trWG        sync.WaitGroup
	dlCtx       context.Context // parent of every download
	dlNext      atomic.Int64    // next download id
	dlWG        sync.WaitGroup
	dlCancel    context.CancelFunc
	dlRelease   chan struct{} // closed by ReleaseDownloads
	dlOnce      sync.Once
	dlStarted   atomic.Int64
	dlComplete  atomic.Int64
	dlCut       atomic.Int64
	dlCancelled atomic.Int64

	ws       WebSockets
	wsStats  wsStats
	wsWG     sync.WaitGroup
	up       Uploads
	upStats  uploadStats
	upTLS    *tlsStats
	upWG     sync.WaitGroup
	upNext   atomic.Int64
	trafStop chan struct{} // closed by StopAttack: no new upload, WebSockets drain and close
	trafOnce sync.Once

	obs *observer // the observer's health (ObserverFile)

	cancelRun context.CancelFunc
	unhook    func() bool
	quit      chan struct{}
	flushDone chan struct{}

	closeOnce sync.Once
	summary   Summary
	closeErr  error
}

// profileRun is one profile's attack and its running totals.
type profileRun struct {
	p         Profile
	attacker  *vegeta.Attacker
	closeIdle func() // closes the transport's idle connections
	tls       *tlsStats
	h2        *h2Stats
	requests  atomic.Int64
	ok        atomic.Int64
	failed    atomic.Int64
	cancelled atomic.Int64
	firstNs   atomic.Int64 // offsets from the clock's start of the first and last request
	lastNs    atomic.Int64
	// began is when its attack started (just before vegeta's own start)
	// and interval its pacer's: the i-th hit is due at began + (i+1)·interval.
	began    time.Time
	interval time.Duration
}

// Summary is the load's totals, so far (Snapshot) or final (Close).
type Summary struct {
	Profiles []ProfileSummary `json:"profiles"`
	// Opened counts connections dialed, including refused and failed dials.
	Opened int64 `json:"opened"`
	// Connections counts connections by outcome (ConnClosedByClient…); a
	// connection is counted once its outcome is known.
	Connections map[string]int64 `json:"connections"`
	// Retried counts requests net/http replayed on a new connection after the
	// server closed or reset the one they had been written on: drops, even
	// when the replay succeeded (see retries.jsonl). Their first connections
	// are also counted as closed_under_request or reset_under_request.
	Retried int64 `json:"retried"`
	// RetriedLost counts the replays among Retried that succeeded: the
	// close they hid is a drop no failed result shows.
	RetriedLost int64 `json:"retried_lost"`
	// RetriedUnwritten counts replays of requests that had not been written
	// (the transport took an idle connection the server had just closed):
	// not drops.
	RetriedUnwritten int64 `json:"retried_unwritten"`
	// Untracked counts requests given a connection the accounting did not
	// dial; anything but 0 is a bug in the accounting.
	Untracked  int64            `json:"untracked"`
	Downloads  DownloadSummary  `json:"downloads"`
	WebSockets WebSocketSummary `json:"websockets"`
	Uploads    UploadSummary    `json:"uploads"`
	// UploadHandshakes counts the TLS handshakes of https uploads.
	UploadHandshakes HandshakeSummary `json:"upload_handshakes"`
}

// HandshakeSummary counts TLS handshakes.
type HandshakeSummary struct {
	Full    int64 `json:"full"`
	Resumed int64 `json:"resumed"`
	Failed  int64 `json:"failed"`
}

// ProfileSummary is one profile's request totals.
type ProfileSummary struct {
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`
	OK        int64   `json:"ok"`        // no error, a 2xx status and the steady phase's body
	Failed    int64   `json:"failed"`    // an error, any other status, or another body
	Cancelled int64   `json:"cancelled"` // ended by the client (the load stopping): not a drop
	Rate      float64 `json:"rate"`      // achieved requests per second (first to last request)

	// HTTP/2 (a request is a stream): requests the transport replayed on
	// another connection. Safe: every replay was for a stream the server
	// declared never processed (GOAWAY above its last stream id,
	// REFUSED_STREAM, or a connection that had ended before the stream was
	// sent) — reported, not drops. Unsafe: a replay without that guarantee —
	// a drop (UnsafeRetriedOK counts those that then succeeded, which no
	// failed result shows).
	RetriedSafe     int64 `json:"retried_safe,omitempty"`
	RetriedUnsafe   int64 `json:"retried_unsafe,omitempty"`
	UnsafeRetriedOK int64 `json:"unsafe_retried_ok,omitempty"`
	// TLS handshakes of an https profile: full ones after an upgrade are a
	// cost (the new master could not resume the sessions), not drops; a
	// failed one is a failed request already.
	HandshakesFull    int64 `json:"handshakes_full,omitempty"`
	HandshakesResumed int64 `json:"handshakes_resumed,omitempty"`
	HandshakesFailed  int64 `json:"handshakes_failed,omitempty"`
}

// DownloadSummary counts the long downloads.
type DownloadSummary struct {
	Started   int64 `json:"started"`
	Completed int64 `json:"completed"`
	Cut       int64 `json:"cut"`       // ended short of the expected bytes or with an error, by the server's doing
	Cancelled int64 `json:"cancelled"` // cancelled by the client (the load stopping): not a drop
}

// Drops is what was lost, counted as the report counts it (each loss once;
// DROPS.md states the rules and their reasons): failed requests and HTTP/2
// streams (client-side cancellations excluded); requests net/http replayed
// after the server closed the connection they had been written on, and
// HTTP/2 streams replayed without the protocol's never-processed guarantee,
// that then succeeded (a replay that failed is already a failed request);
// long downloads cut by the server; failed uploads; WebSocket connections
// that ended as a drop (WebSocketDrop), plus every message sent on any
// WebSocket and never echoed, or echoed wrong. Not drops, and reported:
// safe HTTP/2 replays, full TLS handshakes, orderly WebSocket closes,
// closes of idle connections, anything the client cancelled.
func (s Summary) Drops() int64 {
	var n int64
	for _, p := range s.Profiles {
		n += p.Failed + p.UnsafeRetriedOK
	}
	n += s.RetriedLost + s.Downloads.Cut + s.Uploads.Failed
	return n + s.WebSockets.Dropped + s.WebSockets.Lost + s.WebSockets.Mismatched
}

// Run starts the load against target (http://127.0.0.1:PORT, http://[::1]:PORT
// or http://localhost:PORT; any other host is refused) and returns at once.
// Every profile attacks at its constant rate until StopAttack, its Duration,
// or the end of ctx; the slow downloads start together. Everything measured
// streams to dir (ResultsFile, ConnectionsFile, DownloadsFile, RetriesFile),
// stamped with clock. When ctx ends, the load stops at once (in-flight
// requests and downloads are cancelled); Close must still be called, and
// leaves complete files either way.
func Run(ctx context.Context, target string, clock Clock, dir string, profiles []Profile, slow Slow) (*Load, error) {
	return RunWithOptions(ctx, target, clock, dir, profiles, slow)
}

// RunWithOptions is Run with options (InNetns).
func RunWithOptions(ctx context.Context, target string, clock Clock, dir string, profiles []Profile, slow Slow, opts ...Option) (*Load, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	base, err := CheckTarget(target)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if o.netns != "" {
		if err := CheckNetns(o.netns); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
	}
	if o.ws, err = o.ws.withDefaults(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if o.up, err = o.up.withDefaults(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if len(profiles) == 0 && slow.Count == 0 && o.ws.Count == 0 && o.up.Count == 0 {
		return nil, errors.New("loadgen: no profile and no download: nothing to run")
	}
	ps := make([]Profile, len(profiles))
	names := map[string]bool{}
	for i, p := range profiles {
		if ps[i], err = p.withDefaults(i); err != nil {
			return nil, fmt.Errorf("loadgen: %w", err)
		}
		if names[ps[i].Name] {
			return nil, fmt.Errorf("loadgen: profile name %q used twice", ps[i].Name)
		}
		names[ps[i].Name] = true
	}
	if slow, err = slow.withDefaults(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loadgen: create run directory: %w", err)
	}

	l := &Load{clock: clock, slow: slow, ws: o.ws, up: o.up, trafStop: make(chan struct{}),
		quit: make(chan struct{}), flushDone: make(chan struct{}),
		writerDone: make(chan struct{}), results: make(chan *vegeta.Result, 1024)}
	var files []*msgFile
	for _, f := range []struct {
		dst  **msgFile
		name string
	}{{&l.resFile, ResultsFile}, {&l.connFile, ConnectionsFile}, {&l.dlFile, DownloadsFile}, {&l.retryFile, RetriesFile},
		{&l.streamFile, StreamsFile}, {&l.wsFile, WebSocketsFile}, {&l.upFile, UploadsFile}} {
		m, err := createMsgFile(dir, f.name)
		if err != nil {
			for _, m := range files {
				m.Close()
			}
			return nil, err
		}
		*f.dst = m
		files = append(files, m)
	}
	hold := time.Duration(0)
	for _, p := range ps {
		hold = max(hold, p.Timeout)
	}
	if l.obs, err = startObserver(clock, dir, hold+time.Second, o.probeSocket); err != nil {
		for _, m := range files {
			m.Close()
		}
		return nil, err
	}
	l.tr = newTracker(clock, newJSONL(l.connFile), newJSONL(l.retryFile))
	l.tr.netns = o.netns
	l.downloads = newJSONL(l.dlFile)
	l.streams = newJSONL(l.streamFile)

	runCtx, cancelRun := context.WithCancel(ctx)
	l.cancelRun = cancelRun
	dlCtx, dlCancel := context.WithCancel(runCtx)
	l.dlCancel = dlCancel
	l.dlRelease = make(chan struct{})

	go l.writeResults()
	go l.flushLoop()

	for _, p := range ps {
		pr := &profileRun{p: p, tls: &tlsStats{}, h2: &h2Stats{}}
		cc := clientConfig{profile: p.Name, keepAlive: p.KeepAlive, connections: p.Connections, stop: runCtx,
			checkBodies: true, tls: p.TLS, tlsStats: pr.tls, h2Stats: pr.h2, streams: l.streams}
		if p.Target != "" {
			u, _ := url.Parse(p.Target) // checked by withDefaults
			cc.https, cc.host = u.Scheme == "https", u.Hostname()
		}
		cc = p.targetsClient(cc)
		var client *http.Client
		if p.HTTP2 {
			var transport *http2.Transport
			client, transport = l.tr.newH2Client(cc, cc.host)
			pr.closeIdle = transport.CloseIdleConnections
		} else {
			var transport *http.Transport
			client, transport = l.tr.newClient(cc)
			pr.closeIdle = transport.CloseIdleConnections
		}
		client.Timeout = p.Timeout
		maxWorkers := uint64(p.Rate) * uint64(p.Timeout/time.Second+1) * 2
		workers := min(10, maxWorkers)
		if p.Rate == 0 {
			workers, maxWorkers = p.Workers, p.Workers
		}
		pr.attacker = vegeta.NewAttacker(
			vegeta.Client(client), // first: the other options must not replace its transport
			vegeta.MaxBody(0),
			vegeta.Workers(workers),
			vegeta.MaxWorkers(maxWorkers),
		)
		l.profiles = append(l.profiles, pr)
	}
	for _, pr := range l.profiles {
		pbase := base
		if pr.p.Target != "" {
			pbase, _ = checkTarget(pr.p.Target, true)
		}
		tgts := []vegeta.Target{{Method: pr.p.Method, URL: pbase + pr.p.Path, Body: pr.p.Body}}
		if len(pr.p.Targets) > 0 {
			tgts = vegetaTargets(pr.p.Targets, pr.p.targetIndexes())
		}
		pacer := boundedPacer{ConstantPacer: vegeta.ConstantPacer{Freq: pr.p.Rate, Per: time.Second}, max: pr.p.maxHits()}
		if pr.p.Rate > 0 {
			pr.interval = time.Second / time.Duration(pr.p.Rate)
		}
		pr.began = time.Now()
		ch := pr.attacker.Attack(vegeta.NewStaticTargeter(tgts...), pacer, pr.p.Duration, pr.p.Name)
		l.fwdWG.Add(1)
		go l.forward(pr, ch)
	}
	go func() {
		l.fwdWG.Wait()
		close(l.results)
	}()

	l.base, l.dlCtx, l.dir = base, dlCtx, dir
	url := slow.url(base)
	for range slow.Count {
		l.dlWG.Add(1)
		go l.download(dlCtx, int(l.dlNext.Add(1)-1), url)
	}

	if l.ws.Count > 0 {
		wbase := base
		if l.ws.Target != "" {
			wbase, _ = checkTarget(l.ws.Target, false)
		}
		wsURL := "ws" + strings.TrimPrefix(wbase, "http") + l.ws.Path
		out := newJSONL(l.wsFile)
		for i := range l.ws.Count {
			l.wsWG.Add(1)
			go func() {
				defer l.wsWG.Done()
				l.tr.wsSession(i, l.ws, wsURL, clock, l.trafStop, runCtx, out, &l.wsStats)
			}()
		}
	}
	if l.up.Count > 0 {
		l.startUploads(runCtx, base)
	}

	l.unhook = context.AfterFunc(ctx, l.abort)
	return l, nil
}

// startUploads starts the uploaders: each sends one upload after the other
// until StopAttack (the upload in flight then finishes) or the end of ctx.
func (l *Load) startUploads(ctx context.Context, base string) {
	u := l.up
	cc := clientConfig{profile: u.Name, keepAlive: u.KeepAlive, stop: ctx, tls: u.TLS}
	if u.Target != "" {
		pu, _ := url.Parse(u.Target)
		base, _ = checkTarget(u.Target, true)
		cc.https, cc.host = pu.Scheme == "https", pu.Hostname()
	}
	l.upTLS = &tlsStats{}
	cc.tlsStats = l.upTLS
	client, transport := l.tr.newClient(cc)
	client.Timeout = u.Timeout
	body, sum := uploadBody(u.Bytes)
	out := newJSONL(l.upFile)
	target := base + u.Path
	for range u.Count {
		l.upWG.Add(1)
		go func() {
			defer l.upWG.Done()
			defer transport.CloseIdleConnections()
			for {
				select {
				case <-l.trafStop:
					return
				case <-ctx.Done():
					return
				default:
				}
				rec := UploadRecord{ID: int(l.upNext.Add(1) - 1), Profile: u.Name, StartMs: l.clock.Now(), Bytes: u.Bytes}
				l.upStats.started.Add(1)
				upload(ctx, client, u, target, body, sum, &rec)
				rec.EndMs = l.clock.Now()
				l.upStats.sent.Add(rec.Sent)
				switch rec.Outcome {
				case UploadOK:
					l.upStats.ok.Add(1)
				case UploadCancelled:
					l.upStats.cancelled.Add(1)
				default:
					l.upStats.failed.Add(1)
				}
				out.Put(rec)
				if rec.Outcome == UploadFailed {
					select {
					case <-time.After(uploadFailurePause):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
}

// boundedPacer is vegeta's constant pacer with a cap on the number of hits.
type boundedPacer struct {
	vegeta.ConstantPacer
	max uint64
}

func (p boundedPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= p.max {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// abort is the end of the run's context: stop everything now.
func (l *Load) abort() {
	for _, pr := range l.profiles {
		pr.attacker.Stop()
	}
	l.dlCancel()
}

// forward counts one profile's results and hands them to the writer.
func (l *Load) forward(pr *profileRun, ch <-chan *vegeta.Result) {
	defer l.fwdWG.Done()
	for r := range ch {
		if pr.interval > 0 {
			l.obs.hit(pr.began.Add(time.Duration(r.Seq+1)*pr.interval), r.Timestamp)
		}
		pr.add(l.clock, r)
		prepare(l.clock, r)
		l.results <- r
	}
}

func (pr *profileRun) add(clock Clock, r *vegeta.Result) {
	ns := int64(r.Timestamp.Sub(clock.start))
	if pr.requests.Add(1) == 1 {
		pr.firstNs.Store(ns)
	}
	pr.lastNs.Store(ns)
	switch {
	case Succeeded(r):
		pr.ok.Add(1)
	case Cancelled(r.Error):
		pr.cancelled.Add(1)
	default:
		pr.failed.Add(1)
	}
}

// prepare makes a result ready for disk: the run's time base, no body, no
// headers (they would dominate the file).
func prepare(clock Clock, r *vegeta.Result) {
	r.Timestamp = clock.Stamp(r.Timestamp)
	r.Body = nil
	r.Headers = nil
}

// writeResults is the one goroutine that encodes results.gob.
func (l *Load) writeResults() {
	defer close(l.writerDone)
	enc := vegeta.NewEncoder(l.resFile)
	tick := time.NewTicker(resultsFlushInterval)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-l.results:
			if !ok {
				if err := l.resFile.Flush(); err != nil && l.writeErr == nil {
					l.writeErr = err
				}
				return
			}
			if err := enc.Encode(r); err != nil && l.writeErr == nil {
				l.writeErr = fmt.Errorf("loadgen: encode result: %w", err)
			}
		case <-tick.C:
			l.resFile.Flush()
		}
	}
}

// flushLoop flushes the JSON-lines files until Close.
func (l *Load) flushLoop() {
	defer close(l.flushDone)
	tick := time.NewTicker(resultsFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.connFile.Flush()
			l.dlFile.Flush()
			l.retryFile.Flush()
			l.streamFile.Flush()
			l.wsFile.Flush()
			l.upFile.Flush()
		case <-l.quit:
			return
		}
	}
}

// StopAttack stops the request traffic of every profile, waits for the
// requests in flight (each bounded by its Timeout) and for their results to
// be written; the WebSocket connections wait for the echoes due (Drain) and
// close with 1000; no new upload starts and those in flight finish. The
// downloads go on.
func (l *Load) StopAttack() {
	for _, pr := range l.profiles {
		pr.attacker.Stop()
	}
	l.trafOnce.Do(func() { close(l.trafStop) })
	<-l.writerDone
	l.wsWG.Wait()
	l.upWG.Wait()
}

// WaitDownloads waits for the long downloads to end. When ctx ends first, the
// downloads still running are cancelled (recorded as cut, error "cancelled")
// and ctx's error is returned.
func (l *Load) WaitDownloads(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.dlWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.dlCancel()
		<-done
		return fmt.Errorf("loadgen: wait for downloads: %w", ctx.Err())
	}
}

// StartDownloads starts n more long downloads now, each fetched at
// bytesPerSec (0: the load's rate), so that a scenario can put downloads on
// the workers that serve at a given moment (e.g. the new set after WINCH).
// They are waited for, recorded and counted like the first ones.
func (l *Load) StartDownloads(n int, bytesPerSec int64) error {
	if l.dlCtx.Err() != nil {
		return errors.New("loadgen: start downloads: the load has ended")
	}
	if n < 0 || n > MaxSlow {
		return fmt.Errorf("loadgen: start downloads: count %d: want 0..%d", n, MaxSlow)
	}
	sl := l.slow
	if bytesPerSec > 0 {
		sl.BytesPerSec = bytesPerSec
	}
	url := sl.url(l.base)
	for range n {
		l.dlWG.Add(1)
		go l.download(l.dlCtx, int(l.dlNext.Add(1)-1), url)
	}
	return nil
}

// ReleaseDownloads lets the downloads held at their tail (Slow.HoldTail)
// read it, now and from now on. Safe to call more than once; the error is
// always nil (the load agent's client, which a run drives the same way,
// can fail to reach its agent).
func (l *Load) ReleaseDownloads() error {
	l.dlOnce.Do(func() { close(l.dlRelease) })
	return nil
}

// holdingReader reads a download's body, stopping before its last tail
// bytes until release is closed (or ctx ends: the read then goes on and
// the context's cancellation ends it).
type holdingReader struct {
	r       io.Reader
	ctx     context.Context
	release <-chan struct{}
	at      int64 // bytes read before the hold
	n       int64
	held    float64 // ms held
	now     func() float64
}

func (h *holdingReader) Read(p []byte) (int, error) {
	if h.at > 0 {
		if h.n >= h.at {
			h.wait()
		} else if int64(len(p)) > h.at-h.n {
			p = p[:h.at-h.n]
		}
	}
	k, err := h.r.Read(p)
	h.n += int64(k)
	return k, err
}

func (h *holdingReader) wait() {
	h.at = 0
	select {
	case <-h.release:
		return
	default:
	}
	start := h.now()
	select {
	case <-h.release:
	case <-h.ctx.Done():
	}
	h.held = h.now() - start
}

// download is one long download, checked to the byte.
func (l *Load) download(ctx context.Context, id int, url string) {
	defer l.dlWG.Done()
	l.dlStarted.Add(1)
	rec := DownloadRecord{ID: id, URL: url, StartMs: l.clock.Now(), Expected: l.slow.ExpectedBytes}
	client, transport := l.tr.newClient(clientConfig{profile: SlowProfile, keepAlive: false, stop: ctx})
	client.Timeout = l.slow.Timeout
	defer transport.CloseIdleConnections()

	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set(RequestIDHeader, "slow/"+strconv.Itoa(id))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rec.Status = resp.StatusCode
		rec.ServerPid, _ = strconv.Atoi(resp.Header.Get(PidHeader))
		body := &holdingReader{r: resp.Body, ctx: ctx, release: l.dlRelease, now: l.clock.Now}
		if l.slow.HoldTail > 0 {
			body.at = max(l.slow.ExpectedBytes-l.slow.HoldTail, 1)
		}
		rec.Received, err = io.Copy(io.Discard, body)
		rec.HeldMs = body.held
		return err
	}()
	rec.EndMs = l.clock.Now()
	rec.Completed = err == nil && rec.Status == http.StatusOK && rec.Received == rec.Expected
	switch {
	case rec.Completed:
	case ctx.Err() != nil:
		rec.Error = DownloadCancelled
	case err != nil:
		rec.Error = err.Error()
	case rec.Status != http.StatusOK:
		rec.Error = fmt.Sprintf("status %d", rec.Status)
	default:
		rec.Error = fmt.Sprintf("received %d of %d bytes", rec.Received, rec.Expected)
	}
	switch {
	case rec.Completed:
		l.dlComplete.Add(1)
	case rec.Error == DownloadCancelled:
		l.dlCancelled.Add(1)
	default:
		l.dlCut.Add(1)
	}
	l.downloads.Put(rec)
}

// Snapshot returns the totals so far; safe to call at any time, for progress.
func (l *Load) Snapshot() Summary {
	s := Summary{
		Opened:           l.tr.opened.Load(),
		Connections:      make(map[string]int64, len(outcomeNames)),
		Retried:          l.tr.retriedWritten.Load(),
		RetriedLost:      l.tr.retriedLost.Load(),
		RetriedUnwritten: l.tr.retriedUnwritten.Load(),
		Untracked:        l.tr.untracked.Load(),
		Downloads: DownloadSummary{
			Started:   l.dlStarted.Load(),
			Completed: l.dlComplete.Load(),
			Cut:       l.dlCut.Load(),
			Cancelled: l.dlCancelled.Load(),
		},
	}
	for i, name := range outcomeNames {
		s.Connections[name] = l.tr.outcomes[i].Load()
	}
	s.WebSockets = l.wsStats.summary()
	s.Uploads = l.upStats.summary()
	if l.upTLS != nil {
		s.UploadHandshakes = HandshakeSummary{Full: l.upTLS.full.Load(), Resumed: l.upTLS.resumed.Load(), Failed: l.upTLS.failed.Load()}
	}
	for _, pr := range l.profiles {
		ps := ProfileSummary{Name: pr.p.Name, Requests: pr.requests.Load(), OK: pr.ok.Load(), Failed: pr.failed.Load(),
			Cancelled:   pr.cancelled.Load(),
			RetriedSafe: pr.h2.retriedSafe.Load(), RetriedUnsafe: pr.h2.retriedUnsafe.Load(), UnsafeRetriedOK: pr.h2.retriedUnsafeOK.Load(),
			HandshakesFull: pr.tls.full.Load(), HandshakesResumed: pr.tls.resumed.Load(), HandshakesFailed: pr.tls.failed.Load()}
		if span := time.Duration(pr.lastNs.Load() - pr.firstNs.Load()); ps.Requests > 1 && span > 0 {
			ps.Rate = float64(ps.Requests-1) / span.Seconds()
		}
		s.Profiles = append(s.Profiles, ps)
	}
	return s
}

// Close stops the attack (draining in-flight requests) and cancels the
// downloads still running, records the connections still open as
// open_at_end, then flushes and closes every file. It returns the final
// summary and the first error met writing the files. Calling it again
// returns the same.
func (l *Load) Close() (Summary, error) {
	l.closeOnce.Do(func() {
		l.StopAttack()
		l.dlCancel()
		l.dlWG.Wait()
		l.trWG.Wait()
		l.tr.finish()
		for _, pr := range l.profiles {
			pr.closeIdle()
		}
		l.unhook()
		l.cancelRun()
		close(l.quit)
		<-l.flushDone
		errs := []error{l.writeErr, l.obs.close()}
		files := []*msgFile{l.resFile, l.connFile, l.dlFile, l.retryFile, l.streamFile, l.wsFile, l.upFile}
		if l.trickleFile != nil {
			files = append(files, l.trickleFile)
		}
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		l.summary = l.Snapshot()
		l.closeErr = errors.Join(errs...)
	})
	return l.summary, l.closeErr
}
