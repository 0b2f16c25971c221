package analysis

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// cutShort tells whether the body ended before the length the response
// announced: the server's own admission that it cut it.
func cutShort(e record.ServerEntry) bool {
	n, err := strconv.ParseInt(e.ContentLength, 10, 64)
	return err == nil && e.BodyBytesSent < n
}

// Kill is a KILL of workers during the run: pids, and the span in which
// the signal landed (sent to verified). With Crash, it is a death the plan
// did not cause (Deaths): its pid is not excused.
type Kill struct {
	PIDs         []int
	FromMs, ToMs float64
	Crash        bool
}

// crashed tells whether pid died unplanned in one of kills.
func crashed(pid int, kills []Kill) bool {
	for _, k := range kills {
		if k.Crash && slices.Contains(k.PIDs, pid) {
			return true
		}
	}
	return false
}

// Reconciliation is the client's record held against the server's.
type Reconciliation struct {
	Classes  map[string]int        // client records by class (record.WitnessOK…)
	Drops    []record.Decision     // every failed client record, in the order given
	Unlogged []record.ClientRecord // ok on the client, absent from the log
	Unknown  []record.ServerEntry  // logged under an id the client never sent
	// Unidentified counts log lines with no id: the harness's own probes
	// (readiness, the final state), which the load did not send.
	Unidentified int
}

// Complete tells whether every record of either witness found its match.
func (r Reconciliation) Complete() bool { return len(r.Unlogged) == 0 && len(r.Unknown) == 0 }

// Reconcile holds each client record against the server's log lines with
// its id. A request may have several (net/http and HTTP/2 replay a request
// on another connection with the same header): an ok needs one 2xx among
// them, a failure is judged by the last. A WebSocket is logged (101) when
// its connection ends: one that failed on the client and was logged was
// ended by the server. A failure no worker logged or named is one a
// KILLed worker held when it was in flight across the KILL (nginx writes
// the line when a request ends; a worker killed holding it never does,
// and the master's listening socket keeps the accept queue for the next
// workers): cut by the server, by one of those pids.
func Reconcile(client []record.ClientRecord, server []record.ServerEntry, kills ...Kill) Reconciliation {
	r := Reconciliation{Classes: map[string]int{}}
	byID := make(map[string][]int, len(server))
	for i, e := range server {
		if e.ID == "" {
			r.Unidentified++
			continue
		}
		byID[e.ID] = append(byID[e.ID], i)
	}
	known := make(map[string]bool, len(client))
	for _, c := range client {
		known[c.ID] = true
		entries := byID[c.ID]
		switch c.Outcome {
		case record.ClientReplayed:
			d := decideReplay(c, server, entries, kills)
			r.Classes[d.Class]++
			r.Drops = append(r.Drops, d)
		case record.ClientCancelled:
			r.Classes[record.WitnessCanceled]++
		case record.ClientOK:
			if answered(c, server, entries) {
				r.Classes[record.WitnessOK]++
			} else if len(entries) == 0 && acrossKill(c, kills) {
				r.Classes[record.WitnessAnsweredKilled]++
			} else {
				r.Classes[record.WitnessUnlogged]++
				r.Unlogged = append(r.Unlogged, c)
			}
		default:
			d := decide(c, server, entries, kills)
			r.Classes[d.Class]++
			r.Drops = append(r.Drops, d)
		}
	}
	for _, e := range server {
		if e.ID != "" && !known[e.ID] {
			r.Classes[record.WitnessUnknown]++
			r.Unknown = append(r.Unknown, e)
		}
	}
	return r
}

// acrossKill says whether c was in flight while a KILL landed.
func acrossKill(c record.ClientRecord, kills []Kill) bool {
	for _, k := range kills {
		if c.StartMs <= k.ToMs && c.EndMs >= k.FromMs {
			return true
		}
	}
	return false
}

func answered(c record.ClientRecord, server []record.ServerEntry, entries []int) bool {
	for _, i := range entries {
		e := server[i]
		if e.Status >= 200 && e.Status < 300 || c.Kind == record.KindWebSocket && e.Status == 101 {
			return true
		}
	}
	return false
}

