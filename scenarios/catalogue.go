// Package scenarios is the catalogue of upgrade paths as data and the runner
// that plays one under load in its own container and records everything.
package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Expectations of a scenario.
const (
	ExpectZeroDrops = "zero-drops"
	ExpectDrops     = "drops" // a path that must lose connections: a positive control
)

// Move is one step of a scenario and the audit window that follows it: the
// time the load keeps running against the state the step produced.
type Move struct {
	Step       nginx.Step
	Audit      time.Duration
	ExpectFail bool // the step must fail to verify (a broken new build)
	// ExpectCause is, for a step that must fail, a regular expression its
	// error or the error log's lines must match: the failure must be the
	// one the scenario provokes, not any failure (see Params.expectedCause).
	ExpectCause string
	// StartSlow starts that many more long downloads once the step is
	// verified, on whichever workers accept then; they are sized to outlast
	// the scenario.
	StartSlow int
}

// Final is what the scenario must end on.
type Final struct {
	Binary     string // "old" or "new": the binary the one master runs
	PidFileOld bool   // nginx.pid must hold the original master's pid
	// Orphans: nginx processes whose master is gone are expected (a fault
	// killed a master); Loose: only the binary, serving and the leftovers
	// are checked (a fault changed the rest, as measured).
	Orphans, Loose bool
}

// Scenario is one upgrade path under load.
type Scenario struct {
	Name   string
	Kind   string // graceful, fallback or control
	Expect string
	Broken bool // runs against the broken new build
	Why    string
	Moves  []Move
	Final  Final
	// SlowOutlasts sizes the long downloads to outlast the whole scenario
	// (a scenario that cuts them must find them in flight).
	SlowOutlasts bool
	// Drops says where and what an Expect of drops must see (nil otherwise).
	Drops *record.DropSpec
	// KnownLosses are the losses a zero-drops path is known to cause (the
	// run bounds each by its rate); the load may add its own (knownLosses).
	KnownLosses []record.KnownLoss
	// Faults strike during the scenario (WithFaults sets them, with the
	// expectation they were measured to have); MaxStall raises the stall
	// limit for them.
	Faults   []fault.Chosen
	MaxStall time.Duration
	// ConfigEdit, when set, changes the configuration under test before
	// nginx starts (e.g. reuseport on every listen); the report says so.
	ConfigEdit func([]byte) ([]byte, error)
	ConfigNote string
	// Sysctls are set in the scenario's container only.
	Sysctls map[string]string
	// Tags are extra Ginkgo labels (e.g. reload).
	Tags []string
}

// Labels are the Ginkgo labels of the scenario: its name, its kind and tags.
func (s Scenario) Labels() []string { return append([]string{s.Name, s.Kind}, s.Tags...) }

const audit = 2 * time.Second

// serverSideClasses are the failures a server's close, reset or refusal
// produces: what a positive control's drops must be.
var serverSideClasses = []string{record.ClassReset, record.ClassEOF, record.ClassRefused}

// TermOutageBound bounds how long requests may fail in a row after TERM to
// the new master (README: the outages measured here, with the margin).
const TermOutageBound = 1000

// NewMasterFailureCause is what a USR2 to a build that cannot start must
// show: nginx's own word on why there is no new master (an [emerg], [alert]
// or [crit] line). A known broken build has a sharper cause (DefaultBroken).
const NewMasterFailureCause = `\[(emerg|alert|crit)\]`

// quitTimeout bounds a QUIT: the master exits only after its draining
// workers finished their long downloads.
const quitTimeout = 90 * time.Second

var installNew = withPhase(nginx.InstallBinary("install-new-binary", harness.NewBinaryStage), "new-binary-on-disk")
var restoreOld = withPhase(nginx.InstallBinary("restore-old-binary", harness.OldBinaryStage), "old-binary-on-disk")

func withPhase(s nginx.Step, phase string) nginx.Step {
	s.Phase = phase
	return s
}

