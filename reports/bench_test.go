package reports

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/tsenart/vegeta/v12/lib"
)

// writeLargeRun writes a run of n results at 1000 req/s with three steps,
// streaming them to disk as loadgen does.
func writeLargeRun(b *testing.B, n int) string {
	b.Helper()
	runDir := b.TempDir()
	f := upgradeFixture()
	f.meta.Load.Rate = 1000
	total := float64(n) // ms at 1000 req/s
	f.events[0].SentMs, f.events[0].VerifiedMs = total*0.25, total*0.25+150
	f.events[1].SentMs, f.events[1].VerifiedMs = total*0.5, total*0.5+80
	f.events[2].SentMs, f.events[2].VerifiedMs = total*0.75, total*0.75+300
	f.results = nil
	f.omit = []string{loadgen.ResultsFile}
	f.retries = []record.RetryRecord{{Ms: total * 0.3, Attempts: 2, Written: true, OK: true}}
	dir := writeFixture(b, runDir, "upgrade", f)

	out, err := os.Create(filepath.Join(dir, loadgen.ResultsFile))
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	enc := vegeta.NewEncoder(bw)
	r := vegeta.Result{Attack: "load", Method: "GET", URL: "http://127.0.0.1:8080/", BytesIn: 612}
	for i := range n {
		r.Seq = uint64(i)
		r.Timestamp = testStart.Add(time.Duration(i) * time.Millisecond)
		r.Latency = time.Duration(300+i%700) * time.Microsecond
		r.Code, r.Error = 200, ""
		if i%50_000 == 0 {
			r.Code, r.Error = 0, "EOF"
		}
		if err := enc.Encode(&r); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return runDir
}

// BenchmarkRender1M builds and writes all three reports from 1,000,000
// results; peak-heap-MB shows that memory stays flat (the results are
// streamed, never held).
func BenchmarkRender1M(b *testing.B) {
	const n = 1_000_000
	runDir := writeLargeRun(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	var peak uint64
	for b.Loop() {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		r, err := Build(runDir)
		if err != nil {
			b.Fatal(err)
		}
		if got := r.Scenarios[0].Requests.Total; got != n {
			b.Fatalf("requests = %d, want %d", got, n)
		}
		if err := render.WriteAll(runDir, r); err != nil {
			b.Fatal(err)
		}
		close(done)
		wg.Wait()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