// decide classes one failed client record.
func decide(c record.ClientRecord, server []record.ServerEntry, entries []int, kills []Kill) record.Decision {
	d := record.Decision{ID: c.ID, Kind: c.Kind, Ms: c.Ms}
	if len(entries) == 0 {
		// A worker that named itself in the response headers and never
		// logged the request died holding it: nginx writes the line when
		// the request ends, and a KILLed worker never gets there.
		if c.ServerPid > 0 {
			d.Class, d.PID = record.WitnessCut, c.ServerPid
			if crashed(c.ServerPid, kills) {
				d.Class = record.WitnessCrash
			}
			return d
		}
		// In flight while a worker died: one the plan killed cut it, one
		// that died unplanned lost it in its crash — a KILL excuses only
		// the pids it killed.
		d.Class = record.WitnessNever
		for _, k := range kills {
			if c.StartMs <= k.ToMs && c.EndMs >= k.FromMs {
				if k.Crash {
					d.Class = record.WitnessCrash
				} else if d.Class == record.WitnessNever {
					d.Class = record.WitnessCut
				}
				d.Candidates = append(d.Candidates, k.PIDs...)
			}
		}
		if len(d.Candidates) == 1 {
			d.PID = d.Candidates[0]
		}
		return d
	}
	last := server[entries[0]]
	for _, i := range entries[1:] {
		if server[i].Msec >= last.Msec {
			last = server[i]
		}
	}
	d.PID, d.Status = last.PID, last.Status
	switch {
	case c.Kind == record.KindWebSocket:
		d.Class = record.WitnessCut
	case last.Status == 499 || last.Status == 444 || cutShort(last):
		d.Class = record.WitnessCut
	case last.Status >= 200 && last.Status < 300:
		d.Class = record.WitnessLost
	case c.Status == last.Status:
		d.Class = record.WitnessErrorAns
	default:
		d.Class = record.WitnessCut
	}
	return d
}

// decideReplay classes the first attempt of a replayed request: each
// attempt the server read is a log line, the last the answered replay.
// Fewer lines than attempts: the first never reached a worker (the
// keep-alive close race: nginx closed the connection as the request
// arrived, without reading it). As many: the first was read, and its line
// says how it ended.
func decideReplay(c record.ClientRecord, server []record.ServerEntry, entries []int, kills []Kill) record.Decision {
	first := record.ClientRecord{ID: c.ID, Kind: record.KindReplay, Ms: c.Ms, StartMs: c.StartMs, EndMs: c.EndMs, Outcome: record.ClientFailed}
	if len(entries) < c.Attempts {
		return decide(first, server, nil, kills)
	}
	earliest := entries[0]
	for _, i := range entries[1:] {
		if server[i].Msec < server[earliest].Msec {
			earliest = i
		}
	}
	return decide(first, server, []int{earliest}, kills)
}

// DropsByClass counts decisions by class, in a stable order of classes.
func DropsByClass(ds []record.Decision) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.Class]++
	}
	return out
}

// Generations names every nginx pid the process tables showed: a master's
// workers first seen together are one generation, named by the binary and
// a count ("old-1", "new-1", "old-2" after a HUP brought new workers),
// and a worker seen with its master gone is an orphan from then on.
type Generations struct {
	gen        map[int]string // worker (or master) pid → generation
	master     map[string]int // generation → its master's pid
	binary     map[string]string
	orphanFrom map[int]float64 // worker pid → first moment seen orphaned
	order      []string        // generations in the order they appeared
	since      map[string]float64
}

// NewGenerations reads the samples in the order of their moments.
func NewGenerations(samples []record.ProcessSample) *Generations {
	g := &Generations{gen: map[int]string{}, master: map[string]int{}, binary: map[string]string{}, orphanFrom: map[int]float64{},
		since: map[string]float64{}}
	ss := append([]record.ProcessSample(nil), samples...)
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Ms < ss[j].Ms })
	perBinary := map[string]int{}
	for _, s := range ss {
		masters := map[int]record.FinalProcess{}
		for _, p := range s.Procs {
			if p.Role == "master" {
				masters[p.PID] = p
			}
		}
		fresh := map[int]string{} // master → the generation its new workers of this sample join
		for _, p := range s.Procs {
			if p.Role != "worker" && p.Role != "worker-shutting-down" {
				continue
			}
			if name, seen := g.gen[p.PID]; seen {
				if _, alive := masters[g.master[name]]; !alive || p.PPID != g.master[name] {
					if _, already := g.orphanFrom[p.PID]; !already {
						g.orphanFrom[p.PID] = s.Ms
					}
				}
				continue
			}
			m, ok := masters[p.PPID]
			if !ok {
				continue // an orphan never seen with its master: its generation is unknown
			}
			name, ok := fresh[m.PID]
			if !ok {
				b := m.Binary
				if b == "" || b == "same" {
					b = "unknown"
				}
				perBinary[b]++
				name = b + "-" + strconv.Itoa(perBinary[b])
				fresh[m.PID] = name
				g.master[name], g.binary[name], g.since[name] = m.PID, m.Binary, s.Ms
				g.order = append(g.order, name)
			}
			g.gen[p.PID] = name
		}
	}
	return g
}

