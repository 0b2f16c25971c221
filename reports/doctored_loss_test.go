package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// (c) Server-side losses are never hidden behind error: an error.txt or a
// failed premise beside them keeps the scenario fail, the premise kept as
// "also: …".
func TestDoctoredLossBesideError(t *testing.T) {
	const phase = "old-workers-draining"
	cases := []struct {
		name    string
		errMsg  string // the doctored request's error
		class   string
		premise func(t *testing.T, dir string) // what fails beside it
		also    string                         // the premise's reason, in part
	}{
		{
			name:   "reset beside error.txt",
			errMsg: `Get "http://127.0.0.1:8080/": read tcp 127.0.0.1:40000->127.0.0.1:8080: read: connection reset by peer`,
			class:  record.ClassReset,
			premise: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, record.ErrorFile), []byte("quit-old-master: docker exec: context deadline exceeded\n"), 0o644)
			},
			also: "could not run",
		},
		{
			name:   "HTTP/2 RST_STREAM beside a missing end marker",
			errMsg: `Get "https://127.0.0.1:8443/": stream error: stream ID 7; INTERNAL_ERROR; received from peer`,
			class:  record.ClassStreamReset,
			premise: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, record.EndFile)); err != nil {
					t.Fatal(err)
				}
			},
			also: record.EndFile,
		},
		{
			name:   "HTTP/2 GOAWAY beside error.txt",
			errMsg: `Get "https://127.0.0.1:8443/": http2: server sent GOAWAY and closed the connection; LastStreamID=5, ErrCode=NO_ERROR, debug=""`,
			class:  record.ClassGoAway,
			premise: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, record.ErrorFile), []byte("the load was cut at the trial's planned duration\n"), 0o644)
			},
			also: "could not run",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, dir := copyRealRun(t)
			failOneIn(t, dir, phase, c.errMsg)
			c.premise(t, dir)
			s := judged(t, dir)
			if s.Verdict != record.VerdictFail {
				t.Fatalf("verdict %s, want fail: a loss by the server is hidden behind the premise (reasons %q)", s.Verdict, s.Reasons)
			}
			want := "1 request failed server-side in " + phase + " (" + c.class + ": 1)"
			if len(naming(s.Reasons, want)) != 1 {
				t.Errorf("want the reason %q, reasons %q", want, s.Reasons)
			}
			also := false
			for _, r := range s.Reasons {
				also = also || strings.HasPrefix(r, "also: ") && strings.Contains(r, c.also)
			}
			if !also {
				t.Errorf("the failed premise (%s) is not kept beside the loss: %q", c.also, s.Reasons)
			}
		})
	}
}
