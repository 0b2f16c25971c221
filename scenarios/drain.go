package scenarios

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// stepCost is about what sending and verifying a step takes here under
// the default load (a few execs in the container): measured 1.35 s a step
// for install + USR2 and 1.4 s for WINCH on the default upgrade at 500 req/s.
const stepCost = 1500 * time.Millisecond

// stepExecs is about how many execs' worth of time a step takes: on a host
// whose execs at rest take longer than stepCost/stepExecs (an emulated VM:
// seconds each), a step costs that many of them.
const stepExecs = 10

// stepCostOn is a step's cost on a host whose execs at rest take exec
// (nginx.Node.ExecCost): stepCost, or stepExecs execs where that is more.
func stepCostOn(exec time.Duration) time.Duration { return max(stepCost, stepExecs*exec) }

// Long connections outlast the drain by this much of the planned time to
// its end, and at least drainMarginMin: steps run slower on a busy machine
// than planned, and a download that ends before the drain-ending step is
// sent proves nothing of the drain (analysis.NothingProvesDrain).
const (
	drainMarginFraction = 0.5
	drainMarginMin      = 3 * time.Second
)

// drainSignals start a drain of the workers that hold the long connections.
var drainSignals = map[string]bool{"WINCH": true, "HUP": true, "QUIT": true, "TERM": true}

// drainWindow finds the move that starts the drain (the first WINCH, HUP,
// QUIT or TERM) and the one that ends it (the first one from there that
// waits for a set of workers to go: a QUIT or TERM to a master, or the
// wait for the old generation). -1, -1 when the scenario has none (KILL, a
// USR2 that must fail, a reload nginx rejects).
func drainWindow(moves []Move) (start, end int) {
	start, end = -1, -1
	for i, m := range moves {
		if start < 0 && drainSignals[m.Step.Signal] && !m.ExpectFail {
			start = i
		}
		if start >= 0 && i > start && (m.Step.Signal == "QUIT" || m.Step.Signal == "TERM" || m.Step.Name == nginx.OldGenerationDrainedStep) {
			return start, i
		}
	}
	return -1, -1
}

// slowSpan is how long the long downloads last. With a drain, from the
// load's start to the planned sending of the drain-ending step, plus the
// margin: they are in flight when the drain starts and when its end is
// sent, and the end's verification (the old master's exit) waits for them.
// Without one, across every step to half-way through the last audit; a
// scenario that cuts them (SlowOutlasts) makes them last three times that.
func slowSpan(sc Scenario, steady time.Duration) time.Duration {
	return slowSpanOn(sc, steady, stepCost, defaultShutdownTimeout)
}

// slowSpanOn is slowSpan with a step's cost measured on this host and the
// run's config's worker_shutdown_timeout (0: none). A slow host stretches
// the long downloads, but never past what that timeout lets a drain hold
// them, counted from the
// earliest the drain can start (steady and the audits before it, steps
// taking no time): a busy host's execs at rest are slow while its steps
// may run as fast as ever, and downloads planned past that timeout are cut
// by the harness's own plan (measured beside a busy core: reload-workers'
// downloads planned at 23.5 s, cut at 22.4 s, 20 s after the first HUP).
// Where the drain then outlasts them, the run says so (an error), never a
// loss. The span a quiet host plans is never shortened.
func slowSpanOn(sc Scenario, steady, cost, shutdownTimeout time.Duration) time.Duration {
	span := plannedSlowSpan(sc, steady, cost)
	start, end := drainWindow(sc.Moves)
	if cost <= stepCost || end < 0 || shutdownTimeout <= 0 {
		return span
	}
	earliest := steady
	for _, m := range sc.Moves[:start] {
		earliest += m.Audit
	}
	limit := earliest + shutdownTimeout - shutdownMargin
	return min(span, max(plannedSlowSpan(sc, steady, stepCost), limit))
}

// shutdownMargin keeps the long downloads' planned end this far inside
// the shutdown timeout (a rate-limited download ends a little late).
const shutdownMargin = 2 * time.Second

// defaultShutdownTimeout is the default config's worker_shutdown_timeout
// (0 when it sets none).
var defaultShutdownTimeout = shutdownTimeoutOf([]byte(nginx.DefaultConfig))

var shutdownTimeoutRe = regexp.MustCompile(`(?m)^\s*worker_shutdown_timeout\s+(\d+)s;`)

