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
