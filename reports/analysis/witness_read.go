package analysis

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// MaxWitnessDrops bounds the drops listed one by one; more are counted.
const (
	MaxWitnessDrops = 500
	maxWitnessIDs   = 20
)

// witnessAcc gathers the client's records while the others are read.
type witnessAcc struct {
	clients []record.ClientRecord
	// attempts are the connections each replayed request was given
	// (retries.jsonl, every line): nginx logs at most one line an attempt.
	attempts map[string]int
}

func (w *witnessAcc) addResult(id string, ms, endMs float64, outcome string, status int, bytes int64) {
	w.clients = append(w.clients, record.ClientRecord{ID: id, Kind: record.KindRequest, Ms: ms, StartMs: ms, EndMs: endMs, Outcome: outcome, Status: status, Bytes: bytes})
}

// readWitnessClients adds the long downloads, uploads and WebSockets to
// the client's records (the requests came from results.gob).
func (w *witnessAcc) readSideClients(dir string, meta *record.Meta, problem func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }
	ignoreMissing := func(err error) {
		if err != nil && !errors.Is(err, record.ErrMissing) {
			problem("%v", err)
		}
	}
	ignoreMissing(record.ReadJSONL(path(loadgen.DownloadsFile), func(d *loadgen.DownloadRecord) {
		expected := d.Expected
		if expected == 0 {
			expected = meta.SlowBytes
		}
		c := record.ClientRecord{ID: "slow/" + strconv.Itoa(d.ID), Kind: record.KindDownload, Ms: d.EndMs, StartMs: d.StartMs, EndMs: d.EndMs, Status: d.Status, ServerPid: d.ServerPid, Outcome: record.ClientFailed,
			Bytes: d.Received}
		switch {
		case d.Completed && d.Received >= expected:
			c.Outcome = record.ClientOK
		case d.Error == loadgen.DownloadCancelled:
			c.Outcome = record.ClientCancelled
		}
		w.clients = append(w.clients, c)
	}))
	// A replay whose request had been written and whose replay was
	// answered is a drop (readSideRecords counts it): its first attempt
	// is reconciled on its own.
	ignoreMissing(record.ReadJSONL(path(record.RetriesFile), func(r *record.RetryRecord) {
		if r.ID != "" {
			if w.attempts == nil {
				w.attempts = map[string]int{}
			}
			w.attempts[r.ID] = max(w.attempts[r.ID], r.Attempts)
		}
		if r.ID == "" || !r.Written || !r.OK {
			return
		}
		w.clients = append(w.clients, record.ClientRecord{ID: r.ID, Kind: record.KindReplay, Ms: r.Ms, StartMs: r.Ms, EndMs: r.EndMs,
			Outcome: record.ClientReplayed, Attempts: r.Attempts})
	}))
	ignoreMissing(record.ReadJSONL(path(loadgen.UploadsFile), func(u *loadgen.UploadRecord) {
		c := record.ClientRecord{ID: "upload/" + strconv.Itoa(u.ID), Kind: record.KindUpload, Ms: u.EndMs, StartMs: u.StartMs, EndMs: u.EndMs, Status: u.Status, ServerPid: u.ServerPid, Outcome: record.ClientFailed}
		switch u.Outcome {
		case loadgen.UploadOK:
			c.Outcome = record.ClientOK
		case loadgen.UploadCancelled:
			c.Outcome = record.ClientCancelled
		}
		w.clients = append(w.clients, c)
	}))
	ignoreMissing(record.ReadJSONL(path(loadgen.WebSocketsFile), func(r *loadgen.WebSocketRecord) {
		c := record.ClientRecord{ID: "ws/" + strconv.Itoa(r.ID), Kind: record.KindWebSocket, Ms: r.EndMs, StartMs: r.StartMs, EndMs: r.EndMs, ServerPid: r.ServerPid, Outcome: record.ClientOK}
		if r.ServerPid > 0 {
			c.Status = 101
		}
		switch {
		case r.Ended == loadgen.WSEndedCancelled:
			c.Outcome = record.ClientCancelled
		case r.Drop || r.Lost > 0 || r.Mismatched > 0:
			c.Outcome = record.ClientFailed
		}
		w.clients = append(w.clients, c)
	}))
}

