package record

// TargetPlan is one target of a user's targets file (--targets) as
// meta.json records it before the load starts.
type TargetPlan struct {
	Index     int    `json:"index"` // its place in the file, from 0: what its records carry
	Method    string `json:"method"`
	URL       string `json:"url"`
	Line      int    `json:"line"` // where it starts in the file
	BodyBytes int    `json:"body_bytes,omitempty"`
	// Profiles are the traffic kinds' profiles that send it (http2 sends
	// the https targets only).
	Profiles []string `json:"profiles"`
}

// TargetRow is one target's account in a scenario, recomputed from the
// records on disk: its requests in results.gob (every request kind that
// sent it), and the replays in retries.jsonl and streams.jsonl that hid a
// drop. Dropped counts as the scenario's Dropped does (DROPS.md).
type TargetRow struct {
	Index     int            `json:"index"`
	Target    string         `json:"target"` // METHOD URL
	Line      int            `json:"line"`
	Requests  int            `json:"requests"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Cancelled int            `json:"cancelled"`
	Dropped   int            `json:"dropped"`
	ByClass   map[string]int `json:"failed_by_class"`
	P50Ms     float64        `json:"p50_ms"`
	P99Ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
}
