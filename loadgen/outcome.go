package loadgen

import (
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// DownloadCancelled is DownloadRecord.Error for a long download the client
// cancelled (the load stopping): the client's doing, not a drop.
const DownloadCancelled = "cancelled"

// errWrongAnswerPrefix starts the error of a response whose status or body
// differs from what the steady phase served (see bodyCheck).
const errWrongAnswerPrefix = "loadgen: wrong answer: "

// Succeeded tells whether a result is a request served as the steady phase
// served it: no error and a 2xx status. A redirect is not success: the load
// never follows one, and a 3xx mid-upgrade is a wrong answer.
func Succeeded(r *vegeta.Result) bool {
	return r.Error == "" && r.Code >= 200 && r.Code < 300
}

// Cancelled tells whether a request's error says the client gave up on it
// (its context was cancelled as the load stopped): not the server's doing,
// never a drop. A client timeout is not a cancellation.
func Cancelled(errMsg string) bool {
	if errMsg == "" || strings.Contains(errMsg, "Timeout exceeded") || strings.Contains(errMsg, "deadline exceeded") {
		return false
	}
	return strings.Contains(errMsg, "context canceled") || strings.Contains(errMsg, "request canceled")
}

// WrongAnswer tells whether a request's error says its body differed from
// the steady phase's.
func WrongAnswer(errMsg string) bool {
	return strings.HasPrefix(errMsg, errWrongAnswerPrefix) || strings.Contains(errMsg, ": "+errWrongAnswerPrefix)
}
