package judge

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Final judges the final state from what it recorded: the processes, then
// systemd's view of them. It fills f.Orphans and f.Wrong afresh, so a
// verdict rests on the recorded processes, not on what the run concluded
// of them. Call it with f.Serving set.
func Final(f *record.Final) {
	processes(f)
	systemd(f)
}

// processes says what the processes tell: orphans, lingering masters,
// a .oldbin left behind, more than one binary serving. It fills f.Orphans
// and f.Wrong.
func processes(f *record.Final) {
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

// systemd adds to f.Wrong where systemd's view and the process table
// disagree: systemd believes the service dead while nginx serves (or
// active while nothing serves), its Main PID is not a live master, nginx
// processes live outside the unit's cgroup. Call it after processes,
// with f.Serving set.
func systemd(f *record.Final) {
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

// FinalWant is what a scenario must end on.
type FinalWant struct {
	Binary string // the binary that must serve: old or new (a master running "same" serves either)
	// Loose: a fault changed what the end looks like; only the binary
	// nginx.pid's master runs, whether nginx serves, and whether orphans
	// are left (Orphans) are held.
	Loose      bool
	Orphans    bool
	PidFileOld bool // nginx.pid must still name the master it named at the start
}

// FinalSeen is what the run saw of the end beyond final.json's fields.
type FinalSeen struct {
	StartPidFile int    // the master nginx.pid named before the first step
	Table        string // the process table at the end, in words, for a reason
}

// FinalChecks holds f against what the scenario must end on and adds what
// does not hold to f.CheckErrors. Call it after Final.
func FinalChecks(f *record.Final, want FinalWant, seen FinalSeen) {
	if want.Loose {
		if b := pidFileBinary(f); b != want.Binary && b != "same" {
			f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want the %s binary serving at the end, nginx.pid's master runs the %s one", want.Binary, b))
		}
		if (len(f.Orphans) > 0) != want.Orphans {
			f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("orphans expected: %t, found %d", want.Orphans, len(f.Orphans)))
		}
		if !f.Serving {
			f.CheckErrors = append(f.CheckErrors, "nginx does not serve at the end")
		}
		return
	}
	if f.Masters != 1 {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want one master at the end, saw %d: %s", f.Masters, seen.Table))
	}
	if f.ServingBinary != want.Binary && !(f.ServingBinary == "same") {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want the %s binary serving at the end, the master runs the %s one", want.Binary, f.ServingBinary))
	}
	if f.OldbinPresent {
		f.CheckErrors = append(f.CheckErrors, "nginx.pid.oldbin still present at the end")
	}
	if len(f.Orphans) > 0 && len(f.Wrong) > 0 {
		f.CheckErrors = append(f.CheckErrors, f.Wrong[0])
	}
	if want.PidFileOld && f.PIDFilePID != seen.StartPidFile {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("want nginx.pid to hold the original master %d at the end, it holds %d", seen.StartPidFile, f.PIDFilePID))
	}
	if m, ok := onlyMaster(f); !want.PidFileOld && ok && f.PIDFilePID != m {
		f.CheckErrors = append(f.CheckErrors, fmt.Sprintf("nginx.pid holds %d, the master is %d", f.PIDFilePID, m))
	}
	if !f.Serving {
		f.CheckErrors = append(f.CheckErrors, "nginx does not serve at the end")
	}
}

// Recheck recomputes final.json's check_errors in the checker: from the
// recorded processes, held against what the scenario must end on (want,
// meta.json's final_want), not taken from the runner's word. Only what
// the runner could not read ("could not read …") is kept of its errors.
// startMaster is the master nginx.pid named at the start when final.json
// does not say (the one master of the first process table; 0: unknown,
// and nginx.pid's is then not checked). Without want (a record made
// before it) the runner's check_errors stand, and the note says so.
func Recheck(f *record.Final, want *record.FinalPlan, startMaster int) (note string) {
	if want == nil {
		return "meta.json has no final_want (a record written before it was): final.json's check_errors are the runner's, not recomputed from its processes"
	}
	var kept []string
	for _, e := range f.CheckErrors {
		if strings.HasPrefix(e, "could not read") {
			kept = append(kept, e)
		}
	}
	if f.Processes == nil {
		return "" // no processes recorded: nothing to recompute from
	}
	f.CheckErrors = kept
	if len(kept) > 0 {
		return "" // the processes were not read: nothing to recompute
	}
	Final(f) // Orphans and Wrong from the processes, whatever the file said
	f.ExpectedBinary = want.Binary
	start := f.StartPIDFilePID
	if start == 0 {
		start = startMaster
	}
	w := FinalWant{Binary: want.Binary, Loose: want.Loose, Orphans: want.Orphans, PidFileOld: want.PidFileOld && start > 0}
	FinalChecks(f, w, FinalSeen{StartPidFile: start, Table: table(f)})
	if f.CheckErrors == nil {
		f.CheckErrors = []string{}
	}
	return ""
}

// table is the final processes in words, for a reason.
func table(f *record.Final) string {
	var ps []string
	for _, p := range f.Processes {
		ps = append(ps, fmt.Sprintf("%d %s (parent %d, %s binary)", p.PID, p.Role, p.PPID, p.Binary))
	}
	return "pid file " + fmt.Sprint(f.PIDFilePID) + "; " + strings.Join(ps, ", ")
}

// pidFileBinary is the binary of the master nginx.pid names ("none" when
// it names no master).
func pidFileBinary(f *record.Final) string {
	for _, p := range f.Processes {
		if p.PID == f.PIDFilePID && p.Role == "master" {
			return p.Binary
		}
	}
	return "none"
}

// onlyMaster is the master's pid when exactly one runs.
func onlyMaster(f *record.Final) (int, bool) {
	if f.Masters != 1 {
		return 0, false
	}
	for _, p := range f.Processes {
		if p.Role == "master" {
			return p.PID, true
		}
	}
	return 0, false
}
