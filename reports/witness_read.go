package reports

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
)

// Witness is the second witness in report.json: nginx's own record of
// every request, reconciled with the client's (Reconcile), and who served
// when (Generations).
type Witness struct {
	// Present is false when the run had no server log (a user's tree
	// without --server-log, a --config of the user's): the verdict then
	// rests on the client alone, and Note says so.
	Present bool         `json:"present"`
	Note    string       `json:"note,omitempty"`
	Read    *WitnessRead `json:"read,omitempty"`
	// Complete: every client record found its match and every log line
	// its client record. A present witness that is not complete makes the
	// verdict error.
	Complete     bool           `json:"complete"`
	Requests     int            `json:"requests"` // client records reconciled (requests, downloads, uploads, WebSockets)
	Logged       int            `json:"logged"`   // log lines read
	Unidentified int            `json:"unidentified"`
	Classes      map[string]int `json:"classes"`
	// Drops are the failed client records, each with its reconciled class
	// and the pid and generation that held it (the first MaxWitnessDrops).
	Drops      []WitnessDrop `json:"drops"`
	DropsCount int           `json:"drops_count"`
	// Unlogged and Unknown are the ids that make the witness incomplete
	// (the first few of each count).
	Unlogged      []string `json:"unlogged"`
	UnloggedCount int      `json:"unlogged_count"`
	Unknown       []string `json:"unknown"`
	UnknownCount  int      `json:"unknown_count"`
	// Generations are the worker sets the process tables showed, with
	// the requests each answered; AnsweredByOrphans counts requests
	// answered by workers whose master was already gone.
	Generations       []GenerationRow `json:"generations"`
	AnsweredByOrphans int             `json:"answered_by_orphans"`
}

// WitnessDrop is one failed client record, reconciled.
type WitnessDrop struct {
	Decision
	Phase      string `json:"phase"`
	Generation string `json:"generation,omitempty"`
	Orphan     bool   `json:"orphan,omitempty"`
}

// GenerationRow is one generation of workers and what it answered.
type GenerationRow struct {
	Name     string         `json:"name"` // "old-1", "new-1"…
	Binary   string         `json:"binary"`
	Master   int            `json:"master"`
	Workers  []int          `json:"workers"`
	Answered int            `json:"answered"`          // log lines with an id
	Orphaned int            `json:"answered_orphaned"` // of those, answered after its master was gone
	ByPhase  map[string]int `json:"by_phase"`          // answered per phase, by when the line was written
}

// MaxWitnessDrops bounds the drops listed one by one; more are counted.
const (
	MaxWitnessDrops = 500
	maxWitnessIDs   = 20
)

// witnessAcc gathers the client's records while the others are read.
type witnessAcc struct {
	clients []ClientRecord
}

func (w *witnessAcc) addResult(id string, ms, endMs float64, outcome string, status int) {
	w.clients = append(w.clients, ClientRecord{ID: id, Kind: KindRequest, Ms: ms, StartMs: ms, EndMs: endMs, Outcome: outcome, Status: status})
}

// readWitnessClients adds the long downloads, uploads and WebSockets to
// the client's records (the requests came from results.gob).
func (w *witnessAcc) readSideClients(dir string, meta *Meta, problem func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }
	ignoreMissing := func(err error) {
		if err != nil && !errors.Is(err, errMissing) {
			problem("%v", err)
		}
	}
	ignoreMissing(readJSONL(path(loadgen.DownloadsFile), func(d *loadgen.DownloadRecord) {
		expected := d.Expected
		if expected == 0 {
			expected = meta.SlowBytes
		}
		c := ClientRecord{ID: "slow/" + strconv.Itoa(d.ID), Kind: KindDownload, Ms: d.EndMs, StartMs: d.StartMs, EndMs: d.EndMs, Status: d.Status, ServerPid: d.ServerPid, Outcome: ClientFailed}
		switch {
		case d.Completed && d.Received >= expected:
			c.Outcome = ClientOK
		case d.Error == loadgen.DownloadCancelled:
			c.Outcome = ClientCancelled
		}
		w.clients = append(w.clients, c)
	}))
	// A replay whose request had been written and whose replay was
	// answered is a drop (readSideRecords counts it): its first attempt
	// is reconciled on its own.
	ignoreMissing(readJSONL(path(RetriesFile), func(r *RetryRecord) {
		if r.ID == "" || !r.Written || !r.OK {
			return
		}
		w.clients = append(w.clients, ClientRecord{ID: r.ID, Kind: KindReplay, Ms: r.Ms, StartMs: r.Ms, EndMs: r.EndMs,
			Outcome: ClientReplayed, Attempts: r.Attempts})
	}))
	ignoreMissing(readJSONL(path(loadgen.UploadsFile), func(u *loadgen.UploadRecord) {
		c := ClientRecord{ID: "upload/" + strconv.Itoa(u.ID), Kind: KindUpload, Ms: u.EndMs, StartMs: u.StartMs, EndMs: u.EndMs, Status: u.Status, ServerPid: u.ServerPid, Outcome: ClientFailed}
		switch u.Outcome {
		case loadgen.UploadOK:
			c.Outcome = ClientOK
		case loadgen.UploadCancelled:
			c.Outcome = ClientCancelled
		}
		w.clients = append(w.clients, c)
	}))
	ignoreMissing(readJSONL(path(loadgen.WebSocketsFile), func(r *loadgen.WebSocketRecord) {
		c := ClientRecord{ID: "ws/" + strconv.Itoa(r.ID), Kind: KindWebSocket, Ms: r.EndMs, StartMs: r.StartMs, EndMs: r.EndMs, ServerPid: r.ServerPid, Outcome: ClientOK}
		if r.ServerPid > 0 {
			c.Status = 101
		}
		switch {
		case r.Ended == loadgen.WSEndedCancelled:
			c.Outcome = ClientCancelled
		case r.Drop || r.Lost > 0 || r.Mismatched > 0:
			c.Outcome = ClientFailed
		}
		w.clients = append(w.clients, c)
	}))
}