// Catalogue returns every scenario, in the order the default suite runs them.
func Catalogue() []Scenario {
	return []Scenario{
		{
			Name: "upgrade", Kind: "graceful", Expect: ExpectZeroDrops,
			Why: "USR2, WINCH and QUIT are the graceful path: nothing may be lost.",
			Moves: []Move{
				{Step: installNew},
				{Step: nginx.SpawnNewMaster(), Audit: audit},
				{Step: nginx.StopOldWorkers(), Audit: audit},
				{Step: nginx.QuitOldMaster(quitTimeout), Audit: audit},
			},
			Final: Final{Binary: "new"},
		},
		{
			Name: "rollback", Kind: "graceful", Expect: ExpectZeroDrops,
			Why: "HUP to the old master and QUIT to the new one are graceful: nothing may be lost.",
			Moves: []Move{
				{Step: installNew},
				{Step: nginx.SpawnNewMaster(), Audit: audit},
				{Step: nginx.StopOldWorkers(), Audit: audit},
				{Step: nginx.RestoreOldWorkers(), Audit: audit},
				{Step: nginx.QuitNewMaster(quitTimeout), Audit: audit},
				{Step: restoreOld},
			},
			Final: Final{Binary: "old", PidFileOld: true},
		},
		{
			Name: "term-fallback", Kind: "fallback", Expect: ExpectDrops,
			Why: "TERM is nginx's fast shutdown: the new workers close the connections they hold at once, " +
				"so the long downloads started on them after WINCH are cut, and short requests in flight on them fail. " +
				"The old master takes nginx.pid back and restarts its workers unaided; the downloads its draining " +
				"workers hold complete. Expect drops: a TERM that lost nothing would mean it did not act as TERM.",
			Moves: []Move{
				{Step: installNew},
				{Step: nginx.SpawnNewMaster(), Audit: audit},
				// After WINCH only the new workers accept: downloads started
				// now are theirs, in flight when TERM arrives.
				{Step: nginx.StopOldWorkers(), Audit: audit, StartSlow: 2},
				{Step: nginx.TerminateNewMaster(), Audit: audit},
				{Step: restoreOld},
			},
			Final: Final{Binary: "old", PidFileOld: true},
			// The new workers' connections are cut; the downloads the old
			// set holds (started before USR2) complete; the failures last no
			// longer than TermOutageBound (README: measured outages).
			Drops: &record.DropSpec{Phase: "after-term", Classes: serverSideClasses, MaxOutageMs: TermOutageBound,
				KeepDownloadsBefore: "spawn-new-master"},
		},
		{
			Name: "kill-fallback", Kind: "control", Expect: ExpectDrops, SlowOutlasts: true,
			Why: "KILL of the workers that hold the long downloads cuts them: the positive control of the detector. " +
				"If it reports no drop, the harness itself is broken.",
			Moves: []Move{
				{Step: nginx.KillWorkers(), Audit: audit},
			},
			Final: Final{Binary: "old", PidFileOld: true},
			// The drops are the connections the killed workers held: every
			// long download in flight is cut, and no more is lost than was open.
			// The server's log agrees: each is cut by a worker the KILL took.
			Drops: &record.DropSpec{Phase: "after-kill", Classes: serverSideClasses, CutHeld: true,
				Witness: []string{record.WitnessCut}, BySignalled: true},
		},
		{
			Name: "reload", Kind: "graceful", Expect: ExpectZeroDrops, Tags: []string{"reload"},
			Why: "HUP with a changed configuration: a new generation of workers serves it (its responses carry the new " +
				"generation header) and the old one drains. Nothing may be lost.",
			Moves: []Move{
				{Step: nginx.EditConfig("change-config", generation(2))},
				{Step: nginx.Reload("reload-config", "reloaded", 0, 2), Audit: audit},
				{Step: nginx.OldGenerationDrained(quitTimeout), Audit: audit / 2},
			},
			Final: Final{Binary: "old", PidFileOld: true},
		},
		{
			Name: "reload-broken-config", Kind: "graceful", Expect: ExpectZeroDrops, Tags: []string{"reload"},
			Why: "HUP with an invalid configuration on disk: the master logs the [emerg] and keeps its workers; " +
				"nothing may be lost.",
			Moves: []Move{
				{Step: nginx.EditConfig("break-config", nginx.BreakConfig)},
				{Step: nginx.ReloadRejected("reload-broken-config", "rejected"), Audit: audit},
				{Step: nginx.EditConfig("restore-config", unbreak), Audit: audit / 2},
			},
			Final: Final{Binary: "old", PidFileOld: true},
		},
		{
			Name: "reload-workers", Kind: "graceful", Expect: ExpectZeroDrops, Tags: []string{"reload"},
			Why: "HUP changing worker_processes up (2 to 4) and down (4 to 1): the new generation has that many " +
				"workers and nothing may be lost.",
			Moves: []Move{
				{Step: nginx.EditConfig("more-workers", workers(4))},
				{Step: nginx.Reload("reload-up", "four-workers", 4, 0), Audit: audit},
				{Step: nginx.EditConfig("fewer-workers", workers(1))},
				{Step: nginx.Reload("reload-down", "one-worker", 1, 0), Audit: audit},
				{Step: nginx.OldGenerationDrained(quitTimeout), Audit: audit / 2},
			},
			Final: Final{Binary: "old", PidFileOld: true},
		},
		reuseport("reuseport", "0"),
		reuseport("reuseport-migrate", "1"),
		{
			Name: "upgrade-twice", Kind: "graceful", Expect: ExpectZeroDrops,
			Why: "A master started by USR2 is itself upgraded: once its parent has quit it is an orphan of PID 1, and " +
				"USR2 to it must work as to the first one (here back to the old build). Nothing may be lost.",
			Moves: []Move{
				{Step: installNew},
				{Step: nginx.SpawnNewMaster(), Audit: audit},
				{Step: nginx.StopOldWorkers(), Audit: audit},
				{Step: nginx.QuitOldMaster(quitTimeout), Audit: audit},
				{Step: again(withPhase(nginx.InstallBinary("install-old-binary", harness.OldBinaryStage), "old-binary-on-disk"))},
				{Step: again(nginx.SpawnNewMaster()), Audit: audit},
				{Step: again(nginx.StopOldWorkers()), Audit: audit},
				{Step: again(nginx.QuitOldMaster(quitTimeout)), Audit: audit},
			},
			Final: Final{Binary: "old"},
		},
		{
			Name: "broken-build", Kind: "graceful", Expect: ExpectZeroDrops, Broken: true,
			Why: "A new binary that cannot start with the configuration in use: USR2 must fail with the cause " +
				"from the error log while the old set keeps serving, and nothing may be lost.",
			Moves: []Move{
				{Step: installNew},
				{Step: nginx.SpawnNewMaster(), Audit: audit, ExpectFail: true, ExpectCause: NewMasterFailureCause},
				{Step: restoreOld, Audit: audit},
			},
			Final: Final{Binary: "old", PidFileOld: true},
		},
	}
}