// Of names the generation of pid at ms on the run's clock, and whether
// it was an orphan by then (its master seen gone at or before ms).
func (g *Generations) Of(pid int, ms float64) (gen string, orphan bool) {
	name, ok := g.gen[pid]
	if !ok {
		return "unknown", false
	}
	from, seen := g.orphanFrom[pid]
	return name, seen && ms >= from
}

// OfMaster names the generation of master's workers at ms: the last one
// seen under it by then ("unknown" when none was).
func (g *Generations) OfMaster(master int, ms float64) string {
	name := "unknown"
	for _, n := range g.order {
		if g.master[n] == master && (name == "unknown" || g.since[n] <= ms) {
			name = n
		}
	}
	return name
}

// Names lists the generations in the order they appeared.
func (g *Generations) Names() []string { return append([]string(nil), g.order...) }

// Master and Binary describe a generation.
func (g *Generations) Master(name string) int    { return g.master[name] }
func (g *Generations) Binary(name string) string { return g.binary[name] }

// Workers lists a generation's pids.
func (g *Generations) Workers(name string) []int {
	var out []int
	for pid, n := range g.gen {
		if n == name {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// http2 tells whether any of the lines is an HTTP/2 stream's.
func http2(server []record.ServerEntry, lines []int) bool {
	for _, i := range lines {
		if strings.HasPrefix(server[i].Protocol, "HTTP/2") {
			return true
		}
	}
	return false
}

// witnessSlackMs is how far outside the client's span nginx may write a
// line: it logs a request when it ends, just after its last byte left.
const witnessSlackMs = 2000

// Disagreements holds the client's record and nginx's log against each
// other where they must agree, beyond the reconciliation's classes; each
// disagreement is one line naming the two witnesses:
//   - every identified line was written inside the run's window (meta.json's
//     start_wall and the client's records, widened by witnessSlackMs): a
//     line outside it is another run's log;
//   - one line an attempt: an id logged more often than the client gave
//     it connections (1, or a replay's attempts in retries.jsonl); HTTP/2
//     streams are left out (the transport's replays of a stream are in
//     streams.jsonl, which names no request id);
//   - bytes: a request ok on the client whose 2xx line says nginx sent less
//     of its body than its Content-Length, a long download whose bytes
//     received differ from nginx's body bytes sent.
//
// startMs is the run clock's zero in Unix milliseconds, endMs the run's
// last moment on it.
func Disagreements(client []record.ClientRecord, server []record.ServerEntry, attempts map[string]int, startMs, endMs float64) []string {
	byID := map[string][]int{}
	for i, e := range server {
		if e.ID != "" {
			byID[e.ID] = append(byID[e.ID], i)
		}
	}
	lo, hi := 0.0, endMs
	for _, c := range client {
		lo, hi = min(lo, c.StartMs), max(hi, c.EndMs)
	}
	var out []string
	var outside []string
	nOutside := 0
	for _, e := range server {
		if e.ID == "" {
			continue
		}
		if ms := e.Msec*1000 - startMs; ms < lo-witnessSlackMs || ms > hi+witnessSlackMs {
			nOutside++
			if len(outside) < 3 {
				outside = append(outside, fmt.Sprintf("%s at %.0f ms", e.ID, ms))
			}
		}
	}
	if nOutside > 0 {
		out = append(out, fmt.Sprintf("server-log.jsonl and the client's records disagree on when: %d lines were written outside the run's window (%.0f ms to %.0f ms on the clock of meta.json's start_wall): %s%s — the log is not this run's",
			nOutside, lo, hi, strings.Join(outside, ", "), more(nOutside, len(outside))))
	}

	seen := map[string]bool{}
	var over []string
	nOver := 0
	for _, c := range client {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		allowed := max(1, attempts[c.ID])
		if n := len(byID[c.ID]); n > allowed && !http2(server, byID[c.ID]) {
			nOver++
			if len(over) < 3 {
				var pids []string
				for _, i := range byID[c.ID] {
					pids = append(pids, strconv.Itoa(server[i].PID))
				}
				over = append(over, fmt.Sprintf("%s logged %d times (pids %s) for %s", c.ID, n, strings.Join(pids, ", "), words.Plural(allowed, "attempt")))
			}
		}
	}
	if nOver > 0 {
		out = append(out, fmt.Sprintf("server-log.jsonl and the client's records (results.gob, retries.jsonl) disagree on attempts: %d ids logged more often than they were tried, nginx logging one line an attempt: %s%s",
			nOver, strings.Join(over, "; "), more(nOver, len(over))))
	}

	var short []string
	nShort := 0
	for _, c := range client {
		if c.Outcome != record.ClientOK || c.Kind != record.KindRequest && c.Kind != record.KindDownload {
			continue
		}
		var best *record.ServerEntry
		for _, i := range byID[c.ID] {
			if e := &server[i]; e.Status >= 200 && e.Status < 300 && (best == nil || e.BodyBytesSent > best.BodyBytesSent) {
				best = e
			}
		}
		if best == nil {
			continue // absent from the log: the reconciliation says so
		}
		switch {
		case cutShort(*best) && best.BodyBytesSent > 0: // none: a HEAD, whose Content-Length is the GET's
			nShort++
			if len(short) < 3 {
				short = append(short, fmt.Sprintf("%s ok on the client, nginx logged %d of %s body bytes sent", c.ID, best.BodyBytesSent, best.ContentLength))
			}
		case c.Kind == record.KindDownload && best.ContentLength != "" && c.Bytes != best.BodyBytesSent:
			nShort++
			if len(short) < 3 {
				short = append(short, fmt.Sprintf("%s received %d bytes, nginx logged %d body bytes sent", c.ID, c.Bytes, best.BodyBytesSent))
			}
		}
	}
	if nShort > 0 {
		out = append(out, fmt.Sprintf("the client's records and server-log.jsonl disagree on bytes: %d answers the client got whole where nginx's bytes sent say otherwise: %s%s",
			nShort, strings.Join(short, "; "), more(nShort, len(short))))
	}
	return out
}

// PIDDisagreements holds nginx's log against the process tables
// (processes.jsonl, final.json) and the deaths nginx's error log names:
//   - every line's pid is a process the tables saw, or one whose death the
//     error log names (a worker respawned and dead between two tables);
//   - no line is written after its pid was seen gone: a table taken after
//     the pid's last one and without it bounds when it could still log
//     (widened by witnessSlackMs: a table is taken while nginx runs on).
//
// A line the tables cannot place is another nginx's, or a table that is
// not this run's: one of the two witnesses is wrong. startMs is the run
// clock's zero in Unix milliseconds.
func PIDDisagreements(server []record.ServerEntry, samples []record.ProcessSample, deaths []record.Death, startMs float64) []string {
	if len(samples) == 0 {
		return nil // no table: Deaths and the reconciliation say what is missing
	}
	lastSeen := map[int]float64{}
	for _, s := range samples {
		for _, p := range s.Procs {
			lastSeen[p.PID] = max(lastSeen[p.PID], s.Ms)
		}
	}
	goneAt := map[int]float64{}
	for pid, last := range lastSeen {
		for _, s := range samples {
			// final.json's table bears the run's last step or response
			// as its moment, but is taken after the long downloads end:
			// it says who was alive at the end, not when anyone left.
			if s.Ms > last && s.At != "final" {
				goneAt[pid] = s.Ms
				break
			}
		}
	}
	died := map[int]float64{}
	for _, d := range deaths {
		died[d.PID] = max(died[d.PID], d.ToMs)
	}
	var unknown, late []string
	nUnknown, nLate := 0, 0
	unknownPIDs := map[int]bool{}
	for _, e := range server {
		if e.PID <= 0 {
			continue
		}
		ms := e.Msec*1000 - startMs
		_, seen := lastSeen[e.PID]
		diedTo, dead := died[e.PID]
		switch {
		case !seen && !dead:
			nUnknown++
			if !unknownPIDs[e.PID] && len(unknown) < 3 {
				unknown = append(unknown, fmt.Sprintf("pid %d (%s at %.0f ms)", e.PID, lineName(e), ms))
			}
			unknownPIDs[e.PID] = true
		case seen:
			if g, ok := goneAt[e.PID]; ok && ms > g+witnessSlackMs && (!dead || ms > diedTo+witnessSlackMs) {
				nLate++
				if len(late) < 3 {
					late = append(late, fmt.Sprintf("%s by pid %d at %.0f ms, seen gone at %.0f ms", lineName(e), e.PID, ms, g))
				}
			}
		}
	}
	var out []string
	if nUnknown > 0 {
		out = append(out, fmt.Sprintf("server-log.jsonl and the process tables (%s) disagree on who answered: %d lines were logged by %s no table saw and no death in error-log.txt names: %s%s — the log is another nginx's, or the tables are not this run's",
			record.ProcessesFile, nUnknown, words.Plural(len(unknownPIDs), "pid"), strings.Join(unknown, ", "), more(len(unknownPIDs), len(unknown))))
	}
	if nLate > 0 {
		out = append(out, fmt.Sprintf("server-log.jsonl and the process tables (%s) disagree on when: %d lines were logged after the table that saw their pid gone: %s%s",
			record.ProcessesFile, nLate, strings.Join(late, "; "), more(nLate, len(late))))
	}
	return out
}

// lineName names a log line for a reason: its request id, or its request.
func lineName(e record.ServerEntry) string {
	if e.ID != "" {
		return e.ID
	}
	return "a line without an id"
}
