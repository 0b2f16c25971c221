package reports

import (
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

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

// failureClass indexes the classes in a fixed order (the order of reports).
type failureClass int

const (
	classRefused failureClass = iota
	classReset
	classEOF
	classTimeout
	classStatus5xx
	classStatusOther
	classStatus3xx
	classWrongBody
	classStreamReset
	classGoAway
	classOther
	classCancelled
	numClasses
)

func (c failureClass) String() string {
	switch c {
	case classRefused:
		return ClassRefused
	case classReset:
		return ClassReset
	case classEOF:
		return ClassEOF
	case classTimeout:
		return ClassTimeout
	case classStatus5xx:
		return ClassStatus5xx
	case classStatusOther:
		return ClassStatusOther
	case classStatus3xx:
		return ClassStatus3xx
	case classWrongBody:
		return ClassWrongBody
	case classStreamReset:
		return ClassStreamReset
	case classGoAway:
		return ClassGoAway
	case classCancelled:
		return ClassCancelled
	default:
		return ClassOther
	}
}

// FailureClasses lists the failure classes in the order reports show them.
func FailureClasses() []string {
	out := make([]string, numClasses)
	for c := failureClass(0); c < numClasses; c++ {
		out[c] = c.String()
	}
	return out
}

// Classify tells whether a result failed and, if so, its class. A result
// succeeded when it got a 2xx, no error, and the body the steady phase
// served (loadgen.Succeeded); a cancelled request is not a success either,
// and has the class ClassCancelled (which is never a drop).
func Classify(r *vegeta.Result) (class string, failed bool) {
	c, failed := classify(r)
	if !failed {
		return "", false
	}
	return c.String(), true
}

func classify(r *vegeta.Result) (failureClass, bool) {
	switch {
	case r.Code >= 500:
		return classStatus5xx, true
	case r.Code >= 300 && r.Code < 400:
		return classStatus3xx, true
	case r.Code != 0 && (r.Code < 200 || r.Code >= 400):
		return classStatusOther, true
	case r.Code != 0 && r.Error == "":
		return 0, false
	}
	return classifyError(r.Error), true
}

// serverSide are the classes a server's close, reset or refusal produces.
var serverSide = []string{ClassReset, ClassEOF, ClassRefused}

// classifyError names a transport error. Order matters: a timeout while
// reading is a timeout, not an EOF; a wrong body is named by the load.
func classifyError(msg string) failureClass {
	lower := strings.ToLower(msg)
	switch {
	case loadgen.WrongAnswer(msg):
		return classWrongBody
	case loadgen.Cancelled(msg):
		return classCancelled
	// x/net/http2's StreamError and GoAwayError (and the GOAWAY a
	// request met before it was sent): the server's doing, named before
	// the words their text may quote.
	case strings.Contains(msg, "stream error: stream ID"):
		return classStreamReset
	case strings.Contains(msg, "GOAWAY"):
		return classGoAway
	case strings.Contains(lower, "connection refused"):
		return classRefused
	case strings.Contains(lower, "connection reset by peer"), strings.Contains(lower, "broken pipe"):
		return classReset
	case strings.Contains(lower, "timeout"), strings.Contains(lower, "deadline exceeded"):
		return classTimeout
	case strings.Contains(msg, "EOF"), strings.Contains(lower, "server closed"), strings.Contains(lower, "connection closed"):
		return classEOF
	}
	return classOther
}
