package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// fuzzedFiles are the files of a scenario's record the fuzzer writes, in
// the order of FuzzReport's arguments: everything the readers and the
// judge read.
var fuzzedFiles = []string{
	record.MetaFile, record.EventsFile, loadgen.ResultsFile, loadgen.DownloadsFile, loadgen.ConnectionsFile,
	record.RetriesFile, record.FinalFile, record.EndFile, record.WitnessFile, record.ServerLogFile, record.ProcessesFile, record.FaultsFile, record.ErrorFile,
	record.ErrorLogFile,
}

// reportDeadline is how long one record may take to be judged and rendered
// before the fuzzer calls it a hang (the real run's takes under 0.1 s).
const reportDeadline = 10 * time.Second

// FuzzReport runs what `report DIR` runs — the record readers, the judge
// and the renderers (Render) — on a scenario record whose every file the
// fuzzer may change, seeded from a real run's record, whole and thinned.
// No input may make it panic, hang, or fail to write a report.
func FuzzReport(f *testing.F) {
	dir := filepath.Join(realRun, "upgrade")
	whole := make([][]byte, len(fuzzedFiles))
	for i, name := range fuzzedFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			f.Fatal(err)
		}
		whole[i] = data
	}
	runJSON, err := os.ReadFile(filepath.Join(realRun, record.PlanFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(runJSON, whole[0], whole[1], whole[2], whole[3], whole[4], whole[5], whole[6], whole[7], whole[8], whole[9], whole[10], whole[11], whole[12], whole[13])
	thin := thinRecord(f, dir, whole)
	f.Add(runJSON, thin[0], thin[1], thin[2], thin[3], thin[4], thin[5], thin[6], thin[7], thin[8], thin[9], thin[10], thin[11], thin[12], thin[13])
	// As a run of today writes it: run.json's plan, its digest in meta.json,
	// and the whole error log with a crash in it.
	var m record.Meta
	if err := json.Unmarshal(whole[0], &m); err != nil {
		f.Fatal(err)
	}
	plan := record.PlanOf(m)
	plan.Source = record.PlanCatalogue
	plan = plan.Sealed()
	m.PlanDigest = plan.Digest
	planned, _ := json.Marshal(record.RunPlan{Repeat: 1, Scenarios: []string{"upgrade"}, Plans: []record.ScenarioPlan{plan}})
	meta, _ := json.Marshal(m)
	crash := []byte("2026/12/06 18:27:16 [alert] 154#154: worker process 157 exited on signal 11 (core dumped)\n")
	f.Add(planned, meta, thin[1], thin[2], thin[3], thin[4], thin[5], thin[6], thin[7], thin[8], thin[9], thin[10], thin[11], thin[12], crash)

	f.Fuzz(func(t *testing.T, runJSON, meta, events, results, downloads, connections, retries, final, end, witness, serverLog, processes, faults, errorTxt, errorLog []byte) {
		run := t.TempDir()
		sdir := filepath.Join(run, "upgrade")
		if err := os.Mkdir(sdir, 0o755); err != nil {
			t.Fatal(err)
		}
		// An empty run.json stands for none: a run directory without one.
		// One that does not decode stops `report` with an error naming it
		// (BuildRun: nothing says what the run was), and one that plans
		// repeats or a baseline looks for their folders: neither is a hang
		// or a panic. The plans it holds are what is fuzzed here.
		var rp record.RunPlan
		if trimmed := bytes.TrimSpace(runJSON); len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(runJSON, &rp) == nil && !rp.Layout() {
			if err := os.WriteFile(filepath.Join(run, record.PlanFile), runJSON, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for i, data := range [][]byte{meta, events, results, downloads, connections, retries, final, end, witness, serverLog, processes, faults, errorTxt, errorLog} {
			// An empty witness.json or error.txt stands for one that is
			// not there: their presence means something.
			if len(data) == 0 && (fuzzedFiles[i] == record.WitnessFile || fuzzedFiles[i] == record.ErrorFile || fuzzedFiles[i] == record.ErrorLogFile) {
				continue
			}
			if err := os.WriteFile(filepath.Join(sdir, fuzzedFiles[i]), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		type outcome struct {
			err   error
			panic any
		}
		done := make(chan outcome, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- outcome{panic: p}
				}
			}()
			_, err := Render(run)
			done <- outcome{err: err}
		}()
		select {
		case o := <-done:
			if o.panic != nil {
				t.Fatalf("report panicked: %v", o.panic)
			}
			if o.err != nil {
				t.Fatalf("report wrote no report: %v", o.err)
			}
		case <-time.After(reportDeadline):
			t.Fatalf("report did not finish in %s: a hang", reportDeadline)
		}
	})
}

// thinRecord is the real record with one result, log line and connection
// in ten: the same shape across every phase, small enough for the fuzzer
// to mutate quickly.
func thinRecord(f *testing.F, dir string, whole [][]byte) [][]byte {
	thin := append([][]byte(nil), whole...)
	for i, name := range fuzzedFiles {
		switch name {
		case loadgen.ConnectionsFile, record.ServerLogFile:
			var kept [][]byte
			for n, line := range bytes.SplitAfter(whole[i], []byte("\n")) {
				if n%10 == 0 {
					kept = append(kept, line)
				}
			}
			thin[i] = bytes.Join(kept, nil)
		case loadgen.ResultsFile:
			file, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				f.Fatal(err)
			}
			dec := vegeta.NewDecoder(file)
			var buf bytes.Buffer
			enc := vegeta.NewEncoder(&buf)
			for n := 0; ; n++ {
				var r vegeta.Result
				if dec.Decode(&r) != nil {
					break
				}
				if n%10 == 0 {
					enc.Encode(&r)
				}
			}
			file.Close()
			thin[i] = buf.Bytes()
		}
	}
	return thin
}
