package loadgen

import (
	"strconv"
	"time"
)

// File names inside a scenario's run directory. Everything the load measures
// is streamed to these files as it happens, so a run killed half-way leaves
// readable files with everything measured so far.
const (
	ResultsFile     = "results.gob"       // vegeta's gob encoding: `vegeta report` reads it
	ConnectionsFile = "connections.jsonl" // one ConnRecord per line, written when the connection ends
	DownloadsFile   = "downloads.jsonl"   // one DownloadRecord per line, written when the download ends
	RetriesFile     = "retries.jsonl"     // one RetryRecord per request net/http replayed on another connection
	StreamsFile     = "streams.jsonl"     // one StreamRecord per HTTP/2 request, written when it ends
	WebSocketsFile  = "websockets.jsonl"  // one WebSocketRecord per WebSocket connection, written when it ends
	UploadsFile     = "uploads.jsonl"     // one UploadRecord per upload, written when it ends
)

// RequestIDHeader carries the id of every request and stream the load
// sends, which the server's own record (the witness, see
// reports.Reconcile) logs: vegeta's attack name and sequence number
// ("GET-close/42"), the same pair results.gob holds, or "slow/N",
// "upload/N", "ws/N" for the long downloads, uploads and WebSockets.
const RequestIDHeader = "X-Nuh-Request-Id"

// PidHeader is the response header of the harness's own configuration
// naming the worker that answered; a record keeps it where the answer's
// end may never come (a KILLed worker writes no log line).
const PidHeader = "X-Nuh-Pid"

// RequestID is the id of a vegeta request: its attack (the profile's
// name) and sequence number.
func RequestID(attack string, seq uint64) string { return attack + "/" + strconv.FormatUint(seq, 10) }

// Clock is the one time base of a run: request timestamps, connection and
// download records and signal steps are all offsets from the same monotonic
// start, so every failure can be placed in the phase it happened in.
type Clock struct {
	start time.Time // carries the monotonic reading
}

// NewClock starts a clock now.
func NewClock() Clock { return Clock{start: time.Now()} }

// NewClockAt rebuilds a clock from a start recorded on disk (no monotonic
// reading: offsets are then computed from the wall times Stamp produced).
func NewClockAt(start time.Time) Clock { return Clock{start: start} }

// Start is the wall-clock anchor of the run, as stored in meta.json.
func (c Clock) Start() time.Time { return c.start.Round(0) }

// Stamp rewrites t as the anchor plus its monotonic offset from the start, so
// that a timestamp stored on disk (which loses the monotonic reading) still
// yields the monotonic offset when the anchor is subtracted.
func (c Clock) Stamp(t time.Time) time.Time { return c.Start().Add(t.Sub(c.start)) }

// Ms is t's offset from the start in milliseconds.
func (c Clock) Ms(t time.Time) float64 { return float64(t.Sub(c.start)) / float64(time.Millisecond) }

// Now is the offset of the present moment in milliseconds.
func (c Clock) Now() float64 { return c.Ms(time.Now()) }

// How a connection opened by the load ended.
const (
	ConnClosedByClient     = "closed_by_client"      // we closed it (no server close seen first)
	ConnClosedByServerIdle = "closed_by_server_idle" // server closed it with no request outstanding: not a drop
	ConnClosedUnderRequest = "closed_under_request"  // server closed it (EOF) while a request was written and unanswered: a drop
	ConnResetUnderRequest  = "reset_under_request"   // server reset it while a request was outstanding: a drop
	ConnResetIdle          = "reset_idle"            // server reset it with no request outstanding: not a drop
	ConnRefused            = "refused"               // the dial was refused: a drop
	ConnDialError          = "dial_error"            // any other dial failure (timeout…): a drop
	ConnOpenAtEnd          = "open_at_end"           // still open when the run ended
)

