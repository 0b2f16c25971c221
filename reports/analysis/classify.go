package analysis

import (
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
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
		return record.ClassRefused
	case classReset:
		return record.ClassReset
	case classEOF:
		return record.ClassEOF
	case classTimeout:
		return record.ClassTimeout
	case classStatus5xx:
		return record.ClassStatus5xx
	case classStatusOther:
		return record.ClassStatusOther
	case classStatus3xx:
		return record.ClassStatus3xx
	case classWrongBody:
		return record.ClassWrongBody
	case classStreamReset:
		return record.ClassStreamReset
	case classGoAway:
		return record.ClassGoAway
	case classCancelled:
		return record.ClassCancelled
	default:
		return record.ClassOther
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

// ServerSide are the classes a server's close, reset or refusal produces.
var ServerSide = []string{record.ClassReset, record.ClassEOF, record.ClassRefused}

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
	// x/net/http2 closes a connection whose write the server reset, and
	// every other stream in flight on it fails with this text: the
	// server's reset, met by a neighbour (seen under TERM's fast shutdown,
	// beside a "write: connection reset by peer" on the same connection).
	case strings.Contains(msg, "client connection force closed"):
		return classReset
	case strings.Contains(lower, "timeout"), strings.Contains(lower, "deadline exceeded"):
		return classTimeout
	case strings.Contains(msg, "EOF"), strings.Contains(lower, "server closed"), strings.Contains(lower, "connection closed"):
		return classEOF
	}
	return classOther
}
