package nginx

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// Target says which process a step signals, resolved from the pid files
// and the process table at the moment the step runs.
type Target string

const (
	// TargetMaster is the master named by nginx.pid (the only one, or the new one during an upgrade).
	TargetMaster Target = "master"
	// TargetOldMaster is the master named by nginx.pid.oldbin.
	TargetOldMaster Target = "old-master"
	// TargetNewMaster is the master named by nginx.pid while nginx.pid.oldbin exists.
	TargetNewMaster Target = "new-master"
	// TargetWorkers are the live workers (shutting down or not) of the master in nginx.pid.
	TargetWorkers Target = "workers"
	// TargetOldWorkers are the live workers of the master in nginx.pid.oldbin.
	TargetOldWorkers Target = "old-workers"
	// TargetNone sends no signal (an action step, such as installing a binary).
	TargetNone Target = ""
)

// Host is what the driver needs of the machine nginx runs on: a live
// container (Node) or a simulated nginx (Sim) for unit tests.
type Host interface {
	// proc.Snapshot reads the process table, the pid files and the error log size.
	Snapshot(ctx context.Context) (proc.Snapshot, error)
	// Signal sends sig (e.g. "USR2") to the pids.
	Signal(ctx context.Context, sig string, pids ...int) error
	// LogSince returns the error log's lines after offset bytes.
	LogSince(ctx context.Context, offset int64) ([]string, error)
	// InstallBinary puts a staged binary at the path nginx runs from.
	InstallBinary(ctx context.Context, staged string) error
}

// Step is one verified action of a procedure: a signal to a target and the
// effect that must appear before Timeout.
type Step struct {
	Name   string                                  // what it is for: "spawn-new-master"
	Signal string                                  // "USR2", "WINCH", …; empty for an action step
	Target Target                                  // who gets the signal
	Action func(ctx context.Context, h Host) error // for action steps (no signal)
	Expect Expectation                             // the effect that verifies the step
	// ExpectLog, when set, is a regular expression one error-log line
	// written since the step was sent must match for it to verify.
	ExpectLog string
	// Confirm, when set, is asked once Expect holds (e.g. which
	// generation of workers the responses come from); it verifies with it.
	Confirm func(ctx context.Context, h Host) error
	// Sent, when set, is called once the signal went out (or the action
	// ran), before the effect is waited for.
	Sent    func()
	Timeout time.Duration // how long the effect may take (default 10 s)
	Phase   string        // the phase that starts when this step is sent
}

// Expectation checks a snapshot taken after the step against the one taken
// before; it returns nil once the effect is there and otherwise says what it
// expected.
type Expectation func(before, now proc.Snapshot, pids []int) error

// StepResult is what the driver records of one step.
type StepResult struct {
	Name     string        `json:"name"`
	Signal   string        `json:"signal,omitempty"`
	PIDs     []int         `json:"pids,omitempty"`
	Sent     time.Time     `json:"-"`
	Verified time.Time     `json:"-"` // zero when not verified
	OK       bool          `json:"verified"`
	Err      string        `json:"error,omitempty"`
	LogLines []string      `json:"log_lines,omitempty"` // failure lines ([error] to [emerg]) since the step was sent
	Before   proc.Snapshot `json:"-"`
	After    proc.Snapshot `json:"after"`
	Phase    string        `json:"phase,omitempty"`
	// DockerFault is set when the step failed on a Docker call that failed
	// or hung, or with the container in an abnormal state (paused, frozen,
	// exited, OOM kills): the environment failed, not nginx.
	DockerFault bool `json:"-"`
}

// Driver runs steps against one host.
type Driver struct {
	node Host
	poll time.Duration
}

// A step's effect is read every poll (50 ms) for its first pollFastFor:
// most steps show theirs within a few hundred milliseconds, and that is
// when the time of verification must be sharp. A step that waits longer
// (a QUIT that waits for long downloads to end) is read less and less
// often, up to every pollSlowest: each read is a docker exec, about 0.1 s
// of CPU on this machine's kind, taken from the load and nginx measured.
const (
	pollFastFor = time.Second
	pollSlowest = 250 * time.Millisecond
)

