package scenarios

import (
	"context"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// finalFrom reads what a snapshot says of the end state: every nginx
// process with its binary (a worker's is its master's: nginx forks its
// workers and never execs them), the masters, the pid files. It records;
// judge.Final says what is wrong with it.
func finalFrom(s proc.Snapshot) record.Final {
	f := record.Final{CheckErrors: []string{}, ServingBinary: "none", Processes: []record.FinalProcess{}}
	binaryOf := map[int]string{}
	for _, m := range s.Masters() {
		binaryOf[m.PID] = m.Binary
	}
	for _, p := range s.Procs {
		if p.Role == proc.RoleOther || !p.Alive() {
			continue
		}
		fp := record.FinalProcess{PID: p.PID, PPID: p.PPID, Role: string(p.Role), State: p.State, Binary: p.Binary}
		if p.Role != proc.RoleMaster {
			fp.Binary = "unknown"
			if b, ok := binaryOf[p.PPID]; ok {
				fp.Binary = b
			}
		}
		if fp.Binary == "" {
			fp.Binary = "unknown"
		}
		f.Processes = append(f.Processes, fp)
	}
	f.Masters = len(s.Masters())
	f.PIDFilePID = s.PidFile
	f.OldbinPresent = s.OldbinSet
	switch {
	case f.Masters == 1:
		m := s.Masters()[0]
		f.ServingBinary = m.Binary
		f.Workers = len(s.Workers(m.PID))
	case f.Masters > 1:
		f.ServingBinary = "unknown"
		for _, m := range s.Masters() {
			f.Workers += len(s.Workers(m.PID))
		}
	}
	return f
}

// finalState reads the end state and has the judge hold it against what
// the scenario must end on (final.json keeps the judge's word beside the
// processes: the original master's pid is known only here).
func finalState(ctx context.Context, node *nginx.Node, sc Scenario, start proc.Snapshot) record.Final {
	var s proc.Snapshot
	var err error
	// A master that just respawned workers may need a moment.
	for i := 0; i < 20; i++ {
		if s, err = node.Snapshot(ctx); err == nil && len(s.Masters()) == 1 && len(s.Workers(s.PidFile)) > 0 {
			break
		}
		if harness.IsDockerFault(err) {
			break // the container's state will not improve by asking again
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return record.Final{ExpectedBinary: sc.Final.Binary, ServingBinary: "unknown", StartPIDFilePID: start.PidFile,
			CheckErrors: []string{"could not read the process table: " + err.Error()}}
	}
	f := finalFrom(s)
	f.ExpectedBinary = sc.Final.Binary
	f.StartPIDFilePID = start.PidFile
	f.Serving = node.Probe(ctx) == nil
	judge.Final(&f)
	judge.FinalChecks(&f, judge.FinalWant{Binary: sc.Final.Binary, Loose: sc.Final.Loose, Orphans: sc.Final.Orphans, PidFileOld: sc.Final.PidFileOld},
		judge.FinalSeen{StartPidFile: start.PidFile, Table: s.String()})
	return f
}