// ConnRecord is one connection the load opened (or failed to open).
type ConnRecord struct {
	ID       uint64  `json:"id"`
	Profile  string  `json:"profile"`
	Local    string  `json:"local,omitempty"`
	OpenMs   float64 `json:"open_ms"`
	EndMs    float64 `json:"end_ms"`
	Outcome  string  `json:"outcome"`
	Requests int     `json:"requests"`        // requests written on it
	Retried  int     `json:"retried"`         // requests net/http replayed on another connection after this one closed under them
	Error    string  `json:"error,omitempty"` // the read/dial error that ended it
	TLS      string  `json:"tls,omitempty"`   // TLS handshake: full, resumed or failed ("" : no TLS)
	Proto    string  `json:"proto,omitempty"` // ALPN protocol (h2, http/1.1)
	// Refused counts HTTP/2 streams on it the server declared never
	// processed (above a GOAWAY's last stream id, or REFUSED_STREAM), which
	// the transport replayed elsewhere: not drops. Requests counts streams.
	Refused int `json:"refused,omitempty"`
}

// DownloadRecord is one long download, checked to the byte.
type DownloadRecord struct {
	ID        int     `json:"id"`
	URL       string  `json:"url"`
	StartMs   float64 `json:"start_ms"`
	EndMs     float64 `json:"end_ms"`
	Expected  int64   `json:"expected_bytes"`
	Received  int64   `json:"received_bytes"`
	Status    int     `json:"status"`
	Completed bool    `json:"completed"`            // all expected bytes arrived
	ServerPid int     `json:"server_pid,omitempty"` // the worker that answered (PidHeader), when the answer said
	// HeldMs is how long the download stopped reading its last
	// Slow.HoldTail bytes, waiting for ReleaseDownloads (0: it never did).
	HeldMs float64 `json:"held_ms,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// RetryRecord is one request that net/http sent more than once because the
// server closed (or reset) the connection it had been given. Written marks a
// retry after request bytes had reached the first connection: that is a drop
// even when the replay succeeded. A retry with Written false only means the
// transport picked an idle connection the server had just closed.
type RetryRecord struct {
	ID       string   `json:"id,omitempty"`    // RequestIDHeader: the server logs each attempt under it
	Ms       float64  `json:"ms"`              // when the request started
	EndMs    float64  `json:"end_ms"`          // when it ended (response read, or failed)
	Profile  string   `json:"profile"`         // the profile (or "slow") that sent it
	Method   string   `json:"method"`          // request method
	URL      string   `json:"url,omitempty"`   // request URL (a targets profile's, with its target's fragment)
	Attempts int      `json:"attempts"`        // connections the request was given (>= 2)
	Conns    []uint64 `json:"conns"`           // their ConnRecord ids, in order
	Error    string   `json:"error"`           // what ended the first connection (the server's EOF or reset)
	Written  bool     `json:"written"`         // request bytes had been written on a connection the server then closed
	OK       bool     `json:"ok"`              // the last attempt got a complete response
	Final    string   `json:"final,omitempty"` // the request's error when it failed in the end
}

// StreamRecord.Outcome values.
const (
	StreamOK        = "ok"
	StreamFailed    = "failed"
	StreamCancelled = "cancelled" // the client stopped (the load ending): not a drop
)

// StreamRecord is one HTTP/2 request: the stream it was sent on and, when
// the transport replayed it, the streams before, with the reason of each
// replay (RetryGoAway, RetryRefusedStream, RetryUnusable: safe, the server
// never processed them; RetryUnexplained: a drop).
type StreamRecord struct {
	Ms      float64  `json:"ms"`
	EndMs   float64  `json:"end_ms"`
	Profile string   `json:"profile"`
	Method  string   `json:"method"`
	URL     string   `json:"url,omitempty"`     // request URL (a targets profile's, with its target's fragment)
	Conns   []uint64 `json:"conns"`             // ConnRecord ids of its streams, in order
	Retries []string `json:"retries,omitempty"` // why each earlier stream was replayed
	Status  int      `json:"status,omitempty"`
	Outcome string   `json:"outcome"`         // ok, failed or cancelled
	Class   string   `json:"class,omitempty"` // of a failure: rst_stream_CODE, goaway_CODE, reset, connection_lost, timeout, status_NNN, wrong_answer, error
	Error   string   `json:"error,omitempty"`
}
