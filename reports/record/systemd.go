package record

import (
	"fmt"
)

// Init systems a procedure ran under (Procedure.Init).
const (
	InitDocker  = "docker-init" // Docker's init as PID 1, nginx started by the harness
	InitSystemd = "systemd"     // systemd as PID 1, nginx its nginx.service
)

// SystemdView is what systemd believes of nginx.service: `systemctl show`
// and the pids in the unit's cgroup (harness/nginx reads it, a compare
// record keeps it before the procedure and at the end).
type SystemdView struct {
	MainPID     int    `json:"main_pid"`
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	Result      string `json:"result"`
	NRestarts   int    `json:"n_restarts"`
	// ControlGroup is the unit's cgroup; CgroupPIDs the processes in it.
	ControlGroup string `json:"control_group"`
	CgroupPIDs   []int  `json:"cgroup_pids"`
}

// String is the view in one line, for a report.
func (v SystemdView) String() string {
	return fmt.Sprintf("%s/%s, MainPID %d, result %s, %d restart(s), %d pid(s) in its cgroup",
		v.ActiveState, v.SubState, v.MainPID, v.Result, v.NRestarts, len(v.CgroupPIDs))
}
