// Package fault is the catalogue of things that go wrong in the middle of
// an upgrade — a process killed or stopped, a disk full, the container
// frozen or starved, a bad network, clients that hold on — each a small
// type with a name, what it needs, when it strikes, how it is injected and
// healed, and what it was measured to do.
package fault

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Target is what a fault acts on: the nginx under test and its container.
type Target interface {
	nginx.Host
	// Exec runs argv in the container (no shell).
	Exec(ctx context.Context, argv ...string) (nginx.ExecResult, error)
	// WriteFile puts a file into the container.
	WriteFile(ctx context.Context, path string, data []byte, mode int64) error
	// ReadFile reads a file in the container.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Freeze and Thaw stop and resume every process of the container
	// (cgroup freezer, as `docker pause`).
	Freeze(ctx context.Context) error
	Thaw(ctx context.Context) error
	// LimitCPU sets the container's CPU quota, in cores (0: no limit).
	LimitCPU(ctx context.Context, cores float64) error
}

// Needs are what a fault needs granted to its container, and to it only.
type Needs struct {
	Caps  []string          // capabilities, e.g. NET_ADMIN for tc
	Tmpfs map[string]string // mount point → options, e.g. "/run": "size=64k"
	Tools []string          // executables the image must hold
	// Load adds long-lived clients to the load (slow-clients).
	SlowClients int
}

// Fault is one thing that goes wrong mid-upgrade.
type Fault interface {
	// Name is the fault's name on the command line (`--fault NAME`).
	Name() string
	// What says in one line what it does, for `run --list`.
	What() string
	// At is the step after whose verification the fault strikes (before
	// that step's audit window), unless `NAME@STEP` moves it.
	At() string
	// Needs is what the container must be given for it.
	Needs() Needs
	// Inject makes it happen; the note says what was done, in words.
	Inject(ctx context.Context, t Target) (note string, err error)
	// Heal undoes it (a no-op for what cannot be undone, such as a KILL);
	// HealAfter says when: this long after the injection, or at the end of
	// the scenario when 0.
	Heal(ctx context.Context, t Target) (note string, err error)
	HealAfter() time.Duration
	// Expect is what it was measured to do to the scenario (by name): its
	// expectation replaces the scenario's.
	Expect(scenario string) Expectation
}

// Expectation is a fault's measured effect on one scenario, encoded so that
// a change in nginx's behaviour fails the gate.
type Expectation struct {
	// Drops: the fault may lose connections, in the phase it struck in
	// (server-side classes only); false: nothing may be lost.
	Drops bool
	// MustDrop: it must lose some (a fault that cuts what it holds).
	MustDrop bool
	// FailStep is a later step that then fails (the scenario stops there)
	// for FailCause (a regular expression of its error or the error log).
	FailStep, FailCause string
	// Final is the binary serving at the end ("old" or "new"); Orphans: the
	// end state has nginx processes whose master is gone.
	Final   string
	Orphans bool
	// MaxStall raises the scenario's stall limit (a freeze stalls by design).
	MaxStall time.Duration
	// Why says what was measured, in one line (README and report).
	Why string
}

// Applies tells whether f can strike at step in a scenario with these steps.
func Applies(f Fault, at string, steps []string) error {
	if !slices.Contains(steps, at) {
		return fmt.Errorf("fault %s strikes after step %s, which this scenario does not have (its steps: %s)",
			f.Name(), at, strings.Join(steps, ", "))
	}
	return nil
}

// Catalogue lists every fault, ordered by name.
func Catalogue() []Fault {
	all := []Fault{
		killNewWorker{}, killNewMaster{}, killOldMaster{}, killOldWorker{}, stopOldMaster{}, freeze{}, pidDirFull,
		logDirFull, repeatUSR2{}, brokenConfigOnDisk{}, cpuStarve{}, netem{}, slowClients{},
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name() < all[j].Name() })
	return all
}

// Available tells whether f can be injected on this machine (a fault that
// needs a kernel feature says so): nil, or the one-line reason.
func Available(f Fault) error {
	if a, ok := f.(interface{ Available() error }); ok {
		return a.Available()
	}
	return nil
}

// NeedsEngineUpdate tells whether f changes a running container's
// resources through the engine (docker update), which not every engine's
// API has (harness.CheckUpdate).
func NeedsEngineUpdate(f Fault) bool {
	u, ok := f.(interface{ UpdatesContainer() bool })
	return ok && u.UpdatesContainer()
}

// StallsContainer tells whether f stops or slows every process of nginx's
// container — the heartbeat the harness runs there included — rather than
// one of nginx's processes or its network: freeze (the cgroup freezer) and
// cpu-starve (the container's CPU quota). The heartbeat's lateness inside
// such a fault's window is the fault's doing, so it does not make a stall
// the machine's (reports: the stall rule).
func StallsContainer(f Fault) bool {
	s, ok := f.(interface{ StallsContainer() bool })
	return ok && s.StallsContainer()
}

// Chosen is a fault and the step it strikes after.
type Chosen struct {
	Fault
	Step string
}

// Parse reads `NAME` or `NAME@STEP`.
func Parse(spec string) (Chosen, error) {
	name, step, _ := strings.Cut(spec, "@")
	for _, f := range Catalogue() {
		if f.Name() == name {
			if step == "" {
				step = f.At()
			}
			return Chosen{Fault: f, Step: step}, nil
		}
	}
	var names []string
	for _, f := range Catalogue() {
		names = append(names, f.Name())
	}
	return Chosen{}, fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(names, ", "))
}

// exec runs argv and turns a non-zero exit into an error naming it.
func exec(ctx context.Context, t Target, argv ...string) (string, error) {
	r, err := t.Exec(ctx, argv...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", argv[0], err)
	}
	if r.Exit != 0 {
		return r.Stdout, fmt.Errorf("%s: exit %d: %s", argv[0], r.Exit, harness.LastLine(r.Stderr+r.Stdout))
	}
	return r.Stdout, nil
}

// newMaster is the master of an upgrade under way (nginx.pid while
// nginx.pid.oldbin exists), oldMaster the one in nginx.pid.oldbin.
func masters(ctx context.Context, t Target) (oldMaster, newMaster int, snap proc.Snapshot, err error) {
	snap, err = t.Snapshot(ctx)
	if err != nil {
		return 0, 0, snap, err
	}
	if !snap.OldbinSet || !snap.IsMaster(snap.Oldbin) || !snap.IsMaster(snap.PidFile) {
		return 0, 0, snap, fmt.Errorf("no upgrade under way: %s", snap)
	}
	return snap.Oldbin, snap.PidFile, snap, nil
}