// applyWitness reconciles the two records and puts the outcome in s: the
// Witness section, each phase's answers by generation, the timeline's
// bands. Called once the phases and the timeline are final. Required: the
// run kept nginx's log, and a missing witness.json is a lost record
// (judge.WitnessRequired says so), not a witness never configured.
//
// endMs is end.json's end_ms (0: none); samples are the process tables
// (ReadSamples); s.Deaths are already
// found: a failure held by a process that died unplanned is lost in its
// crash.
func applyWitness(dir string, s *record.Scenario, w *witnessAcc, start time.Time, endMs float64, required bool, samples []record.ProcessSample,
	tables bool, problem func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }
	var read record.WitnessRead
	if err := record.ReadJSON(path(record.WitnessFile), &read); err != nil {
		if errors.Is(err, record.ErrMissing) && required {
			s.Witness = &record.Witness{Note: "the run kept nginx's log of the requests, but " + record.WitnessFile + " (what reading it back found) is missing: the verdict cannot rest on the client's record alone"}
			return
		}
		if errors.Is(err, record.ErrMissing) {
			s.Witness = &record.Witness{Note: "nginx kept no record of the requests (a user's configuration without --server-log): the verdict rests on the client's record alone"}
			return
		}
		problem("%v", err)
		return
	}
	wit := &record.Witness{Present: true, Read: &read, Classes: map[string]int{}, Drops: []record.WitnessDrop{}, Unlogged: []string{}, Unknown: []string{}, Generations: []record.GenerationRow{}}
	s.Witness = wit
	if read.Error != "" {
		problem("the server's log could not be read back: %s", read.Error)
		return
	}
	if read.SizeBytes > read.ReadBytes+4096 {
		problem("the server's log holds %d bytes, %d were read back (the bound): the second witness is incomplete", read.SizeBytes, read.ReadBytes)
	}
	var server []record.ServerEntry
	if err := record.ReadJSONL(path(record.ServerLogFile), func(e *record.ServerEntry) { server = append(server, *e) }); err != nil {
		problem("%v", err)
		return
	}
	startMs := float64(start.UnixNano()) / 1e6
	nginxEnds(s.LongConnections, server, startMs)
	gens := NewGenerations(samples)
	r := Reconcile(w.clients, server, append(CrashWindows(s.Deaths), KillSpans(s)...)...)
	for _, d := range Disagreements(w.clients, server, w.attempts, startMs, max(runEnd(s), endMs)) {
		problem("%s", d)
	}
	if tables {
		for _, d := range PIDDisagreements(server, samples, s.Deaths, float64(start.UnixNano())/1e6) {
			problem("%s", d)
		}
	}
	wit.Requests, wit.Logged, wit.Unidentified, wit.Classes = len(w.clients), len(server), r.Unidentified, r.Classes
	wit.Complete = r.Complete()
	wit.UnloggedCount, wit.UnknownCount = len(r.Unlogged), len(r.Unknown)
	for i, c := range r.Unlogged {
		if i < maxWitnessIDs {
			wit.Unlogged = append(wit.Unlogged, c.ID)
		}
	}
	for i, e := range r.Unknown {
		if i < maxWitnessIDs {
			wit.Unknown = append(wit.Unknown, e.ID)
		}
	}
	if !wit.Complete {
		problem("%s", incompleteReason(wit, len(server)-r.Unidentified))
	}
	phaseOf := func(ms float64) int {
		i := sort.Search(len(s.Phases), func(i int) bool { return s.Phases[i].StartMs > ms }) - 1
		return max(i, 0)
	}
	for _, d := range r.Drops {
		wit.DropsCount++
		if len(wit.Drops) >= MaxWitnessDrops {
			continue
		}
		wd := record.WitnessDrop{Decision: d}
		if len(s.Phases) > 0 {
			wd.Phase = s.Phases[phaseOf(d.Ms)].Name
		}
		if d.PID > 0 {
			wd.Generation, wd.Orphan = gens.Of(d.PID, d.Ms)
		} else if len(d.Candidates) > 0 {
			wd.Generation, wd.Orphan = gens.Of(d.Candidates[0], d.Ms)
		}
		if wd.Generation == "unknown" && d.Class == record.WitnessCrash {
			// A worker the tables never saw (respawned between two of
			// them): its death names the generation of the master that
			// logged it.
			for _, death := range s.Deaths {
				if (death.PID == d.PID || d.PID == 0 && len(d.Candidates) > 0 && death.PID == d.Candidates[0]) && death.Generation != "" {
					wd.Generation = death.Generation
				}
			}
		}
		wit.Drops = append(wit.Drops, wd)
	}
	// Who served, when: every identified log line by the moment nginx wrote it.
	rows := map[string]*record.GenerationRow{}
	for _, name := range gens.Names() {
		rows[name] = &record.GenerationRow{Name: name, Binary: gens.Binary(name), Master: gens.Master(name), Workers: gens.Workers(name), ByPhase: map[string]int{}}
	}
	var bands map[string][]int
	tl := s.Timeline
	if tl != nil && tl.BucketMs > 0 {
		bands = map[string][]int{}
	}
	for _, e := range server {
		if e.ID == "" {
			continue
		}
		ms := e.Msec*1000 - startMs
		name, orphan := gens.Of(e.PID, ms)
		row := rows[name]
		if row == nil {
			row = &record.GenerationRow{Name: name, Binary: "unknown", Workers: []int{}, ByPhase: map[string]int{}}
			rows[name] = row
		}
		row.Answered++
		if orphan {
			row.Orphaned++
			wit.AnsweredByOrphans++
		}
		if len(s.Phases) > 0 {
			pi := phaseOf(ms)
			row.ByPhase[s.Phases[pi].Name]++
			if s.Phases[pi].ByGeneration == nil {
				s.Phases[pi].ByGeneration = map[string]int{}
			}
			s.Phases[pi].ByGeneration[name]++
			if orphan {
				s.Phases[pi].AnsweredByOrphans++
			}
		}
		if bands != nil {
			// An orphaned generation gets a band of its own: the plot
			// shows when a dead master's workers served.
			band := name
			if orphan {
				band += record.OrphanBand
			}
			if i := int(math.Floor((ms - tl.StartMs) / tl.BucketMs)); i >= 0 && i < len(tl.Requests) {
				if bands[band] == nil {
					bands[band] = make([]int, len(tl.Requests))
				}
				bands[band][i]++
			}
		}
	}
	names := append(gens.Names(), "unknown")
	for _, name := range names {
		row := rows[name]
		if row == nil || name == "unknown" && row.Answered == 0 {
			continue
		}
		if row.Workers == nil {
			row.Workers = []int{}
		}
		wit.Generations = append(wit.Generations, *row)
		for _, band := range []string{name, name + record.OrphanBand} {
			if bands[band] != nil {
				tl.Generations = append(tl.Generations, record.GenBand{Name: band, Answered: bands[band]})
			}
		}
	}
	for _, w := range witnessDropWords(wit) {
		s.Drops = append(s.Drops, w)
	}
}

