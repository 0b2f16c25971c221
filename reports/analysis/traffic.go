package analysis

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// profileAcc is what results.gob says of one profile.
type profileAcc struct {
	requests, ok, failed, cancelled int
	maxMs                           float64
}

// readTraffic builds the per-kind rows (meta.json's traffic plan names the
// kinds and their profiles) and adds the drops the request results do not
// show — unsafe HTTP/2 replays, WebSockets, uploads — to the phases they
// happened in.
func readTraffic(dir string, s *record.Scenario, meta *record.Meta, phases *phaseSet, byProfile map[string]*profileAcc,
	failedByProfile map[string]map[string]int, problem func(string, ...any)) {
	s.Traffic = []record.TrafficRow{}
	if len(meta.Traffic) == 0 {
		return
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	rows := map[string]*record.TrafficRow{}
	var order []*record.TrafficRow
	// What each row lost, phase by phase: the row's Drops once all is read.
	dropsByPhase := map[*record.TrafficRow]map[string]int{}
	planned := map[string]bool{}
	for _, tp := range meta.Traffic {
		r := &record.TrafficRow{Kind: tp.Kind, Profile: tp.Profile, Rate: tp.Rate, Drops: []string{}}
		dropsByPhase[r] = map[string]int{}
		rows[tp.Profile] = r
		order = append(order, r)
		planned[tp.Kind] = true
		if p := byProfile[tp.Profile]; p != nil {
			r.Requests, r.OK, r.Failed, r.Cancelled, r.MaxMs = p.requests, p.ok, p.failed, p.cancelled, Round3(p.maxMs)
			r.Dropped += p.failed
		}
		switch tp.Kind {
		case "websocket":
			r.WebSockets = &record.WebSocketRow{Ended: map[string]int{}, ClosedByCode: map[string]int{}}
		case "upload":
			r.Uploads = &record.UploadRow{ByClass: map[string]int{}}
		}
	}
	for _, r := range order {
		for ph, n := range failedByProfile[r.Profile] {
			dropsByPhase[r][ph] += n
		}
	}
	optional := func(err error, kind string) {
		switch {
		case err == nil:
		case errors.Is(err, record.ErrMissing) && !planned[kind]:
		default:
			problem("%v", err)
		}
	}

	optional(record.ReadJSONL(path(record.RetriesFile), func(rr *record.RetryRecord) {
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
				dropsByPhase[r][phases.at(MsToDuration(rr.Ms)).name]++
			}
		}
	}), "")

	optional(record.ReadJSONL(path(loadgen.ConnectionsFile), func(c *loadgen.ConnRecord) {
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
			r.HandshakesFullByPhase[phases.at(MsToDuration(c.OpenMs)).name]++
		case loadgen.TLSResumed:
			r.HandshakesResumed++
		case loadgen.TLSFailed:
			r.HandshakesFailed++
		}
	}), "")

	optional(record.ReadJSONL(path(loadgen.StreamsFile), func(st *loadgen.StreamRecord) {
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
			p := phases.at(MsToDuration(st.Ms))
			p.streamsUnsafe++
			dropsByPhase[r][p.name]++
		}
	}), "http2")

	optional(record.ReadJSONL(path(loadgen.WebSocketsFile), func(w *loadgen.WebSocketRecord) {
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
		ws.LongestMs = max(ws.LongestMs, Round3(w.EndMs-w.StartMs))
		p := phases.at(MsToDuration(w.EndMs))
		// The rule is loadgen's (WebSocketDrop), recomputed from the record.
		if loadgen.WebSocketDrop(w.Ended, w.Code) {
			ws.Dropped++
			p.wsDropped++
		}
		p.wsLost += w.Lost + w.Mismatched
		if n := b2i(loadgen.WebSocketDrop(w.Ended, w.Code)) + w.Lost + w.Mismatched; n > 0 {
			r.Dropped += n
			dropsByPhase[r][p.name] += n
		}
	}), "websocket")

	optional(record.ReadJSONL(path(loadgen.UploadsFile), func(u *loadgen.UploadRecord) {
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
			p := phases.at(MsToDuration(u.EndMs))
			p.uploadsCut++
			dropsByPhase[r][p.name]++
		}
	}), "upload")

	for _, r := range order {
		if r.WebSockets != nil && r.WebSockets.Opened < planCount(meta, r.Profile) {
			problem("%d WebSockets configured, %d recorded: the others never ended", planCount(meta, r.Profile), r.WebSockets.Opened)
		}
		var phs []string
		for ph := range dropsByPhase[r] {
			phs = append(phs, ph)
		}
		sort.Slice(phs, func(i, j int) bool { return phases.index(phs[i]) < phases.index(phs[j]) })
		for _, ph := range phs {
			r.Drops = append(r.Drops, fmt.Sprintf("%d in %s", dropsByPhase[r][ph], ph))
		}
		s.Traffic = append(s.Traffic, *r)
	}
}

func planCount(meta *record.Meta, profile string) int {
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

// TrafficDropWords says what the kinds beyond plain requests lost in a
// phase (for the phase's drop reasons).
func TrafficDropWords(p record.Phase) []string {
	var w []string
	if p.StreamsRetriedUnsafe > 0 {
		w = append(w, words.Plural(p.StreamsRetriedUnsafe, "HTTP/2 stream")+" replayed without the never-processed guarantee")
	}
	if p.WebSocketsDropped > 0 {
		w = append(w, words.Plural(p.WebSocketsDropped, "WebSocket")+" ended abnormally (no close frame, a bad close code, or never opened)")
	}
	if p.MessagesLost > 0 {
		w = append(w, words.Plural(p.MessagesLost, "WebSocket message")+" never echoed (or echoed wrong)")
	}
	if p.UploadsCut > 0 {
		w = append(w, words.Plural(p.UploadsCut, "upload")+" failed")
	}
	return w
}
