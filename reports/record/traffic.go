package record

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
