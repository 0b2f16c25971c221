package analysis

import (
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// The errors x/net/http2 gives a request the server reset or sent away
// are losses of their own classes, not "other" (which a failed premise
// leaves aside as the client's own doing).
func TestClassifyHTTP2(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{`Get "https://127.0.0.1:8443/": stream error: stream ID 7; INTERNAL_ERROR; received from peer`, record.ClassStreamReset},
		{`Get "https://127.0.0.1:8443/": stream error: stream ID 3; REFUSED_STREAM; received from peer`, record.ClassStreamReset},
		{`Get "https://127.0.0.1:8443/": http2: server sent GOAWAY and closed the connection; LastStreamID=5, ErrCode=NO_ERROR, debug=""`, record.ClassGoAway},
		{`Get "https://127.0.0.1:8443/": http2: Transport received Server's graceful shutdown GOAWAY`, record.ClassGoAway},
		// A neighbour's write met the server's reset: x/net/http2 closed the
		// connection under this stream (measured under TERM, TLS, HTTP/2).
		{`Get "https://secure.example.test/app/orders": http2: client connection force closed via ClientConn.Close`, record.ClassReset},
		// Not the server's: unchanged.
		{`Get "https://127.0.0.1:8443/": context canceled`, record.ClassCancelled},
		{`Get "https://127.0.0.1:8443/": http2: client connection lost`, record.ClassOther},
		{`Get "http://127.0.0.1:8080/": EOF`, record.ClassEOF},
	} {
		if got := classifyError(tc.msg).String(); got != tc.want {
			t.Errorf("classifyError(%q) = %s, want %s", tc.msg, got, tc.want)
		}
	}
}
