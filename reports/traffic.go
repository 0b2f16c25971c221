package reports

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// TrafficRow is one traffic kind's account in a scenario, built from the
// records on disk (results.gob, retries.jsonl, connections.jsonl,
// streams.jsonl, websockets.jsonl, uploads.jsonl) by the profile name the
// kind ran under. Dropped follows loadgen/DROPS.md; nothing is left out of
// the counts, drop or not.
type TrafficRow struct {
	Kind    string `json:"kind"`
	Profile string `json:"profile"`
	Rate    int    `json:"rate,omitempty"` // requests per second asked (a request kind)

	// Requests (HTTP/2: streams), from results.gob.
	Requests  int `json:"requests"`
	OK        int `json:"ok"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	// MaxMs is the longest request of the kind.
	MaxMs float64 `json:"max_ms"`

	// Dropped is what this kind lost (DROPS.md): failed requests or streams,
	// HTTP/1.1 requests replayed after being written on a connection the
	// server closed, HTTP/2 streams replayed without the never-processed
	// guarantee that then succeeded, WebSockets ended as a drop and
	// messages never echoed (or echoed wrong), uploads that failed.
	Dropped int `json:"dropped"`
	// RetriedSafe: HTTP/2 streams replayed after the server said it never
	// processed them (GOAWAY above their id, REFUSED_STREAM, a connection
	// already ended): not drops. RetriedUnsafe: replays without that
	// guarantee — HTTP/1.1 requests written on a connection the server then
	// closed (retries.jsonl, written), HTTP/2 streams replayed unexplained;
	// each a drop (counted once with Failed when the replay failed too).
	RetriedSafe   int `json:"retried_safe"`
	RetriedUnsafe int `json:"retried_unsafe"`
	// RetriedUnwritten: HTTP/1.1 requests replayed that had not been
	// written (an idle connection the server had just closed): not drops.
	RetriedUnwritten int `json:"retried_unwritten"`

	// Connections the kind opened, and their TLS handshakes.
	Connections       int `json:"connections"`
	HandshakesFull    int `json:"handshakes_full"`
	HandshakesResumed int `json:"handshakes_resumed"`
	HandshakesFailed  int `json:"handshakes_failed"`
	// HandshakesFullByPhase: full handshakes by the phase the connection
	// opened in. After the new master took over, a full handshake is the
	// cost of sessions it cannot resume, not a drop.
	HandshakesFullByPhase map[string]int `json:"handshakes_full_by_phase,omitempty"`

	WebSockets *WebSocketRow `json:"websockets,omitempty"`
	Uploads    *UploadRow    `json:"uploads,omitempty"`

	// Drops says, phase by phase, what this kind lost.
	Drops []string `json:"drops"`

	dropsByPhase map[string]int
}

// WebSocketRow counts the WebSocket connections and their messages.
type WebSocketRow struct {
	Opened       int            `json:"opened"` // connections recorded (every one, however it ended)
	Sent         int            `json:"sent"`
	Echoed       int            `json:"echoed"`
	LostMessages int            `json:"lost_messages"` // sent and never echoed: drops
	Mismatched   int            `json:"mismatched"`    // echoes unlike any message sent: drops
	Dropped      int            `json:"dropped"`       // connections that ended as a drop (1006, a bad code, never opened)
	Ended        map[string]int `json:"ended"`         // by how they ended: client, server_close, abnormal, dial_failed, cancelled
	ClosedByCode map[string]int `json:"closed_by_code"`
	// LongestMs is the longest a connection lived.
	LongestMs float64 `json:"longest_ms"`
}

// UploadRow counts the uploads.
type UploadRow struct {
	Started   int            `json:"started"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"` // drops
	Cancelled int            `json:"cancelled"`
	BytesSent int64          `json:"bytes_sent"`
	ByClass   map[string]int `json:"failed_by_class,omitempty"`
}

// profileAcc is what results.gob says of one profile.
type profileAcc struct {
	requests, ok, failed, cancelled int
	maxMs                           float64
}