// shutdownTimeoutOf is a config's worker_shutdown_timeout in whole seconds
// (0 when it sets none).
func shutdownTimeoutOf(conf []byte) time.Duration {
	m := shutdownTimeoutRe.FindSubmatch(conf)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return time.Duration(n) * time.Second
}

// shutdownTimeout is the worker_shutdown_timeout of the config the run's
// nodes get: --config's, else the default config's (a tree's main file
// is read as the tree places it).
func (p Params) shutdownTimeout() time.Duration {
	switch {
	case p.Site != nil && p.Site.Tree != nil:
		return shutdownTimeoutOf(p.Site.Tree.Main())
	case p.Config != nil:
		return shutdownTimeoutOf(p.Config)
	}
	return defaultShutdownTimeout
}

// plannedSlowSpan is the long downloads' span for steps of the given cost.
func plannedSlowSpan(sc Scenario, steady, stepCost time.Duration) time.Duration {
	_, end := drainWindow(sc.Moves)
	span := steady
	if end >= 0 {
		for _, m := range sc.Moves[:end] {
			span += stepCost + m.Audit
		}
		return span + max(drainMarginMin, time.Duration(float64(span)*drainMarginFraction))
	}
	for i, m := range sc.Moves {
		span += stepCost
		if i < len(sc.Moves)-1 {
			span += m.Audit
		} else {
			span += m.Audit / 2
		}
	}
	if sc.SlowOutlasts {
		span *= 3
	}
	return span
}

// holdTail is how much of a long download waits for the drain-ending step
// when the steps run slower than planned: the download reads the rest of
// the file at its planned pace, then stops until the step is sent, so
// that it is in flight then however slow the host; after it, nginx sends
// what it still holds of the tail at the planned pace. A quarter of the file
// (8 MiB): the plan puts the step at two thirds of the download, so a
// download holds only when the steps run an eighth or more behind plan;
// and on loopback the server's send buffer takes up to 4 MiB of what the
// client does not read, which leaves nginx at least 3.8 MiB to send (the
// client's receive buffer is fixed at 64 KiB). Where the buffers take it
// all after all, nginx's log shows the download ended before the step and
// the run says nothing proves the drain (analysis.NothingProvesDrain).
const holdTail = loadgen.DefaultSlowBytes / 4

// downloadHold releases a run's held long downloads once: before the
// drain-ending step is sent, or while the drain is still inside the
// config's worker_shutdown_timeout, whichever comes first (a download
// held past that timeout would be cut by the config, not by nginx's
// upgrade), or when the steps end.
type downloadHold struct {
	load  loadControl
	held  bool
	once  sync.Once
	mu    sync.Mutex
	timer *time.Timer
	e     error
}

// release lets the downloads read their tail; true the first time, when
// they were held.
func (h *downloadHold) release() bool {
	first := false
	h.once.Do(func() {
		if !h.held {
			return
		}
		first = true
		if err := h.load.ReleaseDownloads(); err != nil {
			h.mu.Lock()
			h.e = fmt.Errorf("release the held long downloads: %w", err)
			h.mu.Unlock()
		}
	})
	return first
}

// releaseAfter releases the downloads in time for their tail to be sent
// (tail: how long it takes at their rate: nginx's limit_rate does not catch
// up after a pause) shutdownMargin before the config's
// worker_shutdown_timeout (0: none) runs out, counted from the drain's
// start (sent).
func (h *downloadHold) releaseAfter(sent time.Time, shutdownTimeout, tail time.Duration) {
	if !h.held || shutdownTimeout <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timer = time.AfterFunc(max(time.Until(sent.Add(shutdownTimeout-shutdownMargin-tail)), 0), func() { h.release() })
}

// tailTime is how long a download's held tail takes at bytesPerSec.
func tailTime(tail, bytesPerSec int64) time.Duration {
	if bytesPerSec <= 0 {
		return 0
	}
	return time.Duration(float64(tail) / float64(bytesPerSec) * float64(time.Second))
}

// stop stops the timer and releases the downloads (the run ended early).
func (h *downloadHold) stop() {
	h.mu.Lock()
	if h.timer != nil {
		h.timer.Stop()
	}
	h.mu.Unlock()
	h.release()
}

func (h *downloadHold) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.e
}
