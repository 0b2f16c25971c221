package scenarios

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Known losses: what nginx and the kernel are known to lose on a graceful
// path, for a stated reason (docs/findings.md). A zero-drops scenario
// declares them; the verdict passes a run whose every loss fits one, shows
// the loss beside the pass, and fails any other (run --strict fails these
// too).
const (
	KnownLossQueueReset = "reuseport-queue-reset"
	KnownLossCloseRace  = "keepalive-close-race"
)

// knownLossWindow bounds the close race by the load's rate: the requests
// of 200 ms at most. It happens in the instant a worker closes its idle
// connections (docs/findings.md: at most 151 at 1000 req/s through the
// port proxy, 8 at 500 in the namespace); a loss worth more of the load
// than that is an outage, not the race.
const knownLossWindow = 0.2

// listenBacklog is nginx's default listen backlog on Linux (NGX_LISTEN_BACKLOG).
const listenBacklog = 511

// knownLossBound is the bound of a known loss at rate requests per second.
func knownLossBound(rate int) int { return int(math.Ceil(float64(rate) * knownLossWindow)) }

// queueReset is reuseport's loss when a worker exits: each worker owns a
// listening socket, and the connections the kernel queued on it and no
// worker accepted are reset — unless net.ipv4.tcp_migrate_req moves them
// to a socket still listening. The client sees a reset; nginx never logs
// them.
//
// What was queued may have been sent before the step that retires the
// workers (measured with the CPU saturated: 31 of 151 resets sent in the
// 104 ms before the reload's HUP), so the phase before it counts too. The
// bound is what one retired socket's queue can hold, nginx's default listen
// backlog: a larger loss is not this one. Measured here: up to 14 at 500
// req/s on a quiet machine, 151 with both cores saturated.
func queueReset(phases ...string) record.KnownLoss {
	return record.KnownLoss{Name: KnownLossQueueReset, Phases: phases, Classes: []string{record.ClassReset},
		Witness: []string{record.WitnessNever}, Max: listenBacklog,
		Why: "listen … reuseport: the connections queued on the listening socket of a worker that exits, " +
			"not yet accepted, are reset by the kernel (net.ipv4.tcp_migrate_req=0)",
		Remedy: "net.ipv4.tcp_migrate_req=1 moves them to a socket still listening (the reuseport-migrate scenario: 0 lost)"}
}

// closeRace is the keep-alive close race: a worker that shuts down closes
// its idle keep-alive connections (HTTP/2's too), and a request written on
// one at that moment meets the close. net/http replays a GET on a new connection
// (counted as a drop), a POST fails with EOF or a reset; nginx never read
// it.
func closeRace(phases []string) record.KnownLoss {
	return record.KnownLoss{Name: KnownLossCloseRace, Phases: phases, Classes: []string{record.ClassEOF, record.ClassReset},
		Retried: true, Witness: []string{record.WitnessNever},
		Why: "keep-alive: a worker that shuts down closes its idle connections, and a request written on one " +
			"as it closes is never read",
		Remedy: "clients that retry an idempotent request on a new connection; nothing in nginx closes the race"}
}

// shutdownPhases are the phases opened by a step that makes workers shut
// down: WINCH, QUIT, TERM, and a reload's HUP (its old generation exits).
func shutdownPhases(moves []Move) []string {
	var out []string
	for _, m := range moves {
		st := m.Step
		reload := st.Signal == "HUP" && strings.HasPrefix(st.Name, "reload")
		if st.Phase != "" && (st.Signal == "WINCH" || st.Signal == "QUIT" || st.Signal == "TERM" || reload) && !slices.Contains(out, st.Phase) {
			out = append(out, st.Phase)
		}
	}
	return out
}

// keepAliveKinds are the traffic kinds whose client reuses connections to
// nginx. HTTP/2's connections always persist: a draining worker closing
// one met a request it never read (a reset in after-quit, nginx's log:
// never-reached-a-worker; docs/findings.md).
var keepAliveKinds = []string{TrafficHTTP1KeepAlive, TrafficProxy, TrafficHTTP2}

// KeepsConnections tells whether a traffic kind's client reuses its
// connections to nginx: the keep-alive close race is a known loss of it on
// every path that shuts workers down.
func KeepsConnections(kind string) bool { return slices.Contains(keepAliveKinds, kind) }

// knownLosses are the losses a zero-drops scenario declares under this
// load: its path's own, and the close race when the load keeps connections
// alive and the path shuts workers down.
func (p Params) knownLosses(sc Scenario) []record.KnownLoss {
	if sc.Expect != ExpectZeroDrops {
		return nil
	}
	bound := knownLossBound(p.Load.Rate)
	var out []record.KnownLoss
	for _, k := range sc.KnownLosses {
		if k.Max == 0 {
			k.Max = bound
		}
		out = append(out, k)
	}
	keepAlive := false
	for _, k := range p.Load.Kinds() {
		keepAlive = keepAlive || slices.Contains(keepAliveKinds, k)
	}
	if phases := shutdownPhases(sc.Moves); keepAlive && len(phases) > 0 {
		k := closeRace(phases)
		k.Max = bound
		out = append(out, k)
	}
	return out
}

// KnownLossEntry is a known loss as the reference lists it: the loss, and
// which scenarios under which load declare it.
type KnownLossEntry struct {
	Loss  record.KnownLoss
	Where string
	Bound string
}

// KnownLossCatalogue lists every known loss (run --list, docs/reference.md).
func KnownLossCatalogue() []KnownLossEntry {
	bound := fmt.Sprintf("the requests of %.0f ms of `--rate` (%d at the default %d req/s)",
		knownLossWindow*1000, knownLossBound(DefaultLoad.Rate), DefaultLoad.Rate)
	return []KnownLossEntry{
		{queueReset("fewer-workers", "one-worker"), "`reuseport` (net.ipv4.tcp_migrate_req=0), in `one-worker` (the reload down to one worker) " +
			"and `fewer-workers` before it (connections queued before the HUP)", fmt.Sprintf("%d, nginx's default listen backlog", listenBacklog)},
		{closeRace(nil), "every graceful scenario under a keep-alive load (`--keepalive=true`, `--traffic http1-keepalive`, " +
			"`--traffic proxy`, `--traffic http2`), in the phases opened by a step that shuts workers down (WINCH, QUIT, TERM, a reload's HUP)", bound},
	}
}