// reuseport is the upgrade with `listen … reuseport` (a listening socket per
// worker), then a reload down to one worker, with the kernel's
// net.ipv4.tcp_migrate_req set to migrate (in this container only).
func reuseport(name, migrate string) Scenario {
	return Scenario{
		Name: name, Kind: "graceful", Expect: ExpectZeroDrops, Tags: []string{"reuseport"},
		Why: "listen … reuseport gives each worker a listening socket of its own; when a worker stops accepting, " +
			"the connections in its queue are reset unless net.ipv4.tcp_migrate_req (here " + migrate + ") moves them to another. " +
			"The upgrade and a reload down to one worker.",
		ConfigEdit: nginx.AddReuseport, ConfigNote: "the harness added reuseport to every listen directive",
		Sysctls:     map[string]string{"net.ipv4.tcp_migrate_req": migrate},
		KnownLosses: reuseportLosses(migrate),
		Moves: []Move{
			{Step: installNew},
			{Step: nginx.SpawnNewMaster(), Audit: audit},
			{Step: nginx.StopOldWorkers(), Audit: audit},
			{Step: nginx.QuitOldMaster(quitTimeout), Audit: audit},
			{Step: nginx.EditConfig("fewer-workers", workers(1))},
			{Step: nginx.Reload("reload-down", "one-worker", 1, 0), Audit: audit},
		},
		Final: Final{Binary: "new"},
	}
}

// reuseportLosses: without migration, the reload down to one worker closes
// the listening sockets of the workers it retires, and what was queued on
// them is reset (docs/findings.md). With migration nothing may be lost.
func reuseportLosses(migrate string) []record.KnownLoss {
	if migrate != "0" {
		return nil
	}
	return []record.KnownLoss{queueReset("fewer-workers", "one-worker")}
}

// again names a step of a second round (its name and phase get "-again").
func again(s nginx.Step) nginx.Step {
	s.Name += "-again"
	if s.Phase != "" {
		s.Phase += "-again"
	}
	return s
}

func generation(n int) func([]byte) ([]byte, error) {
	return func(c []byte) ([]byte, error) { return nginx.SetGeneration(c, n) }
}

func workers(n int) func([]byte) ([]byte, error) {
	return func(c []byte) ([]byte, error) { return nginx.SetWorkers(c, n) }
}

// unbreak removes what BreakConfig added.
func unbreak(c []byte) ([]byte, error) {
	return []byte(strings.ReplaceAll(string(c), "    no_such_directive on;\n", "")), nil
}

// Lookup finds scenarios by name; an unknown name is an error that lists
// the known ones.
func Lookup(names []string) ([]Scenario, error) {
	all := Catalogue()
	if len(names) == 0 {
		return all, nil
	}
	byName := map[string]Scenario{}
	for _, s := range all {
		byName[s.Name] = s
	}
	var out []Scenario
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// Names lists the scenario names.
func Names() []string {
	var out []string
	for _, s := range Catalogue() {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}
