package nginx

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// Sim is a simulated nginx: a process table, pid files and an error log
// that react to USR2, WINCH, HUP, QUIT, TERM, KILL, STOP and CONT as
// nginx's master does (procedure.md). The driver, step lists, procedures
// and faults are unit-tested against it in milliseconds, without Docker; it
// complements the live tests, never replaces them: what it does was first
// measured on real nginx.
type Sim struct {
	mu      sync.Mutex
	procs   map[int]*simProc
	nextPID int
	pidFile int // 0: absent
	oldbin  int // 0: absent
	log     []string
	logSize int64
	disk    string      // the binary at the path nginx runs from: "old", "new" or "broken"
	workers int         // worker_processes
	frozen  bool        // Freeze: every process stopped, execs refused
	config  []byte      // nginx.conf on disk, read on HUP and USR2
	gen     map[int]int // generation (GenerationHeader) each master's workers serve

	// DrainPolls is how many snapshots a worker that is shutting down
	// lingers before it exits (its requests draining); 0: at once.
	DrainPolls int
	// Foreground makes the first master keep the parent that started it
	// (`daemon off;`): nginx then ignores USR2.
	Foreground bool
	// SignalErr, when set, fails every Signal call (a Docker exec that
	// failed): the signal is not delivered.
	SignalErr error
}

type simProc struct {
	pid, ppid  int
	role       proc.Role
	binary     string
	drainLeft  int
	quitting   bool     // a master told to QUIT: it exits once its workers have
	stopped    bool     // SIGSTOP: signals wait for SIGCONT
	pending    []string // signals received while stopped
	foreground bool     // a master whose parent is still its starter
}

// NewSim starts a simulated nginx on the old binary: a master (pid 10)
// with workers workers.
func NewSim(workers int) *Sim {
	s := &Sim{procs: map[int]*simProc{}, nextPID: 10, disk: "old", workers: workers, gen: map[int]int{},
		config: []byte(fmt.Sprintf("worker_processes %d;\nhttp {\n    server {\n    }\n}\n", workers))}
	m := s.spawn(1, proc.RoleMaster, "old")
	s.pidFile = m.pid
	s.startWorkers(m)
	return s
}

func (s *Sim) spawn(ppid int, role proc.Role, binary string) *simProc {
	p := &simProc{pid: s.nextPID, ppid: ppid, role: role, binary: binary}
	s.nextPID++
	s.procs[p.pid] = p
	return p
}

func (s *Sim) startWorkers(m *simProc) {
	for range s.workers {
		s.spawn(m.pid, proc.RoleWorker, m.binary)
	}
}

func (s *Sim) logf(level, format string, args ...any) {
	l := fmt.Sprintf("2026/01/01 00:00:00 [%s] %d#%d: %s", level, 0, 0, fmt.Sprintf(format, args...))
	s.log = append(s.log, l)
	s.logSize += int64(len(l) + 1)
}

// InstallBinary puts a staged binary at the path nginx runs from.
func (s *Sim) InstallBinary(ctx context.Context, staged string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch staged {
	case harness.NewBinaryStage:
		if s.disk != "broken" {
			s.disk = "new"
		}
	case harness.OldBinaryStage:
		s.disk = "old"
	default:
		return fmt.Errorf("install %s: no such staged binary", staged)
	}
	return nil
}

// BreakNewBinary makes the staged new binary one that cannot start with
// the configuration (its USR2 logs an [emerg]).
func (s *Sim) BreakNewBinary() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disk = "broken"
}

// LogSince returns the error log's lines after offset bytes.
func (s *Sim) LogSince(ctx context.Context, offset int64) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	var at int64
	for _, l := range s.log {
		if at >= offset {
			out = append(out, l)
		}
		at += int64(len(l) + 1)
	}
	return out, nil
}

// Snapshot lets time pass (draining workers finish, quitting masters exit)
// and returns the process table.
func (s *Sim) Snapshot(ctx context.Context) (proc.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return proc.Snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen {
		// As Docker does: an exec into a frozen container is refused.
		return proc.Snapshot{}, fmt.Errorf("read process table: exit 126: cannot exec in a paused container")
	}
	s.tick()
	snap := proc.Snapshot{PidFile: s.pidFile, Oldbin: s.oldbin, OldbinSet: s.oldbin != 0, LogSize: s.logSize}
	for _, p := range s.procs {
		state := "S"
		if p.stopped {
			state = "T"
		}
		snap.Procs = append(snap.Procs, proc.Process{PID: p.pid, PPID: p.ppid, State: state, Role: p.role,
			Cmdline: cmdlineOf(p.role), Binary: p.binary})
	}
	sort.Slice(snap.Procs, func(i, j int) bool { return snap.Procs[i].PID < snap.Procs[j].PID })
	return snap, nil
}

