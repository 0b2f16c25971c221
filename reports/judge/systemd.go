package judge

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// judgeSystemd adds to f.Wrong where systemd's view and the process table
// disagree: systemd believes the service dead while nginx serves (or
// active while nothing serves), its Main PID is not a live master, nginx
// processes live outside the unit's cgroup. Call it after judgeProcesses,
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