// applyWitness reconciles the two records and puts the outcome in s: the
// Witness section, each phase's answers by generation, the timeline's
// bands. Called once the phases and the timeline are final. Required: the
// run kept nginx's log, and a missing witness.json is a lost record
// (witnessRequired says so), not a witness never configured.
func applyWitness(dir string, s *Scenario, w *witnessAcc, start time.Time, required bool, problem func(string, ...any)) {
	path := func(name string) string { return filepath.Join(dir, name) }
	var read WitnessRead
	if err := readJSON(path(WitnessFile), &read); err != nil {
		if errors.Is(err, errMissing) && required {
			s.Witness = &Witness{Note: "the run kept nginx's log of the requests, but " + WitnessFile + " (what reading it back found) is missing: the verdict cannot rest on the client's record alone"}
			return
		}
		if errors.Is(err, errMissing) {
			s.Witness = &Witness{Note: "nginx kept no record of the requests (a user's configuration without --server-log): the verdict rests on the client's record alone"}
			return
		}
		problem("%v", err)
		return
	}
	wit := &Witness{Present: true, Read: &read, Classes: map[string]int{}, Drops: []WitnessDrop{}, Unlogged: []string{}, Unknown: []string{}, Generations: []GenerationRow{}}
	s.Witness = wit
	if read.Error != "" {
		problem("the server's log could not be read back: %s", read.Error)
		return
	}
	if read.SizeBytes > read.ReadBytes+4096 {
		problem("the server's log holds %d bytes, %d were read back (the bound): the second witness is incomplete", read.SizeBytes, read.ReadBytes)
	}
	var server []ServerEntry
	if err := readJSONL(path(ServerLogFile), func(e *ServerEntry) { server = append(server, *e) }); err != nil {
		problem("%v", err)
		return
	}
	var samples []ProcessSample
	if err := readJSONL(path(ProcessesFile), func(p *ProcessSample) { samples = append(samples, *p) }); err != nil && !errors.Is(err, errMissing) {
		problem("%v", err)
	}
	if s.Final != nil && len(s.Final.Processes) > 0 {
		end := s.EndMs
		for _, st := range s.Steps {
			end = max(end, st.VerifiedMs, st.SentMs)
		}
		samples = append(samples, ProcessSample{Ms: end, At: "final", Procs: s.Final.Processes})
	}
	gens := NewGenerations(samples)
	var kills []Kill
	for _, st := range s.Steps {
		if st.Signal == "KILL" && len(st.PIDs) > 0 {
			to := st.VerifiedMs
			if !st.Verified {
				to = st.SentMs + 1000
			}
			kills = append(kills, Kill{PIDs: st.PIDs, FromMs: st.SentMs, ToMs: to})
		}
	}
	r := Reconcile(w.clients, server, kills...)
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
		wd := WitnessDrop{Decision: d}
		if len(s.Phases) > 0 {
			wd.Phase = s.Phases[phaseOf(d.Ms)].Name
		}
		if d.PID > 0 {
			wd.Generation, wd.Orphan = gens.Of(d.PID, d.Ms)
		} else if len(d.Candidates) > 0 {
			wd.Generation, wd.Orphan = gens.Of(d.Candidates[0], d.Ms)
		}
		wit.Drops = append(wit.Drops, wd)
	}
	// Who served, when: every identified log line by the moment nginx wrote it.
	startMs := float64(start.UnixNano()) / 1e6
	rows := map[string]*GenerationRow{}
	for _, name := range gens.Names() {
		rows[name] = &GenerationRow{Name: name, Binary: gens.Binary(name), Master: gens.Master(name), Workers: gens.Workers(name), ByPhase: map[string]int{}}
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
			row = &GenerationRow{Name: name, Binary: "unknown", Workers: []int{}, ByPhase: map[string]int{}}
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
				band += orphanBand
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
		for _, band := range []string{name, name + orphanBand} {
			if bands[band] != nil {
				tl.Generations = append(tl.Generations, GenBand{Name: band, Answered: bands[band]})
			}
		}
	}
	for _, w := range witnessDropWords(wit) {
		s.Drops = append(s.Drops, w)
	}
}