// readTraffic builds the per-kind rows (meta.json's traffic plan names the
// kinds and their profiles) and adds the drops the request results do not
// show — unsafe HTTP/2 replays, WebSockets, uploads — to the phases they
// happened in.
func readTraffic(dir string, s *Scenario, meta *Meta, phases *phaseSet, acc *resultsAcc, problem func(string, ...any)) {
	s.Traffic = []TrafficRow{}
	if len(meta.Traffic) == 0 {
		return
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	rows := map[string]*TrafficRow{}
	var order []*TrafficRow
	planned := map[string]bool{}
	for _, tp := range meta.Traffic {
		r := &TrafficRow{Kind: tp.Kind, Profile: tp.Profile, Rate: tp.Rate, Drops: []string{}, dropsByPhase: map[string]int{}}
		rows[tp.Profile] = r
		order = append(order, r)
		planned[tp.Kind] = true
		if p := acc.byProfile[tp.Profile]; p != nil {
			r.Requests, r.OK, r.Failed, r.Cancelled, r.MaxMs = p.requests, p.ok, p.failed, p.cancelled, round3(p.maxMs)
			r.Dropped += p.failed
		}
		switch tp.Kind {
		case "websocket":
			r.WebSockets = &WebSocketRow{Ended: map[string]int{}, ClosedByCode: map[string]int{}}
		case "upload":
			r.Uploads = &UploadRow{ByClass: map[string]int{}}
		}
	}
	for _, r := range order {
		for ph, n := range acc.failedByProfile[r.Profile] {
			r.dropsByPhase[ph] += n
		}
	}
	optional := func(err error, kind string) {
		switch {
		case err == nil:
		case errors.Is(err, errMissing) && !planned[kind]:
		default:
			problem("%v", err)
		}
	}

	optional(readJSONL(path(RetriesFile), func(rr *RetryRecord) {
		r := rows[rr.Profile]
		if r == nil {
			return
		}
		switch {
		case !rr.Written:
			r.RetriedUnwritten++
		default:
			r.RetriedUnsafe++
			if rr.OK { // a failed replay is a failed request already
				r.Dropped++
				r.dropsByPhase[phases.at(msToDuration(rr.Ms)).name]++
			}
		}
	}), "")

	optional(readJSONL(path(loadgen.ConnectionsFile), func(c *loadgen.ConnRecord) {
		r := rows[c.Profile]
		if r == nil {
			return
		}
		if c.Outcome != loadgen.ConnRefused && c.Outcome != loadgen.ConnDialError {
			r.Connections++
		}
		switch c.TLS {
		case loadgen.TLSFull:
			r.HandshakesFull++
			if r.HandshakesFullByPhase == nil {
				r.HandshakesFullByPhase = map[string]int{}
			}
			r.HandshakesFullByPhase[phases.at(msToDuration(c.OpenMs)).name]++
		case loadgen.TLSResumed:
			r.HandshakesResumed++
		case loadgen.TLSFailed:
			r.HandshakesFailed++
		}
	}), "")

	optional(readJSONL(path(loadgen.StreamsFile), func(st *loadgen.StreamRecord) {
		r := rows[st.Profile]
		if r == nil || len(st.Retries) == 0 {
			return
		}
		safe := true
		for _, why := range st.Retries {
			if !loadgen.SafeRetry(why) {
				safe = false
			}
		}
		if safe {
			r.RetriedSafe++
			return
		}
		r.RetriedUnsafe++
		if st.Outcome == loadgen.StreamOK { // a failed one is a failed result already
			r.Dropped++
			p := phases.at(msToDuration(st.Ms))
			p.streamsUnsafe++
			r.dropsByPhase[p.name]++
		}
	}), "http2")

	optional(readJSONL(path(loadgen.WebSocketsFile), func(w *loadgen.WebSocketRecord) {
		r := rows[w.Profile]
		if r == nil || r.WebSockets == nil {
			return
		}
		ws := r.WebSockets
		ws.Opened++
		ws.Sent += w.Sent
		ws.Echoed += w.Echoed
		ws.LostMessages += w.Lost
		ws.Mismatched += w.Mismatched
		ws.Ended[w.Ended]++
		if w.Code != 0 && (w.Ended == loadgen.WSEndedServer || w.Ended == loadgen.WSEndedAbnormal) {
			ws.ClosedByCode[fmt.Sprint(w.Code)]++
		}
		ws.LongestMs = max(ws.LongestMs, round3(w.EndMs-w.StartMs))
		p := phases.at(msToDuration(w.EndMs))
		// The rule is loadgen's (WebSocketDrop), recomputed from the record.
		if loadgen.WebSocketDrop(w.Ended, w.Code) {
			ws.Dropped++
			p.wsDropped++
		}
		p.wsLost += w.Lost + w.Mismatched
		if n := b2i(loadgen.WebSocketDrop(w.Ended, w.Code)) + w.Lost + w.Mismatched; n > 0 {
			r.Dropped += n
			r.dropsByPhase[p.name] += n
		}
	}), "websocket")

	optional(readJSONL(path(loadgen.UploadsFile), func(u *loadgen.UploadRecord) {
		r := rows[u.Profile]
		if r == nil || r.Uploads == nil {
			return
		}
		up := r.Uploads
		up.Started++
		up.BytesSent += u.Sent
		switch u.Outcome {
		case loadgen.UploadOK:
			up.OK++
		case loadgen.UploadCancelled:
			up.Cancelled++
		default:
			up.Failed++
			up.ByClass[u.Class]++
			r.Dropped++
			p := phases.at(msToDuration(u.EndMs))
			p.uploadsCut++
			r.dropsByPhase[p.name]++
		}
	}), "upload")

	for _, r := range order {
		if r.WebSockets != nil && r.WebSockets.Opened < planCount(meta, r.Profile) {
			problem("%d WebSockets configured, %d recorded: the others never ended", planCount(meta, r.Profile), r.WebSockets.Opened)
		}
		var phs []string
		for ph := range r.dropsByPhase {
			phs = append(phs, ph)
		}
		sort.Slice(phs, func(i, j int) bool { return phases.index(phs[i]) < phases.index(phs[j]) })
		for _, ph := range phs {
			r.Drops = append(r.Drops, fmt.Sprintf("%d in %s", r.dropsByPhase[ph], ph))
		}
		s.Traffic = append(s.Traffic, *r)
	}
}

func planCount(meta *Meta, profile string) int {
	for _, tp := range meta.Traffic {
		if tp.Profile == profile {
			return tp.Connections
		}
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// index is the position of the phase named name (the first of that name).
func (ps *phaseSet) index(name string) int {
	for i, p := range ps.phases {
		if p.name == name {
			return i
		}
	}
	return len(ps.phases)
}

// trafficDropWords says what the kinds beyond plain requests lost in a
// phase (for the phase's drop reasons).
func trafficDropWords(p Phase) []string {
	var w []string
	if p.StreamsRetriedUnsafe > 0 {
		w = append(w, plural(p.StreamsRetriedUnsafe, "HTTP/2 stream")+" replayed without the never-processed guarantee")
	}
	if p.WebSocketsDropped > 0 {
		w = append(w, plural(p.WebSocketsDropped, "WebSocket")+" ended abnormally (no close frame, a bad close code, or never opened)")
	}
	if p.MessagesLost > 0 {
		w = append(w, plural(p.MessagesLost, "WebSocket message")+" never echoed (or echoed wrong)")
	}
	if p.UploadsCut > 0 {
		w = append(w, plural(p.UploadsCut, "upload")+" failed")
	}
	return w
}

// trafficSummary is one line per kind for people (report.md).
func trafficSummary(r TrafficRow) string {
	var parts []string
	switch {
	case r.WebSockets != nil:
		ws := r.WebSockets
		parts = append(parts, fmt.Sprintf("%d WebSockets, %d messages sent, %d echoed, %d lost, %d mismatched; ended: %s; close codes from the server: %s; longest lived %s",
			ws.Opened, ws.Sent, ws.Echoed, ws.LostMessages, ws.Mismatched, mapSummary(ws.Ended), mapSummary(ws.ClosedByCode), fmtMs(ws.LongestMs)))
	case r.Uploads != nil:
		up := r.Uploads
		parts = append(parts, fmt.Sprintf("%d uploads, %d ok, %d failed (%s), %d cancelled, %.1f MiB sent",
			up.Started, up.OK, up.Failed, mapSummary(up.ByClass), up.Cancelled, float64(up.BytesSent)/(1<<20)))
	default:
		parts = append(parts, fmt.Sprintf("%d requests at %d/s, %d failed, %d cancelled, longest %s", r.Requests, r.Rate, r.Failed, r.Cancelled, fmtMs(r.MaxMs)))
	}
	if r.RetriedSafe+r.RetriedUnsafe+r.RetriedUnwritten > 0 {
		parts = append(parts, fmt.Sprintf("retried: %d safe, %d unsafe, %d unwritten", r.RetriedSafe, r.RetriedUnsafe, r.RetriedUnwritten))
	}
	if r.HandshakesFull+r.HandshakesResumed+r.HandshakesFailed > 0 {
		parts = append(parts, fmt.Sprintf("TLS handshakes: %d full (%s), %d resumed, %d failed",
			r.HandshakesFull, mapSummary(r.HandshakesFullByPhase), r.HandshakesResumed, r.HandshakesFailed))
	}
	return strings.Join(parts, "; ")
}

func mapSummary(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}

// writeMarkdownTraffic adds the per-kind rows to a scenario's section.
func writeMarkdownTraffic(mw *mdWriter, s *Scenario) {
	if len(s.Traffic) == 0 {
		return
	}
	mw.printf("| traffic | dropped | where | what was measured |\n| --- | ---: | --- | --- |\n")
	for _, r := range s.Traffic {
		where := strings.Join(r.Drops, ", ")
		if where == "" {
			where = "—"
		}
		mw.printf("| %s | %d | %s | %s |\n", mdCell(r.Kind), r.Dropped, mdCell(where), mdCell(trafficSummary(r)))
	}
	mw.printf("\n")
}
