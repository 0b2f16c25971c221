package render

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// trafficSummary is one line per kind for people (report.md).
func trafficSummary(r record.TrafficRow) string {
	var parts []string
	switch {
	case r.WebSockets != nil:
		ws := r.WebSockets
		parts = append(parts, fmt.Sprintf("%d WebSockets, %d messages sent, %d echoed, %d lost, %d mismatched; ended: %s; close codes from the server: %s; longest lived %s",
			ws.Opened, ws.Sent, ws.Echoed, ws.LostMessages, ws.Mismatched, mapSummary(ws.Ended), mapSummary(ws.ClosedByCode), words.FmtMs(ws.LongestMs)))
	case r.Uploads != nil:
		up := r.Uploads
		parts = append(parts, fmt.Sprintf("%d uploads, %d ok, %d failed (%s), %d cancelled, %.1f MiB sent",
			up.Started, up.OK, up.Failed, mapSummary(up.ByClass), up.Cancelled, float64(up.BytesSent)/(1<<20)))
	default:
		parts = append(parts, fmt.Sprintf("%d requests at %d/s, %d failed, %d cancelled, longest %s", r.Requests, r.Rate, r.Failed, r.Cancelled, words.FmtMs(r.MaxMs)))
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
func writeMarkdownTraffic(mw *MdWriter, s *record.Scenario) {
	if len(s.Traffic) == 0 {
		return
	}
	mw.Printf("| traffic | dropped | where | what was measured |\n| --- | ---: | --- | --- |\n")
	for _, r := range s.Traffic {
		where := strings.Join(r.Drops, ", ")
		if where == "" {
			where = "—"
		}
		mw.Printf("| %s | %d | %s | %s |\n", MdCell(r.Kind), r.Dropped, MdCell(where), MdCell(trafficSummary(r)))
	}
	mw.Printf("\n")
}
