package reports

import (
	"fmt"
	"sort"
	"strings"
)

// Init systems a procedure ran under (Procedure.Init).
const (
	InitDocker  = "docker-init" // Docker's init as PID 1, nginx started by the harness
	InitSystemd = "systemd"     // systemd as PID 1, nginx its nginx.service
)

// SystemdView is what systemd believed of nginx.service at the end:
// `systemctl show` and the pids in the unit's cgroup.
type SystemdView struct {
	MainPID      int    `json:"main_pid"`
	ActiveState  string `json:"active_state"`
	SubState     string `json:"sub_state"`
	Result       string `json:"result"`
	NRestarts    int    `json:"n_restarts"`
	ControlGroup string `json:"control_group"`
	CgroupPIDs   []int  `json:"cgroup_pids"`
}

// String is the view in one line, for a report.
func (v SystemdView) String() string {
	return fmt.Sprintf("%s/%s, MainPID %d, result %s, %d restart(s), %d pid(s) in its cgroup",
		v.ActiveState, v.SubState, v.MainPID, v.Result, v.NRestarts, len(v.CgroupPIDs))
}

// JudgeSystemd adds to Wrong where systemd's view and the process table
// disagree: systemd believes the service dead while nginx serves (or
// active while nothing serves), its Main PID is not a live master, nginx
// processes live outside the unit's cgroup. Call it after Judge, with
// Serving set.
func (f *Final) JudgeSystemd() {
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
