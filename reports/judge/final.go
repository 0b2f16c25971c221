package judge

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Final judges the final state from what it recorded: the processes
// (Processes), then systemd's view of them (Systemd). Orphans and Wrong
// are recomputed: a verdict rests on the recorded processes, not on what
// the run concluded of them.
func Final(f *record.Final) {
	Processes(f)
	Systemd(f)
}

// Processes says what the processes tell: orphans, lingering masters,
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

// Systemd adds to f.Wrong where systemd's view and the process table
// disagree: systemd believes the service dead while nginx serves (or
// active while nothing serves), its Main PID is not a live master, nginx
// processes live outside the unit's cgroup. Call it after Processes,
// with f.Serving set.
func Systemd(f *record.Final) {
	v := f.Systemd
	if v == nil {
		return
	}
	masters := map[int]bool{}
	for _, p := range f.Processes {
		if p.Role == "master" {
			masters[p.PID] = true
		}
	}
	active := v.ActiveState == "active" || v.ActiveState == "reloading"
	switch {
	case !active && f.Serving:
		f.Wrong = append(f.Wrong, fmt.Sprintf("systemd believes nginx.service %s/%s while nginx serves", v.ActiveState, v.SubState))
	case active && !f.Serving:
		f.Wrong = append(f.Wrong, fmt.Sprintf("systemd believes nginx.service %s/%s while nothing serves", v.ActiveState, v.SubState))
	}
	if active && v.MainPID > 0 && !masters[v.MainPID] {
		f.Wrong = append(f.Wrong, fmt.Sprintf("systemd's Main PID %d is not a live nginx master", v.MainPID))
	} else if active && v.MainPID == 0 && len(masters) > 0 {
		f.Wrong = append(f.Wrong, "systemd has no Main PID for nginx.service while a master runs")
	}
	in := map[int]bool{}
	for _, pid := range v.CgroupPIDs {
		in[pid] = true
	}
	var outside []int
	for _, p := range f.Processes {
		if !in[p.PID] {
			outside = append(outside, p.PID)
		}
	}
	if len(outside) > 0 {
		sort.Ints(outside)
		s := make([]string, len(outside))
		for i, pid := range outside {
			s[i] = fmt.Sprint(pid)
		}
		f.Wrong = append(f.Wrong, fmt.Sprintf("%d nginx process(es) outside nginx.service's cgroup: %s", len(outside), strings.Join(s, ", ")))
	}
}