// NewDriver makes a signal driver for a host (a Node, or a Sim).
func NewDriver(h Host) *Driver { return &Driver{node: h, poll: 50 * time.Millisecond} }

// WithPoll sets how often the driver reads the process table while it waits
// for a step's effect (default 50 ms; past pollFastFor, the interval grows
// to pollSlowest, or stays at p where p is longer).
func (d *Driver) WithPoll(p time.Duration) *Driver {
	d.poll = p
	return d
}

// nextPoll is the wait before the next read of a step's effect, waited so
// far since it was sent, the last wait being last.
func (d *Driver) nextPoll(waited, last time.Duration) time.Duration {
	if waited < pollFastFor {
		return d.poll
	}
	return max(d.poll, min(last*3/2, pollSlowest))
}

// Run sends the step's signal and waits until its effect is verified, its
// timeout passes, or ctx ends. A failed step carries what was expected,
// what was seen and the error log's failure lines since it was sent.
func (d *Driver) Run(ctx context.Context, s Step) StepResult {
	res := StepResult{Name: s.Name, Signal: s.Signal, Phase: s.Phase}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	// Placed on the clock when attempted, until the signal goes out.
	res.Sent = time.Now()
	deadline := res.Sent.Add(timeout)
	// The process table as it was before: read it again until the step's
	// timeout if it cannot be read now (a container frozen for a moment
	// refuses execs).
	var before proc.Snapshot
	var err error
	for {
		if before, err = d.node.Snapshot(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return d.fail(res, fmt.Errorf("%s: %w", s.Name, err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(d.poll):
		}
	}
	res.Before = before
	pids, err := resolve(before, s.Target)
	if err != nil {
		res.Sent = time.Now()
		res.After = before
		return d.fail(res, fmt.Errorf("%s (%s to %s): %w; saw %s", s.Name, s.Signal, s.Target, err, before))
	}
	res.PIDs = pids
	res.Sent = time.Now()
	if s.Signal != "" {
		if err := d.node.Signal(ctx, s.Signal, pids...); err != nil {
			res.After = before
			return d.fail(res, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	if s.Action != nil {
		if err := s.Action(ctx, d.node); err != nil {
			res.After = before
			return d.fail(res, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	if s.Sent != nil {
		s.Sent()
	}
	deadline = time.Now().Add(timeout)
	var last error
	wait := d.poll
	for {
		now, err := d.node.Snapshot(ctx)
		if err != nil {
			last = err
			// A container that has exited or is gone will not come back:
			// no use waiting out the timeout.
			if harness.ContainerEnded(err) {
				return d.fail(res, fmt.Errorf("%s: %w", s.Name, err))
			}
		} else {
			res.After = now
			if last = s.Expect(before, now, pids); last == nil && s.ExpectLog != "" {
				last = d.logMatches(ctx, before.LogSize, s.ExpectLog)
			}
			if last == nil && s.Confirm != nil {
				last = s.Confirm(ctx, d.node)
			}
			if last == nil {
				res.Verified = time.Now()
				res.OK = true
				res.LogLines = d.logLines(ctx, before.LogSize)
				return res
			}
			// A new master that died (or was never started) leaves its
			// reason in the log at once: fail fast rather than wait out the
			// timeout.
			if s.Signal == "USR2" && now.PidFile == before.PidFile && !now.OldbinSet && time.Since(res.Sent) > 300*time.Millisecond {
				if lines := d.logLines(ctx, before.LogSize); FirstFailure(lines) != "" {
					res.LogLines = lines
					return d.fail(res, fmt.Errorf("%s (USR2 to %v): no new master: %s", s.Name, pids, FirstFailure(lines)))
				}
			}
		}
		if ctx.Err() != nil {
			return d.fail(res, fmt.Errorf("%s: %w", s.Name, ctx.Err()))
		}
		if time.Now().After(deadline) {
			if err == nil {
				return d.fail(res, fmt.Errorf("%s (%s to %v): not verified after %s: expected %v; saw %s", s.Name, s.Signal, pids, timeout, last, res.After))
			}
			return d.fail(res, fmt.Errorf("%s: not verified after %s: %w", s.Name, timeout, last))
		}
		wait = d.nextPoll(time.Since(res.Sent), wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (d *Driver) fail(res StepResult, err error) StepResult {
	res.OK = false
	res.DockerFault = harness.IsDockerFault(err)
	if res.LogLines == nil && !harness.IsDockerFault(err) {
		// ctx may be done: read the log with a short context of our own.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res.LogLines = d.logLines(ctx, res.Before.LogSize)
		cancel()
	}
	msg := err.Error()
	if len(res.LogLines) > 0 && !strings.Contains(msg, "no new master: ") {
		msg += "; error log: " + strings.Join(res.LogLines, " | ")
	}
	if !res.DockerFault {
		// nginx did not do what was expected: say so when the container
		// itself is in trouble (paused, frozen, OOM kills), or when no
		// master is left at all (killed from outside).
		if st, ok := d.node.(stater); ok {
			if state, abnormal, _ := st.State(context.Background()); abnormal {
				msg += "; container state: " + state
				res.DockerFault = true
			}
		}
		if !res.DockerFault && res.After.Procs != nil && len(res.After.Masters()) == 0 {
			msg += "; no nginx master is left in the container"
		}
	}
	res.Err = msg
	return res
}

// stater is a host that can tell the state of its container (paused,
// frozen, exited, OOM kills): a Node.
type stater interface {
	State(ctx context.Context) (state string, abnormal, ended bool)
}

// logMatches tells whether an error-log line since offset matches expr.
func (d *Driver) logMatches(ctx context.Context, offset int64, expr string) error {
	lines, err := d.node.LogSince(ctx, offset)
	if err != nil {
		return err
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if re.MatchString(l) {
			return nil
		}
	}
	return fmt.Errorf("an error-log line matching /%s/", expr)
}

// maxLogLines bounds the error-log lines a step quotes.
const maxLogLines = 20

// logLines are the failure lines of every level nginx uses for them
// ([error], [crit], [alert], [emerg]) written since offset, the first
// maxLogLines of them.
func (d *Driver) logLines(ctx context.Context, offset int64) []string {
	lines, err := d.node.LogSince(ctx, offset)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range lines {
		if FailureLevel(l) != "" && len(out) < maxLogLines {
			out = append(out, l)
		}
	}
	return out
}

// FailureLevel is the failure level of an error-log line ("error", "crit",
// "alert" or "emerg"), or "" for any other line.
func FailureLevel(line string) string {
	for _, lvl := range []string{"emerg", "alert", "crit", "error"} {
		if strings.Contains(line, "["+lvl+"]") {
			return lvl
		}
	}
	return ""
}

// FirstFailure is the first line that says why nginx could not do what it
// was asked: the first [emerg], else [alert], else [crit] ([error] lines
// are per-request more often than not, and name no such cause).
func FirstFailure(lines []string) string {
	for _, lvl := range []string{"emerg", "alert", "crit"} {
		for _, l := range lines {
			if FailureLevel(l) == lvl {
				return l
			}
		}
	}
	return ""
}

func resolve(s proc.Snapshot, t Target) ([]int, error) {
	switch t {
	case TargetNone:
		return nil, nil
	case TargetMaster:
		if !s.IsMaster(s.PidFile) {
			return nil, errors.New("nginx.pid does not name a live master")
		}
		return []int{s.PidFile}, nil
	case TargetOldMaster:
		if !s.OldbinSet || !s.IsMaster(s.Oldbin) {
			return nil, errors.New("nginx.pid.oldbin does not name a live master")
		}
		return []int{s.Oldbin}, nil
	case TargetNewMaster:
		if !s.OldbinSet {
			return nil, errors.New("no upgrade under way (nginx.pid.oldbin absent)")
		}
		if !s.IsMaster(s.PidFile) {
			return nil, errors.New("nginx.pid does not name a live master")
		}
		return []int{s.PidFile}, nil
	case TargetWorkers, TargetOldWorkers:
		m := s.PidFile
		if t == TargetOldWorkers {
			m = s.Oldbin
		}
		var pids []int
		for _, p := range append(s.Workers(m), s.Draining(m)...) {
			pids = append(pids, p.PID)
		}
		if len(pids) == 0 {
			return nil, fmt.Errorf("master %d has no live workers", m)
		}
		return pids, nil
	}
	return nil, fmt.Errorf("unknown target %q", t)
}

// The expectations of the procedure (see procedure.md).

// NewMasterSpawned: two masters; nginx.pid.oldbin holds the old pid and
// nginx.pid the new one; the new master is a child of the old and has as
// many workers as the old had.
func NewMasterSpawned(before, now proc.Snapshot, pids []int) error {
	old := before.PidFile
	switch {
	case !now.OldbinSet || now.Oldbin != old:
		return fmt.Errorf("nginx.pid.oldbin = %d", old)
	case now.PidFile == old || now.PidFile == 0:
		return errors.New("nginx.pid to name a new master")
	case !now.IsMaster(now.PidFile):
		return fmt.Errorf("pid %d (nginx.pid) to be a live master", now.PidFile)
	}
	p, _ := now.Proc(now.PidFile)
	if p.PPID != old {
		return fmt.Errorf("new master %d to be a child of %d (ppid %d)", p.PID, old, p.PPID)
	}
	if want, got := len(before.Workers(old)), len(now.Workers(p.PID)); got < want {
		return fmt.Errorf("new master %d to have %d workers (has %d)", p.PID, want, got)
	}
	if len(now.Masters()) != 2 {
		return fmt.Errorf("two masters (saw %d)", len(now.Masters()))
	}
	return nil
}

// OldWorkersStopped: the old master is alive with no accepting workers
// (some may linger as "shutting down" while their requests drain).
func OldWorkersStopped(before, now proc.Snapshot, pids []int) error {
	old := pids[0]
	if !now.IsMaster(old) {
		return fmt.Errorf("old master %d to stay alive", old)
	}
	if w := now.Workers(old); len(w) > 0 {
		return fmt.Errorf("old master %d to have no accepting workers (has %d)", old, len(w))
	}
	return nil
}

// OldWorkersRestored: the old master runs as many accepting workers as the
// new master has.
func OldWorkersRestored(before, now proc.Snapshot, pids []int) error {
	old := pids[0]
	want := len(before.Workers(before.PidFile))
	if want == 0 {
		want = 1
	}
	if got := len(now.Workers(old)); got < want {
		return fmt.Errorf("old master %d to have %d accepting workers (has %d)", old, want, got)
	}
	return nil
}

// OldMasterGone: the old master has exited, one master is left, nginx.pid
// names it and nginx.pid.oldbin is gone.
func OldMasterGone(before, now proc.Snapshot, pids []int) error {
	old := pids[0]
	if _, alive := now.Proc(old); alive {
		return fmt.Errorf("old master %d to exit (%d workers still draining)", old, len(now.Draining(old)))
	}
	return oneMaster(now, before.PidFile)
}

// NewMasterGoneOldBack: the new master has exited and the old master is the
// only one again, with nginx.pid back on it and accepting workers. Both a
// rollback's QUIT and the TERM fallback end here; after TERM the old master
// must have restarted its workers unaided.
func NewMasterGoneOldBack(before, now proc.Snapshot, pids []int) error {
	newPID, old := pids[0], before.Oldbin
	if _, alive := now.Proc(newPID); alive {
		return fmt.Errorf("new master %d to exit", newPID)
	}
	if err := oneMaster(now, old); err != nil {
		return err
	}
	if len(now.Workers(old)) == 0 {
		return fmt.Errorf("old master %d to have accepting workers", old)
	}
	return nil
}

// MasterGone: the master has exited and no nginx process is left.
func MasterGone(before, now proc.Snapshot, pids []int) error {
	if _, alive := now.Proc(pids[0]); alive {
		return fmt.Errorf("master %d to exit", pids[0])
	}
	if m := now.Masters(); len(m) > 0 {
		return fmt.Errorf("no master left (saw %d)", len(m))
	}
	return nil
}

// WorkersKilled: every signalled worker is gone (the master may respawn
// others; a zombie counts as gone).
func WorkersKilled(before, now proc.Snapshot, pids []int) error {
	for _, pid := range pids {
		if _, alive := now.Proc(pid); alive {
			return fmt.Errorf("worker %d to be gone", pid)
		}
	}
	return nil
}

func oneMaster(now proc.Snapshot, want int) error {
	switch {
	case len(now.Masters()) != 1:
		return fmt.Errorf("one master (saw %d)", len(now.Masters()))
	case now.OldbinSet:
		return errors.New("nginx.pid.oldbin to be removed")
	case now.PidFile != want:
		return fmt.Errorf("nginx.pid = %d", want)
	case !now.IsMaster(want):
		return fmt.Errorf("master %d alive", want)
	}
	return nil
}

// The steps of the procedure, as values.

// InstallBinary puts the staged binary at the path nginx runs from, by an
// atomic rename (copying over a running executable fails: text file busy).
func InstallBinary(name, staged string) Step {
	return Step{Name: name, Target: TargetNone, Timeout: 10 * time.Second,
		Action: func(ctx context.Context, h Host) error { return h.InstallBinary(ctx, staged) },
		Expect: func(before, now proc.Snapshot, pids []int) error { return nil }}
}

// SpawnNewMaster sends USR2 to the running master.
func SpawnNewMaster() Step {
	return Step{Name: "spawn-new-master", Signal: "USR2", Target: TargetMaster, Expect: NewMasterSpawned, Phase: "both-sets"}
}

// StopOldWorkers sends WINCH to the old master.
func StopOldWorkers() Step {
	return Step{Name: "stop-old-workers", Signal: "WINCH", Target: TargetOldMaster, Expect: OldWorkersStopped, Phase: "old-workers-draining"}
}

// RestoreOldWorkers sends HUP to the old master (rollback).
func RestoreOldWorkers() Step {
	return Step{Name: "restore-old-workers", Signal: "HUP", Target: TargetOldMaster, Expect: OldWorkersRestored, Phase: "old-workers-restored"}
}

// QuitOldMaster sends QUIT to the old master; it exits once its draining
// workers have finished, so the timeout covers the longest download.
func QuitOldMaster(timeout time.Duration) Step {
	return Step{Name: "quit-old-master", Signal: "QUIT", Target: TargetOldMaster, Expect: OldMasterGone, Timeout: timeout, Phase: "after-quit"}
}

// QuitNewMaster sends QUIT to the new master (rollback).
func QuitNewMaster(timeout time.Duration) Step {
	return Step{Name: "quit-new-master", Signal: "QUIT", Target: TargetNewMaster, Expect: NewMasterGoneOldBack, Timeout: timeout, Phase: "rolled-back"}
}

// TerminateNewMaster sends TERM to the new master: the old master must take
// nginx.pid back and start its workers unaided.
func TerminateNewMaster() Step {
	return Step{Name: "terminate-new-master", Signal: "TERM", Target: TargetNewMaster, Expect: NewMasterGoneOldBack, Phase: "after-term"}
}

// KillWorkers sends KILL to the workers of the master in nginx.pid.
func KillWorkers() Step {
	return Step{Name: "kill-workers", Signal: "KILL", Target: TargetWorkers, Expect: WorkersKilled, Phase: "after-kill"}
}

// QuitMaster sends QUIT to the only master (a graceful stop).
func QuitMaster(timeout time.Duration) Step {
	return Step{Name: "quit-master", Signal: "QUIT", Target: TargetMaster, Expect: MasterGone, Timeout: timeout, Phase: "stopped"}
}

// InstallBinary atomically replaces the binary nginx runs from with the
// staged one: copy beside it, then rename over it.
func (n *Node) InstallBinary(ctx context.Context, staged string) error {
	dst := n.Binary()
	tmp := dst + ".harness-new"
	for _, argv := range [][]string{{"cp", "-p", staged, tmp}, {"mv", "-f", tmp, dst}} {
		r, err := n.Exec(ctx, argv...)
		if err != nil {
			return fmt.Errorf("install %s at %s: %w", staged, dst, err)
		}
		if r.Exit != 0 {
			return fmt.Errorf("install %s at %s: %s: %s", staged, dst, argv[0], harness.LastLine(r.Stderr))
		}
	}
	return nil
}
