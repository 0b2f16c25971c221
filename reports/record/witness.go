package record

// ServerEntry is one line of the server's log (nginx.WitnessFormat).
type ServerEntry struct {
	ID                 string  `json:"id"`
	PID                int     `json:"pid"`
	Connection         uint64  `json:"connection"`
	ConnectionRequests int     `json:"connection_requests"`
	Status             int     `json:"status"`
	BytesSent          int64   `json:"bytes_sent"`
	BodyBytesSent      int64   `json:"body_bytes_sent"`
	ContentLength      string  `json:"content_length"` // "" when the response had none (chunked, 101)
	RequestLength      int64   `json:"request_length"`
	RequestTime        float64 `json:"request_time"`
	Msec               float64 `json:"msec"` // Unix seconds when the log line was written
	Protocol           string  `json:"protocol"`
	UpstreamStatus     string  `json:"upstream_status"`
}

// ClientRecord is one request, download, upload or WebSocket as the
// client saw it.
type ClientRecord struct {
	ID        string
	Kind      string
	Ms        float64 // when it was lost or served, on the run's clock: a request's start, a download's, upload's or WebSocket's end
	StartMs   float64 // when it started and ended: the span in which a KILL could take it
	EndMs     float64
	Outcome   string // ClientOK, ClientFailed, ClientCancelled
	Status    int    // the status the client got (0: none)
	ServerPid int    // the worker the response named (PidHeader), 0 when none arrived
	Attempts  int    // of a replay: the connections it was given (>= 2)
	Bytes     int64  // the body bytes the client received (0: unknown or none)
}

// Decision is the reconciled fate of one client record that was not ok.
type Decision struct {
	ID    string  `json:"id"`
	Kind  string  `json:"kind"`
	Ms    float64 `json:"ms"`
	Class string  `json:"class"`
	PID   int     `json:"pid,omitempty"` // the worker that held it (0: none known)
	// Candidates are the workers KILLed while it was in flight, when
	// none named itself: one of them held it.
	Candidates []int `json:"candidates,omitempty"`
	Status     int   `json:"status,omitempty"` // as the server logged it (0: not logged)
}

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

// OrphanBand names the band of a generation's answers given after its
// master was gone.
const OrphanBand = " orphaned"

// GenBand is one generation's answers per timeline bucket.
type GenBand struct {
	Name     string `json:"name"`
	Answered []int  `json:"answered"`
}

// The classes of the reconciliation of the client's record with the
// server's (Reconcile), request by request.
const (
	WitnessOK       = "ok"                     // ok on the client, logged 2xx by the server
	WitnessLost     = "answered-but-lost"      // failed on the client, logged 2xx with every byte sent: the server did its part
	WitnessNever    = "never-reached-a-worker" // failed on the client, never logged, no worker named itself
	WitnessCut      = "cut-by-the-server"      // logged with fewer bytes, 499/444, a status the client never saw — or begun by a worker that never logged it (killed)
	WitnessErrorAns = "answered-with-error"    // the client got the non-2xx status the server logged
	// WitnessCrash is failed on the client and never logged, on a
	// connection held by a worker that died of a signal the plan did not
	// send, or while one did (Scenario.Deaths): the worker read it and died
	// holding it.
	WitnessCrash    = "lost-in-a-crash"
	WitnessCanceled = "cancelled" // the client gave up (the load stopping): nothing to reconcile
	// Premise failures: the witness is incomplete, nothing can be concluded.
	WitnessUnlogged = "ok-but-unlogged" // ok on the client, absent from the server's log
	// WitnessAnsweredKilled is ok on the client and absent from the log
	// while a KILL landed: the worker sent the whole answer and was killed
	// before it wrote the line (nginx logs a request after its response).
	WitnessAnsweredKilled = "answered-then-killed"
	WitnessUnknown        = "logged-but-unknown" // in the server's log under an id the client never sent
)

// Client outcomes (ClientRecord.Outcome).
const (
	ClientOK        = "ok"
	ClientFailed    = "failed"
	ClientCancelled = "cancelled"
	// ClientReplayed: net/http sent it again on another connection after
	// the server closed the one it had been written on, and the replay
	// was answered — a drop no failed result shows (retries.jsonl). Its
	// first attempt is reconciled; its final answer is the request's own
	// record.
	ClientReplayed = "replayed"
)

// Client record kinds.
const (
	KindRequest   = "request"
	KindDownload  = "download"
	KindUpload    = "upload"
	KindWebSocket = "websocket"
	KindReplay    = "replay" // the first attempt of a replayed request
)