// orphanBand names the band of a generation's answers given after its
// master was gone.
const orphanBand = " orphaned"

// incompleteReason says why the witness does not hold, naming the first
// ids of either kind.
func incompleteReason(w *Witness, identified int) string {
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

// GenBand is one generation's answers per timeline bucket.
type GenBand struct {
	Name     string `json:"name"`
	Answered []int  `json:"answered"`
}

// witnessDropWords says the reconciled drops in words: per class, the
// pids and generations that held them.
func witnessDropWords(w *Witness) []string {
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

// writeMarkdownWitness is the second witness's section of report.md.
func writeMarkdownWitness(mw *mdWriter, s *Scenario) {
	w := s.Witness
	if w == nil {
		return
	}
	if !w.Present {
		mw.printf("Second witness: absent. %s\n\n", mdCell(w.Note))
		return
	}
	state := "complete: every request the client recorded is in nginx's log, and every id in the log is the client's"
	if !w.Complete {
		state = fmt.Sprintf("**incomplete**: %d ok on the client and absent from the log, %d logged and unknown to the client", w.UnloggedCount, w.UnknownCount)
	}
	mw.printf("Second witness (nginx's own log, %d lines, %d of them the harness's probes): %d client records reconciled, %s. Classes: %s.\n\n",
		w.Logged, w.Unidentified, w.Requests, state, mdCell(classSummary(w.Classes)))
	if len(w.Generations) > 0 {
		mw.printf("| generation | binary | master | workers | answered | after its master was gone | by phase |\n")
		mw.printf("| --- | --- | ---: | --- | ---: | ---: | --- |\n")
		for _, g := range w.Generations {
			mw.printf("| %s | %s | %s | %s | %d | %d | %s |\n", mdCell(g.Name), mdCell(g.Binary), pidCell(g.Master),
				mdCell(strings.Trim(fmt.Sprint(g.Workers), "[]")), g.Answered, g.Orphaned, mdCell(phaseCounts(s, g.ByPhase)))
		}
		mw.printf("\n")
	}
	if w.DropsCount > 0 {
		mw.printf("| drop | kind | phase | at (ms) | reconciled | pid | generation | logged status |\n")
		mw.printf("| --- | --- | --- | ---: | --- | --- | --- | ---: |\n")
		for i, d := range w.Drops {
			if i == 50 {
				mw.printf("\n%d more in report.json (witness.drops).\n", w.DropsCount-i)
				break
			}
			pid := pidCell(d.PID)
			if d.PID == 0 && len(d.Candidates) > 0 {
				pid = "one of " + strings.Trim(fmt.Sprint(d.Candidates), "[]")
			}
			gen := d.Generation
			if d.Orphan {
				gen += " (orphaned)"
			}
			status := "—"
			if d.Status > 0 {
				status = strconv.Itoa(d.Status)
			}
			mw.printf("| %s | %s | %s | %.0f | %s | %s | %s | %s |\n", mdCell(d.ID), d.Kind, mdCell(d.Phase), d.Ms, d.Class, pid, mdCell(gen), status)
		}
		mw.printf("\n")
	}
}

// phaseCounts writes "steady: 798, both-sets: 613" in the phases' order.
func phaseCounts(s *Scenario, by map[string]int) string {
	var parts []string
	for _, p := range s.Phases {
		if n := by[p.Name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", p.Name, n))
		}
	}
	if n := by[""]; n > 0 {
		parts = append(parts, fmt.Sprintf("?: %d", n))
	}
	return strings.Join(parts, ", ")
}
