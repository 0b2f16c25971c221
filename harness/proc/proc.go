package proc

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Role is what a process is to nginx.
type Role string

const (
	RoleMaster       Role = "master"
	RoleWorker       Role = "worker"
	RoleShuttingDown Role = "worker-shutting-down"
	RoleHelper       Role = "helper" // cache manager/loader
	RoleOther        Role = "other"
)

// Process is one row of the container's process table, read from /proc.
type Process struct {
	PID     int    `json:"pid"`
	PPID    int    `json:"ppid"`
	State   string `json:"state"` // the /proc/PID/stat state letter: Z is a zombie
	Cmdline string `json:"cmdline"`
	Exe     string `json:"exe,omitempty"`    // readlink /proc/PID/exe (masters only: workers run as another user)
	SHA256  string `json:"sha256,omitempty"` // of /proc/PID/exe, masters only: the binary identity
	Binary  string `json:"binary,omitempty"` // "old", "new" or "unknown", from SHA256
	Role    Role   `json:"role"`
}

// Alive is false for a zombie or a dead process: a zombie is not a live process.
func (p Process) Alive() bool { return p.State != "Z" && p.State != "X" && p.State != "x" }

// Snapshot is what the driver sees of nginx at one moment: the process table,
// the pid files and the size of the error log.
type Snapshot struct {
	Procs     []Process `json:"procs"`
	PidFile   int       `json:"pid_file"`   // pid in nginx.pid, 0 when absent
	Oldbin    int       `json:"oldbin"`     // pid in nginx.pid.oldbin, 0 when absent
	LogSize   int64     `json:"log_size"`   // bytes in the error log
	OldbinSet bool      `json:"oldbin_set"` // nginx.pid.oldbin exists
}

// Script prints the pid files, the error log size and the process
// table. It is a constant: the paths arrive as positional parameters, never
// spliced into the script text. The driver runs it several times a second
// while it waits for a step, so it forks as little as it can: the pid files
// and each stat are read by the shell's own read, one tr per process turns
// the cmdline's NULs into spaces (Parse cuts it to maxCmdline).
const Script = `pf="$1"; el="$2"
if [ -e "$pf" ]; then v=""; read -r v < "$pf" 2>/dev/null; printf 'pidfile\t%s\n' "$v"; fi
if [ -e "$pf.oldbin" ]; then v=""; read -r v < "$pf.oldbin" 2>/dev/null; printf 'oldbin\t%s\n' "$v"; fi
printf 'logsize\t%s\n' "$(stat -c %s "$el" 2>/dev/null || echo 0)"
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  { read -r st < "$d/stat"; } 2>/dev/null || continue
  cl=$(tr '\0\n\t' '   ' < "$d/cmdline" 2>/dev/null)
  ex=""; sum=""
  case "$cl" in
    "nginx: master"*) ex=$(readlink "$d/exe" 2>/dev/null); sum=$(sha256sum "$d/exe" 2>/dev/null); sum=${sum%% *};;
  esac
  printf 'proc\t%s\t%s\t%s\t%s\t%s\n' "$p" "$sum" "$ex" "$cl" "$st"
done
`

// maxCmdline is how much of a cmdline a Process keeps.
const maxCmdline = 200

// Parse reads Script's output.
func Parse(out string) (Snapshot, error) {
	var s Snapshot
	sawLogSize := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 6)
		switch f[0] {
		case "pidfile":
			s.PidFile, _ = strconv.Atoi(strings.TrimSpace(f[1]))
		case "oldbin":
			s.OldbinSet = true
			if len(f) > 1 {
				s.Oldbin, _ = strconv.Atoi(strings.TrimSpace(f[1]))
			}
		case "logsize":
			sawLogSize = true
			s.LogSize, _ = strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		case "proc":
			if len(f) != 6 {
				return s, fmt.Errorf("process table: malformed line %q", sc.Text())
			}
			p, err := parseProc(f[1], f[2], f[3], f[4], f[5])
			if err != nil {
				return s, err
			}
			s.Procs = append(s.Procs, p)
		}
	}
	sort.Slice(s.Procs, func(i, j int) bool { return s.Procs[i].PID < s.Procs[j].PID })
	if err := sc.Err(); err != nil {
		return s, err
	}
	if !sawLogSize {
		// The script always prints it: output without it is a read that
		// did not happen (an exec refused or cut short), never "no nginx".
		return Snapshot{}, fmt.Errorf("process table: incomplete output (%d bytes)", len(out))
	}
	return s, nil
}

