package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// A process table that could not be written is a record lost: the trial
// ends in error, and gets no end-of-run marker, rather than leaving the
// report a record that looks whole.
func TestTrialEndsInErrorWhenARecordCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	procs, err := os.Create(filepath.Join(dir, record.ProcessesFile))
	if err != nil {
		t.Fatal(err)
	}
	procs.Close() // every write to it now fails
	tr := &trial{name: "upgrade", dir: dir, procs: procs, clock: loadgen.NewClock()}
	tr.sample("start", 0, nil, proc.Snapshot{Procs: []proc.Process{
		{PID: 9, PPID: 1, State: "S", Cmdline: "nginx: master process /usr/sbin/nginx", Role: proc.RoleMaster, Binary: "old"},
	}})
	err = tr.end(context.Background(), record.Final{})
	if err == nil || !strings.Contains(err.Error(), record.ProcessesFile) {
		t.Fatalf("end = %v, want an error naming %s", err, record.ProcessesFile)
	}
	if _, err := os.Stat(filepath.Join(dir, record.EndFile)); err == nil {
		t.Errorf("%s written although %s is incomplete", record.EndFile, record.ProcessesFile)
	}
}
