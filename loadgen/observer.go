package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// ObserverFile holds the observer's health, one ObserverRecord per window of
// the run (ObserverWindow), streamed as the run goes: how late the load sent
// what it had scheduled, how late the Go runtime woke a sleeping goroutine,
// and how long a control probe that touches neither nginx nor anything a
// fault strikes waited. A stall is nginx's only where these say the
// observer could see (reports: the stall rule).
const ObserverFile = "observer.jsonl"

// The observer's grid and instruments.
const (
	// ObserverWindow is the grid of the record: the silent windows' grid.
	ObserverWindow = 100 * time.Millisecond
	// ProbeInterval is how often the control probe asks the harness's own
	// responder on the host's 127.0.0.1.
	ProbeInterval = 20 * time.Millisecond
	// ProbeTimeout bounds one probe: past it the probe is missed.
	ProbeTimeout = time.Second
	// HiccupInterval is the hiccup meter's sleep: what it records is the
	// overshoot of that sleep (jHiccup's measure of the runtime's and the
	// machine's scheduling latency).
	HiccupInterval = time.Millisecond
)

// ObserverRecord is one window of ObserverFile. Each measure is the worst
// the window saw, in milliseconds. A window is written once every hit due in
// it had its result (the requests' timeout after its end, plus a second); a
// measure that arrives later still (a hit sent later than that) is written as
// a supplement line for the same window: a reader takes the worst of a
// window's lines and adds their counts.
type ObserverRecord struct {
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	// LateMs is the pacer's lateness: the most any hit due in the window
	// (vegeta's constant pacer: the i-th hit of an attack is due at its
	// start + (i+1)/rate) was sent after its due time. Hits counts them.
	LateMs float64 `json:"late_ms"`
	Hits   int     `json:"hits"`
	// HiccupMs is the longest the hiccup meter overslept its sleep, at any
	// moment of the window (an oversleep that spans windows counts in each,
	// as far as it had gone by the window's end).
	HiccupMs float64 `json:"hiccup_ms"`
	// ProbeMs is the longest a control probe had been waiting, counted from
	// the moment it was due (a probe sent late waited from its due time), at
	// any moment of the window; Probes counts the probes due in it that were
	// answered, ProbeMissed those that failed or were not answered within
	// ProbeTimeout.
	ProbeMs     float64 `json:"probe_ms"`
	Probes      int     `json:"probes"`
	ProbeMissed int     `json:"probe_missed"`
	// NginxLateMs is nginx's side (the heartbeat in nginx's container,
	// HeartbeatMain): the most its ticks had run late at any moment of the
	// window; NginxTicks counts its ticks due in the window. Both are
	// written, as supplement lines, once the heartbeat is read back at the
	// end of the run: a window without them had no heartbeat.
	NginxLateMs float64 `json:"nginx_late_ms,omitempty"`
	NginxTicks  int     `json:"nginx_ticks,omitempty"`
	// NginxRunqMs and NginxCPUMs are nginx's processes in the window, as
	// the heartbeat read them each tick (HeartbeatTick): the sum over its
	// ticks of the most any one of them waited on a run queue, and the CPU
	// time they ran together; NginxCPUs the CPUs they had. A tick's
	// reading counts in the window it ran in.
	NginxRunqMs float64 `json:"nginx_runq_ms,omitempty"`
	NginxCPUMs  float64 `json:"nginx_cpu_ms,omitempty"`
	NginxCPUs   int     `json:"nginx_cpus,omitempty"`
	// Supplement marks a line for a window already written.
	Supplement bool `json:"supplement,omitempty"`
}

// observer measures the observer's health while a load runs and streams it
// to ObserverFile.
type observer struct {
	clock Clock
	file  *msgFile
	out   *jsonl
	hold  time.Duration // how long after its end a window is written

	mu      sync.Mutex
	windows map[int64]*ObserverRecord // not yet written
	late    map[int64]*ObserverRecord // supplements for windows written
	written int64                     // windows below this index are written

	srv      *http.Server
	ln       net.Listener
	probeURL string
	client   *http.Client
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	srvErr   error
}

// startObserver starts the responder on 127.0.0.1 of this process (on a
// unix socket when probeSocket is set), the control probe, the hiccup
// meter and the writer of dir/ObserverFile.
func startObserver(clock Clock, dir string, hold time.Duration, probeSocket string) (*observer, error) {
	f, err := createMsgFile(dir, ObserverFile)
	if err != nil {
		return nil, err
	}
	network, addr := "tcp", "127.0.0.1:0"
	if probeSocket != "" {
		network, addr = "unix", probeSocket
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("loadgen: observer: the control probe's responder: %w", err)
	}
	o := &observer{clock: clock, file: f, out: newJSONL(f), hold: hold,
		windows: map[int64]*ObserverRecord{}, late: map[int64]*ObserverRecord{},
		ln: ln, probeURL: "http://" + ln.Addr().String() + "/"}
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: ProbeTimeout}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	if probeSocket != "" {
		o.probeURL = "http://control-probe/"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", probeSocket)
		}
	}
	o.client = &http.Client{Transport: tr, Timeout: ProbeTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	o.wg.Add(4)
	go func() {
		defer o.wg.Done()
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.mu.Lock()
			o.srvErr = fmt.Errorf("loadgen: observer: the control probe's responder: %w", err)
			o.mu.Unlock()
		}
	}()
	go func() { defer o.wg.Done(); o.probe(ctx) }()
	go func() { defer o.wg.Done(); o.hiccups(ctx) }()
	go func() { defer o.wg.Done(); o.flushLoop(ctx) }()
	return o, nil
}

