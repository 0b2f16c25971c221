package judge

import (
	"fmt"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// judgeProcesses says what the processes tell: orphans, lingering masters,
// a .oldbin left behind, more than one binary serving. It fills f.Orphans
// and f.Wrong.
func Processes(f *record.Final) {
	f.Orphans, f.Wrong = []record.FinalProcess{}, []string{}
	masters := map[int]record.FinalProcess{}
	for _, p := range f.Processes {
		if p.Role == "master" {
			masters[p.PID] = p
		}
	}
	serving := map[string]int{}
	for _, p := range f.Processes {
		if p.Role == "master" {
			continue
		}
		if _, ok := masters[p.PPID]; !ok {
			f.Orphans = append(f.Orphans, p)
			continue
		}
		if p.Role == "worker" {
			serving[p.Binary]++
		}
	}
	if n := len(f.Orphans); n > 0 {
		var pids []string
		for _, o := range f.Orphans {
			pids = append(pids, fmt.Sprintf("%d (%s)", o.PID, o.Role))
		}
		f.Wrong = append(f.Wrong, fmt.Sprintf("%d nginx process(es) whose master is gone: %s", n, strings.Join(pids, ", ")))
	}
	if len(masters) > 1 {
		var ms []string
		for _, p := range f.Processes {
			if p.Role == "master" {
				ms = append(ms, fmt.Sprintf("%d (%s binary, parent %d)", p.PID, p.Binary, p.PPID))
			}
		}
		f.Wrong = append(f.Wrong, fmt.Sprintf("%d masters still running: %s", len(masters), strings.Join(ms, ", ")))
	}
	if f.OldbinPresent {
		f.Wrong = append(f.Wrong, "nginx.pid.oldbin left behind")
	}
	if len(serving) > 1 {
		var bs []string
		for _, b := range []string{"old", "new", "same", "unknown"} {
			if n := serving[b]; n > 0 {
				bs = append(bs, fmt.Sprintf("%s (%d workers)", b, n))
			}
		}
		f.Wrong = append(f.Wrong, "more than one binary serving: "+strings.Join(bs, ", "))
	}
	for _, p := range f.Processes {
		if p.State == "T" {
			f.Wrong = append(f.Wrong, fmt.Sprintf("process %d (%s) is stopped", p.PID, p.Role))
		}
	}
}