func cmdlineOf(r proc.Role) string {
	switch r {
	case proc.RoleMaster:
		return "nginx: master process /usr/sbin/nginx"
	case proc.RoleShuttingDown:
		return "nginx: worker process is shutting down"
	case proc.RoleWorker:
		return "nginx: worker process"
	}
	return string(r)
}

func (s *Sim) tick() {
	for _, p := range s.procs {
		if p.role == proc.RoleShuttingDown && !p.stopped {
			if p.drainLeft <= 0 {
				s.exit(p)
			} else {
				p.drainLeft--
			}
		}
	}
	for _, p := range s.procs {
		if p.role == proc.RoleMaster && p.quitting && !p.stopped && len(s.children(p.pid)) == 0 {
			s.exit(p)
		}
	}
}

func (s *Sim) children(pid int) []*simProc {
	var out []*simProc
	for _, p := range s.procs {
		if p.ppid == pid && p.role != proc.RoleMaster {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

func (s *Sim) accepting(pid int) int {
	n := 0
	for _, c := range s.children(pid) {
		if c.role == proc.RoleWorker {
			n++
		}
	}
	return n
}

// Signal delivers sig to each pid, as kill(1) in the container would.
func (s *Sim) Signal(ctx context.Context, sig string, pids ...int) error {
	if s.SignalErr != nil {
		return fmt.Errorf("signal %s to %v: %w", sig, pids, s.SignalErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pid := range pids {
		p, ok := s.procs[pid]
		if !ok {
			return fmt.Errorf("signal %s to %v: kill: (%d) - No such process", sig, pids, pid)
		}
		s.deliver(p, sig)
	}
	return nil
}

func (s *Sim) deliver(p *simProc, sig string) {
	switch sig {
	case "KILL":
		s.kill(p)
		return
	case "STOP":
		p.stopped = true
		return
	case "CONT":
		p.stopped = false
		pending := p.pending
		p.pending = nil
		for _, q := range pending {
			if _, alive := s.procs[p.pid]; alive {
				s.deliver(p, q)
			}
		}
		return
	}
	if p.stopped {
		p.pending = append(p.pending, sig)
		return
	}
	if p.role != proc.RoleMaster {
		if sig == "TERM" || sig == "QUIT" {
			s.exit(p)
		}
		return
	}
	switch sig {
	case "USR2":
		s.changeBinary(p)
	case "WINCH":
		for _, c := range s.children(p.pid) {
			s.shutDown(c)
		}
	case "HUP":
		// The rollback (no workers) and the reload alike: new workers from
		// the master's own binary and the configuration on disk; any old
		// ones drain. An invalid configuration is refused: [emerg], and the
		// workers stay as they are.
		if strings.Contains(string(s.config), "no_such_directive") {
			s.logf("emerg", `unknown directive "no_such_directive" in /etc/nginx/nginx.conf:2`)
			return
		}
		for _, c := range s.children(p.pid) {
			s.shutDown(c)
		}
		s.workers = max(WorkerCount(s.config), 1)
		s.gen[p.pid] = generationOf(s.config)
		s.startWorkers(p)
	case "QUIT":
		p.quitting = true
		for _, c := range s.children(p.pid) {
			s.shutDown(c)
		}
	case "TERM":
		for _, c := range s.children(p.pid) {
			delete(s.procs, c.pid)
		}
		s.exit(p)
	}
}

func (s *Sim) shutDown(w *simProc) {
	if w.role == proc.RoleWorker {
		w.role, w.drainLeft = proc.RoleShuttingDown, s.DrainPolls
	}
}

// changeBinary is USR2 to master m.
func (s *Sim) changeBinary(m *simProc) {
	if m.foreground || (s.Foreground && m.ppid == 1 && s.oldbin == 0 && m.pid == 10) {
		s.logf("crit", "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
		return
	}
	// A new master whose parent (the old master) still runs ignores it, as
	// does an old master whose new one runs.
	if parent, ok := s.procs[m.ppid]; ok && parent.role == proc.RoleMaster {
		s.logf("crit", "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
		return
	}
	for _, p := range s.procs {
		if p.role == proc.RoleMaster && p.ppid == m.pid {
			s.logf("crit", "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
			return
		}
	}
	if s.oldbin == m.pid {
		// The old master of an upgrade under way.
		s.logf("crit", "the changing binary signal is ignored: you should shutdown or terminate before either old or new binary's process")
		return
	}
	s.pidFile, s.oldbin = 0, m.pid
	if s.disk == "broken" {
		s.logf("emerg", `unknown directive "gzip" in /etc/nginx/nginx.conf:21`)
		s.pidFile, s.oldbin = m.pid, 0
		return
	}
	n := s.spawn(m.pid, proc.RoleMaster, s.disk)
	s.pidFile = n.pid
	s.startWorkers(n)
}

// exit ends p as a process that exits on its own (QUIT, TERM, drained).
func (s *Sim) exit(p *simProc) {
	delete(s.procs, p.pid)
	if p.role != proc.RoleMaster {
		return
	}
	switch {
	case s.oldbin != 0 && p.ppid == s.oldbin && s.pidFile == p.pid:
		// The new master of an upgrade: the old one takes nginx.pid back
		// and, if it has no workers, starts them on its own.
		old := s.procs[s.oldbin]
		s.pidFile, s.oldbin = old.pid, 0
		if s.accepting(old.pid) == 0 {
			s.startWorkers(old)
		}
	case s.oldbin == p.pid:
		s.oldbin = 0
		s.reparent(p.pid)
	case s.pidFile == p.pid:
		s.pidFile = 0
		s.reparent(p.pid)
	}
}

// kill is SIGKILL: no clean-up. A killed worker's master starts another; a
// killed master leaves its pid file and its workers (orphans, reparented
// to PID 1), and an old master notices a killed new one.
func (s *Sim) kill(p *simProc) {
	delete(s.procs, p.pid)
	switch p.role {
	case proc.RoleWorker, proc.RoleShuttingDown:
		if m, ok := s.procs[p.ppid]; ok && p.role == proc.RoleWorker && !m.quitting {
			s.logf("alert", "worker process %d exited on signal 9", p.pid)
			s.spawn(m.pid, proc.RoleWorker, m.binary)
		}
	case proc.RoleMaster:
		s.reparent(p.pid)
		if s.oldbin != 0 && p.ppid == s.oldbin {
			// The old master reaps its new binary's master: nginx.pid back.
			old := s.procs[s.oldbin]
			s.logf("alert", "new binary process %d exited on signal 9", p.pid)
			s.pidFile, s.oldbin = old.pid, 0
			if s.accepting(old.pid) == 0 {
				s.startWorkers(old)
			}
		}
	}
}

func (s *Sim) reparent(pid int) {
	for _, c := range s.procs {
		if c.ppid == pid {
			c.ppid = 1
		}
	}
}

// String is the process table for test messages.
func (s *Sim) String() string {
	snap, _ := s.Snapshot(context.Background())
	return strings.TrimSpace(snap.String())
}

// Exec is not simulated: a fault that runs commands in the container is
// tested live only.
func (s *Sim) Exec(ctx context.Context, argv ...string) (ExecResult, error) {
	return ExecResult{}, fmt.Errorf("exec %s: not simulated", argv[0])
}

// WriteFile and ReadFile are not simulated either.
func (s *Sim) WriteFile(ctx context.Context, path string, data []byte, mode int64) error {
	return fmt.Errorf("write %s: not simulated", path)
}
func (s *Sim) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return nil, fmt.Errorf("read %s: not simulated", path)
}

// Freeze stops every process (as the cgroup freezer does); Thaw resumes
// them, and the signals that arrived meanwhile act.
func (s *Sim) Freeze(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		p.stopped = true
	}
	s.frozen = true
	return nil
}

func (s *Sim) Thaw(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = false
	for _, p := range s.procs {
		if p.stopped {
			s.deliver(p, "CONT")
		}
	}
	return nil
}

// LimitCPU is accepted and has no effect on the simulation.
func (s *Sim) LimitCPU(ctx context.Context, cores float64) error { return nil }

func generationOf(conf []byte) int {
	i := strings.Index(string(conf), GenerationHeader+" ")
	if i < 0 {
		return 0
	}
	var n int
	fmt.Sscanf(string(conf)[i+len(GenerationHeader)+1:], "%d", &n)
	return n
}

// Config is nginx.conf on disk; WriteConfig replaces it.
func (s *Sim) Config() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.config...)
}

func (s *Sim) WriteConfig(ctx context.Context, conf []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.config = append([]byte(nil), conf...)
	return nil
}

// Fetch answers as the workers of the master in nginx.pid would: with the
// generation header of the configuration they read.
func (s *Sim) Fetch(ctx context.Context, path string) (int, http.Header, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accepting(s.pidFile) == 0 {
		return 0, nil, fmt.Errorf("connect: connection refused")
	}
	h := http.Header{}
	if g := s.gen[s.pidFile]; g > 0 {
		h.Set(GenerationHeader, fmt.Sprint(g))
	}
	return 200, h, nil
}
