package loadgen

import (
	"net"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BenchmarkResultPath is what every vegeta result costs on its way to disk:
// totals, time base, gob encoding into the message-buffered file.
func BenchmarkResultPath(b *testing.B) {
	f, err := createMsgFile(b.TempDir(), ResultsFile)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	clock := NewClock()
	enc := vegeta.NewEncoder(f)
	pr := &profileRun{p: Profile{Name: "bench"}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &vegeta.Result{Attack: "bench", Seq: uint64(i), Code: 200, Timestamp: time.Now(),
			Latency: time.Millisecond, Method: "GET", URL: "http://127.0.0.1:8080/"}
		pr.add(clock, r)
		prepare(clock, r)
		if err := enc.Encode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// nopConn is a net.Conn that accepts writes and reads nothing.
type nopConn struct{ net.Conn }

func (nopConn) Write(p []byte) (int, error) { return len(p), nil }
func (nopConn) Read(p []byte) (int, error)  { return 0, nil }
func (nopConn) Close() error                { return nil }

// BenchmarkConnAccounting is the per-request accounting on a keep-alive
// connection: the request given the connection (GotConn), written, its
// response completed.
func BenchmarkConnAccounting(b *testing.B) {
	a := newAcct(b)
	c := &trackedConn{Conn: nopConn{}, t: a.tr, id: 1, profile: "bench"}
	req := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		st := &reqTrace{t: a.tr}
		st.gotConn(gotConnInfo(c))
		c.Write(req)
		c.Read(buf)
		st.finish(attemptComplete, nil)
	}
}