// KillSpans are the KILLs the plan sent to workers: a KILL step's pids
// from its sending to its verification, and a fault's KILL of a worker
// from the injection's start to its return (records that do not say when
// it started give none). A worker killed holding a request never logs it,
// even one whose answer the client already has.
func KillSpans(s *record.Scenario) []Kill {
	var out []Kill
	for _, st := range s.Steps {
		if st.Signal == "KILL" && len(st.PIDs) > 0 {
			to := st.VerifiedMs
			if !st.Verified {
				to = st.SentMs + 1000
			}
			out = append(out, Kill{PIDs: st.PIDs, FromMs: st.SentMs, ToMs: to})
		}
	}
	for _, f := range s.Faults {
		if f.StartMs <= 0 || f.Error != "" {
			continue
		}
		for _, m := range faultSignal.FindAllStringSubmatch(f.Outcome, -1) {
			if m[1] != "KILL" || !strings.Contains(m[0], "worker") {
				continue
			}
			if pid, err := strconv.Atoi(m[2]); err == nil {
				out = append(out, Kill{PIDs: []int{pid}, FromMs: f.StartMs, ToMs: f.InjectedMs})
			}
		}
	}
	return out
}

// incompleteReason says why the witness does not hold, naming the first
// ids of either kind.
func incompleteReason(w *record.Witness, identified int) string {
	var parts []string
	if w.UnloggedCount > 0 {
		parts = append(parts, fmt.Sprintf("%d requests ok on the client are absent from nginx's log (%s%s)",
			w.UnloggedCount, strings.Join(w.Unlogged, ", "), more(w.UnloggedCount, len(w.Unlogged))))
	}
	if w.UnknownCount > 0 {
		parts = append(parts, fmt.Sprintf("%d lines of nginx's log carry ids the client never sent (%s%s)",
			w.UnknownCount, strings.Join(w.Unknown, ", "), more(w.UnknownCount, len(w.Unknown))))
	}
	out := "the server's record is incomplete: " + strings.Join(parts, "; ") + ": the second witness does not hold"
	if identified == 0 {
		out += "; nginx logged none of the load's requests: the configuration turns the witness's access_log off or replaces it (an access_log of its own, or off, in the http, server or location blocks that serve the load)"
	}
	return out
}

func more(total, shown int) string {
	if total > shown {
		return fmt.Sprintf(", … %d more", total-shown)
	}
	return ""
}

// witnessDropWords says the reconciled drops in words: per class, the
// pids and generations that held them.
func witnessDropWords(w *record.Witness) []string {
	if w == nil || !w.Present || w.DropsCount == 0 {
		return nil
	}
	type key struct{ class, who string }
	counts := map[key]int{}
	var order []key
	for _, d := range w.Drops {
		who := "no worker known"
		if d.PID == 0 && len(d.Candidates) > 0 {
			who = fmt.Sprintf("held by one of the KILLed pids %v", d.Candidates)
		}
		if d.PID > 0 {
			who = fmt.Sprintf("pid %d (%s", d.PID, d.Generation)
			if d.Orphan {
				who += ", orphaned"
			}
			who += ")"
		}
		k := key{d.Class, who}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("reconciled with nginx's log: %d %s, %s", counts[k], k.class, k.who))
	}
	if w.DropsCount > len(w.Drops) {
		out = append(out, fmt.Sprintf("reconciled with nginx's log: %d more drops not listed", w.DropsCount-len(w.Drops)))
	}
	return out
}
