package reports

import (
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// trafficFixture is the upgrade fixture run as four kinds at once: http1
// and http2 requests (50 req/s each, results told apart by profile),
// WebSockets and uploads. Nothing is lost unless a test adds it.
func trafficFixture() fixture {
	f := upgradeFixture()
	f.meta.Load.Traffic = []string{"http1", "http2", "websocket", "upload"}
	f.meta.Traffic = []record.TrafficPlan{{Kind: "http1", Profile: "http1", Rate: 50}, {Kind: "http2", Profile: "http2", Rate: 50},
		{Kind: "websocket", Profile: "websocket", Connections: 2}, {Kind: "upload", Profile: "upload", Connections: 1, Bytes: 1 << 20}}
	for i := range f.results {
		f.results[i].Attack = []string{"http1", "http2"}[i%2]
	}
	f.conns = append(f.conns,
		loadgen.ConnRecord{ID: 10, Profile: "http2", OpenMs: 0, EndMs: 4100, Outcome: loadgen.ConnClosedByClient, TLS: loadgen.TLSFull, Proto: "h2"},
		loadgen.ConnRecord{ID: 11, Profile: "http2", OpenMs: 4100, EndMs: 8000, Outcome: loadgen.ConnOpenAtEnd, TLS: loadgen.TLSFull, Proto: "h2"},
		loadgen.ConnRecord{ID: 12, Profile: "http2", OpenMs: 6300, EndMs: 8000, Outcome: loadgen.ConnOpenAtEnd, TLS: loadgen.TLSResumed, Proto: "h2"})
	f.streams = []loadgen.StreamRecord{
		{Ms: 4050, EndMs: 4060, Profile: "http2", Method: "GET", Conns: []uint64{10, 11}, Retries: []string{loadgen.RetryGoAway}, Status: 200, Outcome: loadgen.StreamOK},
	}
	f.websockets = []loadgen.WebSocketRecord{
		{ID: 0, Profile: "websocket", StartMs: 0, EndMs: 7900, Sent: 40, Echoed: 40, Ended: loadgen.WSEndedClient, Code: 1000},
		{ID: 1, Profile: "websocket", StartMs: 0, EndMs: 7900, Sent: 40, Echoed: 40, Ended: loadgen.WSEndedClient, Code: 1000},
	}
	f.uploads = []loadgen.UploadRecord{
		{ID: 0, Profile: "upload", StartMs: 0, EndMs: 4000, Bytes: 1 << 20, Sent: 1 << 20, Status: 200, Verified: true, Outcome: loadgen.UploadOK},
		{ID: 1, Profile: "upload", StartMs: 4000, EndMs: 7800, Bytes: 1 << 20, Sent: 1 << 20, Status: 200, Verified: true, Outcome: loadgen.UploadOK},
	}
	return f
}

func rowOf(t *testing.T, s *record.Scenario, kind string) record.TrafficRow {
	t.Helper()
	for _, r := range s.Traffic {
		if r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no traffic row %s in %+v", kind, s.Traffic)
	return record.TrafficRow{}
}

func TestTrafficRowsCleanRun(t *testing.T) {
	s := buildFixture(t, trafficFixture())
	if s.Verdict != record.VerdictPass {
		t.Fatalf("verdict %s: %v", s.Verdict, s.Reasons)
	}
	if len(s.Traffic) != 4 || s.Dropped != 0 {
		t.Fatalf("rows %d, dropped %d: %+v", len(s.Traffic), s.Dropped, s.Traffic)
	}
	h1, h2 := rowOf(t, s, "http1"), rowOf(t, s, "http2")
	if h1.Requests+h2.Requests != s.Requests.Total || h1.Requests != 400 || h2.OK != 400 {
		t.Errorf("requests by kind: http1 %d, http2 %d of %d", h1.Requests, h2.Requests, s.Requests.Total)
	}
	// A replay after a GOAWAY is safe: reported, not dropped. Full
	// handshakes are a cost, placed in the phase the connection opened.
	if h2.RetriedSafe != 1 || h2.RetriedUnsafe != 0 || h2.Dropped != 0 {
		t.Errorf("http2 retries: %+v", h2)
	}
	if h2.HandshakesFull != 2 || h2.HandshakesResumed != 1 || h2.HandshakesFullByPhase["old-workers-draining"] != 1 || h2.HandshakesFullByPhase["steady"] != 1 {
		t.Errorf("http2 handshakes: %+v", h2)
	}
	ws := rowOf(t, s, "websocket").WebSockets
	if ws == nil || ws.Opened != 2 || ws.Sent != 80 || ws.Ended[loadgen.WSEndedClient] != 2 || ws.Dropped != 0 {
		t.Errorf("websockets: %+v", ws)
	}
	up := rowOf(t, s, "upload").Uploads
	if up == nil || up.OK != 2 || up.BytesSent != 2<<20 {
		t.Errorf("uploads: %+v", up)
	}
}

func TestTrafficDropsCountPerKindAndInTheTotal(t *testing.T) {
	f := trafficFixture()
	// One http1 request fails in after-quit; net/http replays one GET that
	// had been written (a drop) and one that had not (not a drop).
	f.results[620] = failedWith(6200, 0, "EOF")
	f.results[620].Attack = "http1"
	f.retries = []record.RetryRecord{
		{Ms: 4500, EndMs: 4510, Profile: "http1", Method: "GET", Attempts: 2, Conns: []uint64{1, 2}, Written: true, OK: true},
		{Ms: 4600, EndMs: 4610, Profile: "http1", Method: "GET", Attempts: 2, Conns: []uint64{1, 2}, Written: false, OK: true},
	}
	// An HTTP/2 stream replayed without evidence, then ok: a drop.
	f.streams = append(f.streams, loadgen.StreamRecord{Ms: 6100, EndMs: 6110, Profile: "http2", Method: "GET", Conns: []uint64{11, 12},
		Retries: []string{loadgen.RetryUnexplained}, Status: 200, Outcome: loadgen.StreamOK})
	// A WebSocket cut without a close frame with 2 messages unanswered, and
	// one closed in order (1001) by the server: 1 + 2 drops, the 1001 none.
	f.websockets[0] = loadgen.WebSocketRecord{ID: 0, Profile: "websocket", StartMs: 0, EndMs: 6500, Sent: 33, Echoed: 31, Lost: 2,
		Ended: loadgen.WSEndedAbnormal, Code: 1006, Drop: true}
	f.websockets[1] = loadgen.WebSocketRecord{ID: 1, Profile: "websocket", StartMs: 0, EndMs: 7000, Sent: 35, Echoed: 35,
		Ended: loadgen.WSEndedServer, Code: 1001}
	// An upload cut mid-body.
	f.uploads[1] = loadgen.UploadRecord{ID: 1, Profile: "upload", StartMs: 4000, EndMs: 4200, Bytes: 1 << 20, Sent: 300000,
		Outcome: loadgen.UploadFailed, Class: "reset"}
	s := buildFixture(t, f)

	checks := []struct {
		kind    string
		dropped int
		drops   string
	}{{"http1", 2, "1 in old-workers-draining, 1 in after-quit"}, {"http2", 1, "1 in after-quit"},
		{"websocket", 3, "3 in after-quit"}, {"upload", 1, "1 in old-workers-draining"}}
	total := 0
	for _, c := range checks {
		r := rowOf(t, s, c.kind)
		total += r.Dropped
		if r.Dropped != c.dropped || strings.Join(r.Drops, ", ") != c.drops {
			t.Errorf("%s: dropped %d (%v), want %d (%s)", c.kind, r.Dropped, r.Drops, c.dropped, c.drops)
		}
	}
	if s.Dropped != total {
		t.Errorf("scenario dropped %d, the kinds' rows %d", s.Dropped, total)
	}
	h1 := rowOf(t, s, "http1")
	if h1.RetriedUnsafe != 1 || h1.RetriedUnwritten != 1 {
		t.Errorf("http1 retries: %+v", h1)
	}
	ws := rowOf(t, s, "websocket").WebSockets
	if ws.Dropped != 1 || ws.LostMessages != 2 || ws.ClosedByCode["1006"] != 1 || ws.ClosedByCode["1001"] != 1 {
		t.Errorf("websockets: %+v", ws)
	}
	after := phaseNamed(t, s, "after-quit")
	if after.WebSocketsDropped != 1 || after.MessagesLost != 2 || after.StreamsRetriedUnsafe != 1 || after.Dropped != 5 {
		t.Errorf("after-quit: %+v", after)
	}
	wantVerdict(t, s, record.VerdictFail, "1 WebSocket ended abnormally")
	wantVerdict(t, s, record.VerdictFail, "1 upload failed in old-workers-draining")
	wantVerdict(t, s, record.VerdictFail, "1 HTTP/2 stream replayed without the never-processed guarantee in after-quit")
}

func TestTrafficMissingRecordsAreProblems(t *testing.T) {
	f := trafficFixture()
	f.websockets = f.websockets[:1]
	s := buildFixture(t, f)
	wantVerdict(t, s, record.VerdictError, "2 WebSockets configured, 1 recorded")

	f = trafficFixture()
	f.omit = []string{loadgen.UploadsFile}
	s = buildFixture(t, f)
	wantVerdict(t, s, record.VerdictError, "uploads.jsonl missing")
}

// A record made before traffic kinds (no plan in meta.json) has no rows
// and the same count as before.
func TestTrafficOldRecordHasNoRows(t *testing.T) {
	s := buildFixture(t, upgradeFixture())
	if len(s.Traffic) != 0 || s.Dropped != 0 {
		t.Fatalf("rows %+v, dropped %d", s.Traffic, s.Dropped)
	}
}
