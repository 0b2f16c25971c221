package record

// Failure classes, named for what the client saw: through Docker's port proxy
// a reset by nginx may reach the client as a plain close (eof).
const (
	ClassRefused     = "refused"
	ClassReset       = "reset"
	ClassEOF         = "eof"
	ClassTimeout     = "timeout"
	ClassStatus5xx   = "status-5xx"
	ClassStatusOther = "status-other"
	ClassStatus3xx   = "status-3xx" // a redirect: the load never follows one, and the steady phase served none
	ClassWrongBody   = "wrong-body" // a 2xx whose body differs from the steady phase's
	// HTTP/2: the server reset the stream (RST_STREAM), or sent GOAWAY and
	// closed the connection with the stream at or below its last stream id
	// (it may have processed it, so the transport did not replay it). A
	// replay the protocol guarantees safe never reaches a result.
	ClassStreamReset = "stream-reset"
	ClassGoAway      = "goaway"
	ClassOther       = "other"
	// ClassCancelled is a request the client gave up on (the load stopping):
	// its own class, never a drop.
	ClassCancelled = "cancelled"
)

// Cause is one explained loss: in phase, count losses of class (a failure
// class, "retried", "slow-cut", or "step-failed" for a step nginx refused),
// and why, in words. The phase's losses of every class share one text.
type Cause struct {
	Phase string `json:"phase"`
	Class string `json:"class"`
	Count int    `json:"count"`
	Text  string `json:"text"`
}

// Classes of a Cause beyond the failure classes.
const (
	CauseRetried    = "retried"
	CauseSlowCut    = "slow-cut"
	CauseStepFailed = "step-failed"
)