func parseProc(pid, sum, exe, cmdline, stat string) (Process, error) {
	if len(cmdline) > maxCmdline {
		cmdline = cmdline[:maxCmdline]
	}
	p := Process{SHA256: sum, Exe: exe, Cmdline: strings.TrimSpace(cmdline)}
	var err error
	if p.PID, err = strconv.Atoi(pid); err != nil {
		return p, fmt.Errorf("process table: bad pid %q", pid)
	}
	// stat is "pid (comm) S ppid …"; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return p, fmt.Errorf("process table: bad stat for %d: %q", p.PID, stat)
	}
	rest := strings.Fields(stat[i+1:])
	if len(rest) < 2 {
		return p, fmt.Errorf("process table: short stat for %d: %q", p.PID, stat)
	}
	p.State = rest[0]
	if p.PPID, err = strconv.Atoi(rest[1]); err != nil {
		return p, fmt.Errorf("process table: bad ppid for %d: %q", p.PID, stat)
	}
	if p.Cmdline == "" { // a zombie has no cmdline: fall back to comm
		if j := strings.IndexByte(stat, '('); j >= 0 && j < i {
			p.Cmdline = stat[j+1 : i]
		}
	}
	p.Role = roleOf(p.Cmdline)
	return p, nil
}

func roleOf(cmdline string) Role {
	switch {
	case strings.HasPrefix(cmdline, "nginx: master process"):
		return RoleMaster
	case strings.HasPrefix(cmdline, "nginx: worker process is shutting down"):
		return RoleShuttingDown
	case strings.HasPrefix(cmdline, "nginx: worker process"):
		return RoleWorker
	case strings.HasPrefix(cmdline, "nginx: cache"):
		return RoleHelper
	}
	return RoleOther
}

// Proc returns the live process with that pid.
func (s Snapshot) Proc(pid int) (Process, bool) {
	for _, p := range s.Procs {
		if p.PID == pid && p.Alive() {
			return p, true
		}
	}
	return Process{}, false
}

// Masters are the live nginx masters.
func (s Snapshot) Masters() []Process {
	return s.filter(func(p Process) bool { return p.Role == RoleMaster })
}

// Workers are the live workers of master that still accept (not shutting down).
func (s Snapshot) Workers(master int) []Process {
	return s.filter(func(p Process) bool { return p.PPID == master && p.Role == RoleWorker })
}

// Draining are the live workers of master that are shutting down.
func (s Snapshot) Draining(master int) []Process {
	return s.filter(func(p Process) bool { return p.PPID == master && p.Role == RoleShuttingDown })
}

// IsMaster tells whether pid is a live nginx master.
func (s Snapshot) IsMaster(pid int) bool {
	p, ok := s.Proc(pid)
	return ok && p.Role == RoleMaster
}

func (s Snapshot) filter(keep func(Process) bool) []Process {
	var out []Process
	for _, p := range s.Procs {
		if p.Alive() && keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// String is a compact table for error messages: what was seen.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nginx.pid=%s nginx.pid.oldbin=%s; processes:", pidOrAbsent(s.PidFile, s.PidFile != 0), pidOrAbsent(s.Oldbin, s.OldbinSet))
	n := 0
	for _, p := range s.Procs {
		if p.Role == RoleOther {
			continue
		}
		n++
		bin := ""
		if p.Binary != "" {
			bin = " [" + p.Binary + " binary]"
		}
		fmt.Fprintf(&b, " %d(ppid %d, %s, %s%s)", p.PID, p.PPID, p.State, p.Role, bin)
	}
	if n == 0 {
		b.WriteString(" no nginx process")
	}
	return b.String()
}

func pidOrAbsent(pid int, present bool) string {
	if !present {
		return "absent"
	}
	return strconv.Itoa(pid)
}
