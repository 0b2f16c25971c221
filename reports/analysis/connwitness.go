package analysis

import (
	"fmt"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// ConnectionDisagreements holds the connection accounting (connections.jsonl)
// against the client's results and replays, which must agree on what the
// server did: a connection the server closed or reset under a request that
// was not replayed elsewhere lost that request, so there are at least as
// many failed requests (results.gob, and the side records' losses) as such
// connections; and every replay of a written request that was answered
// (retries.jsonl) left a replay counted on one of the connections it
// failed on. Each
// disagreement is one line naming the two witnesses. Called once the
// phases are final.
func ConnectionDisagreements(dir string, s *record.Scenario) []string {
	underNotReplayed := 0
	replays := map[uint64]int{} // connection → requests replayed off it
	var example *loadgen.ConnRecord
	err := record.ReadJSONL(filepath.Join(dir, loadgen.ConnectionsFile), func(r *loadgen.ConnRecord) {
		replays[r.ID] += r.Retried
		if (r.Outcome == loadgen.ConnClosedUnderRequest || r.Outcome == loadgen.ConnResetUnderRequest) && r.Retried == 0 {
			underNotReplayed++
			if example == nil {
				c := *r
				example = &c
			}
		}
	})
	if err != nil {
		return nil // missing or bad: said where it is read (readSideRecords)
	}
	// A request the client gave up on as the load stopped may have been
	// outstanding on a connection the server had just closed: it counts.
	lost := s.Requests.Failed + s.Requests.Cancelled + s.Slow.Cut
	for _, p := range s.Phases {
		lost += p.StreamsRetriedUnsafe + p.WebSocketsDropped + p.UploadsCut
	}
	var out []string
	if underNotReplayed > lost {
		out = append(out, fmt.Sprintf("%s and results.gob disagree on losses: %d connections the server closed or reset under a request that was not replayed (the first: %d, %s at %.0f ms), "+
			"but the client's records show %s lost", loadgen.ConnectionsFile, underNotReplayed, example.ID, example.Outcome, example.EndMs, words.Plural(lost, "request")))
	}
	// A replay names the connections it was given, in order, the last the
	// one that answered it. One before that — the one the server closed
	// with the request written on it — counts the replay; an earlier one
	// may have been closed idle as net/http took it, the request not yet
	// written (measured: conns 14, 10, 15; 14 closed idle, 10 under the
	// request). Each connection's count is used up by the replays it
	// matches.
	unmatched, first := 0, ""
	rerr := record.ReadJSONL(filepath.Join(dir, record.RetriesFile), func(r *record.RetryRecord) {
		if !r.Written || !r.OK || len(r.Conns) < 2 {
			return
		}
		for _, c := range r.Conns[:len(r.Conns)-1] {
			if replays[c] > 0 {
				replays[c]--
				return
			}
		}
		unmatched++
		if first == "" {
			first = fmt.Sprintf("%s at %.0f ms, on connections %v", r.ID, r.Ms, r.Conns)
		}
	})
	if rerr == nil && unmatched > 0 {
		out = append(out, fmt.Sprintf("%s and %s disagree on replays: %d requests replayed after the server closed the connection they were written on, whose connection records no replay (the first: %s)",
			record.RetriesFile, loadgen.ConnectionsFile, unmatched, first))
	}
	return out
}
