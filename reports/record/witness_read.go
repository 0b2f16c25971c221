package record

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

// orphanBand names the band of a generation's answers given after its
// master was gone.
const OrphanBand = " orphaned"

// GenBand is one generation's answers per timeline bucket.
type GenBand struct {
	Name     string `json:"name"`
	Answered []int  `json:"answered"`
}