func windowOf(ms float64) int64 {
	return int64(math.Floor(ms / float64(ObserverWindow.Milliseconds())))
}

// at returns the record of window k, to be updated under o.mu: a
// supplement when k is written already.
func (o *observer) at(k int64) *ObserverRecord {
	m := o.windows
	if k < o.written {
		m = o.late
	}
	r := m[k]
	if r == nil {
		w := float64(ObserverWindow.Milliseconds())
		r = &ObserverRecord{StartMs: float64(k) * w, EndMs: float64(k+1) * w, Supplement: k < o.written}
		m[k] = r
	}
	return r
}

// spread records a wait from fromMs to toMs in every window it spans, as
// far as it had gone by each window's end.
func (o *observer) spread(fromMs, toMs float64, set func(r *ObserverRecord, ms float64)) {
	if toMs <= fromMs {
		return
	}
	w := float64(ObserverWindow.Milliseconds())
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := windowOf(fromMs); k <= windowOf(toMs); k++ {
		end := math.Min(toMs, float64(k+1)*w)
		if end > fromMs {
			set(o.at(k), end-fromMs)
		}
	}
}

// hit records the lateness of one hit: due is when the pacer had it due,
// sent when vegeta stamped it.
func (o *observer) hit(due, sent time.Time) {
	late := math.Max(0, float64(sent.Sub(due))/float64(time.Millisecond))
	o.mu.Lock()
	r := o.at(windowOf(o.clock.Ms(due)))
	r.LateMs = math.Max(r.LateMs, round3ms(late))
	r.Hits++
	o.mu.Unlock()
}

// probe asks the responder every ProbeInterval; a probe's wait counts from
// its due time, so a probe the machine sent late shows the lateness too
// (wrk2's correction of coordinated omission).
func (o *observer) probe(ctx context.Context) {
	next := time.Now()
	for {
		if !sleepUntil(ctx, next) {
			return
		}
		due := next
		// Slots that passed while the previous probe waited are not sent:
		// its wait already covers them.
		now := time.Now()
		for next = next.Add(ProbeInterval); !next.After(now); next = next.Add(ProbeInterval) {
		}
		err := o.ask(ctx)
		end := time.Now()
		if ctx.Err() != nil {
			return
		}
		dueMs, endMs := o.clock.Ms(due), o.clock.Ms(end)
		o.spread(dueMs, endMs, func(r *ObserverRecord, ms float64) { r.ProbeMs = math.Max(r.ProbeMs, round3ms(ms)) })
		o.mu.Lock()
		r := o.at(windowOf(dueMs))
		if err != nil {
			r.ProbeMissed++
		} else {
			r.Probes++
		}
		o.mu.Unlock()
	}
}

func (o *observer) ask(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.probeURL, nil)
	if err != nil {
		return err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// hiccups sleeps HiccupInterval again and again and records by how much
// each sleep overshot.
func (o *observer) hiccups(ctx context.Context) {
	t := time.NewTimer(HiccupInterval)
	defer t.Stop()
	for {
		start := time.Now()
		t.Reset(HiccupInterval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		woke := time.Now()
		due := start.Add(HiccupInterval)
		if woke.Sub(due) < time.Millisecond {
			// Below the timer's own resolution: nothing to record, and
			// cheap (a thousand wake-ups a second).
			continue
		}
		o.spread(o.clock.Ms(due), o.clock.Ms(woke), func(r *ObserverRecord, ms float64) { r.HiccupMs = math.Max(r.HiccupMs, round3ms(ms)) })
	}
}

// flushLoop writes each window once it is hold past its end, every window
// of the grid in order (a window with nothing measured is written too), and
// the supplements.
func (o *observer) flushLoop(ctx context.Context) {
	tick := time.NewTicker(ObserverWindow)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			o.flush(windowOf(o.clock.Ms(time.Now().Add(-o.hold))))
			o.file.Flush()
		}
	}
}

// flush writes the windows below index upTo and the supplements waiting.
func (o *observer) flush(upTo int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for ; o.written < upTo; o.written++ {
		r := o.windows[o.written]
		if r == nil {
			w := float64(ObserverWindow.Milliseconds())
			r = &ObserverRecord{StartMs: float64(o.written) * w, EndMs: float64(o.written+1) * w}
		}
		delete(o.windows, o.written)
		o.out.Put(r)
	}
	for k, r := range o.late {
		o.out.Put(r)
		delete(o.late, k)
	}
}

// close stops the instruments, writes every window up to now and closes
// the file: its error is the run's (an observer that could not write its
// record leaves the stalls unjudgeable).
func (o *observer) close() error {
	o.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	o.srv.Shutdown(sctx)
	o.client.CloseIdleConnections()
	o.wg.Wait()
	o.flush(windowOf(o.clock.Now()) + 1)
	return errors.Join(o.srvErr, o.file.Close())
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func round3ms(ms float64) float64 { return math.Round(ms*1000) / 1000 }
