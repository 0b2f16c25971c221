package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
)

// finalFrom reads what a snapshot says of the end state: every nginx
// process with its binary (a worker's is its master's: nginx forks its
// workers and never execs them), the masters, the pid files; and judges
// it (orphans, lingering masters, .oldbin, several binaries serving).
func finalFrom(s proc.Snapshot) reports.Final {
	f := reports.Final{CheckErrors: []string{}, ServingBinary: "none", Processes: []reports.FinalProcess{}}
	binaryOf := map[int]string{}
	for _, m := range s.Masters() {
		binaryOf[m.PID] = m.Binary
	}
	for _, p := range s.Procs {
		if p.Role == proc.RoleOther || !p.Alive() {
			continue
		}
		fp := reports.FinalProcess{PID: p.PID, PPID: p.PPID, Role: string(p.Role), State: p.State, Binary: p.Binary}
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
	f.Judge()
	return f
}

// servingBinary is the binary of the master nginx.pid names.
func servingBinary(s proc.Snapshot) string {
	if p, ok := s.Proc(s.PidFile); ok && p.Role == proc.RoleMaster {
		return p.Binary
	}
	return "none"
}

// finalState reads the end state and checks it against what the scenario
// must end on.
func finalState(ctx context.Context, node *nginx.Node, sc Scenario, start proc.Snapshot) reports.Final {
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
		return reports.Final{ExpectedBinary: sc.Final.Binary, ServingBinary: "unknown",
			CheckErrors: []string{"could not read the process table: " + err.Error()}}
	}
	f := finalFrom(s)
	f.ExpectedBinary = sc.Final.Binary
	f.Serving = node.Probe(ctx) == nil
	if sc.Final.Loose {
		// A fault changed what the end looks like, as measured: the binary
		// that serves, that nginx serves, and whether orphans are left.
		if b := servingBinary(s); b != sc.Final.Binary && b != "same" {
			f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want the %s binary serving at the end, nginx.pid's master runs the %s one", sc.Final.Binary, b))
		}
		if (len(f.Orphans) > 0) != sc.Final.Orphans {
			f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("orphans expected: %t, found %d", sc.Final.Orphans, len(f.Orphans)))
		}
		if !f.Serving {
			f.CheckErrors = append(f.CheckErrors, "nginx does not serve at the end")
		}
		return f
	}
	if f.Masters != 1 {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want one master at the end, saw %d: %s", f.Masters, s))
	}
	if f.ServingBinary != sc.Final.Binary && !(f.ServingBinary == "same") {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want the %s binary serving at the end, the master runs the %s one", sc.Final.Binary, f.ServingBinary))
	}
	if f.OldbinPresent {
		f.CheckErrors = append(f.CheckErrors, "nginx.pid.oldbin still present at the end")
	}
	if len(f.Orphans) > 0 {
		f.CheckErrors = append(f.CheckErrors, f.Wrong[0])
	}
	if sc.Final.PidFileOld && s.PidFile != start.PidFile {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want nginx.pid to hold the original master %d at the end, it holds %d", start.PidFile, s.PidFile))
	}
	if !sc.Final.PidFileOld && f.Masters == 1 && s.PidFile != s.Masters()[0].PID {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("nginx.pid holds %d, the master is %d", s.PidFile, s.Masters()[0].PID))
	}
	if !f.Serving {
		f.CheckErrors = append(f.CheckErrors, "nginx does not serve at the end")
	}
	return f
}
