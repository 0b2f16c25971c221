package scenarios

import (
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Params are what a run of scenarios is pointed at.
type Params struct {
	From, To, Broken image.Build
	Config           []byte   // nginx.conf under test (nil: nginx.DefaultConfig)
	Command          []string // argv that starts nginx (nil: the absolute path)
	// Site is a configuration tree under test (--config-dir) in place of
	// Config; CheckSite fills in what it declares before any scenario.
	Site   *Site
	Load   Load
	Steady time.Duration // load before the first step
	// MaxStall is the longest a client may wait on a graceful path (0:
	// DefaultMaxStall; negative: no limit).
	MaxStall time.Duration
	// Strict fails the known losses too (run --strict): zero drops,
	// whatever their cause.
	Strict bool
	// LoadPath is how the load reaches nginx: LoadPathNetns (from inside the
	// container's network namespace, no proxy), LoadPathHost (the port
	// published on the host's 127.0.0.1, through Docker's port proxy), or
	// LoadPathAuto ("" too): the namespace when this process may enter it.
	LoadPath string
	// Live, when set, receives a status line of the load every half second
	// while the load runs between steps (the CLI draws it in place on a
	// terminal; it is not called otherwise).
	Live func(line string)
	// InsecureArchive says the builds were resolved without the archive's
	// signatures checked (--insecure-archive): the reports say so first.
	InsecureArchive bool
	// Heartbeat is the static build of this tool that runs as the heartbeat
	// in nginx's container (loadgen.HeartbeatMain): the CLI's own executable,
	// the suite's NUH_REAPER_BINARY. Empty or not static: no heartbeat, and
	// meta.json says why (the stalls are judged on the harness's side alone).
	Heartbeat string
}

// DefaultMaxStall is the stall limit of the zero-drops expectation (README:
// the stalls measured on the default suite's transitions, and the margin).
const DefaultMaxStall = 1000 * time.Millisecond

func (p Params) maxStall() time.Duration {
	switch {
	case p.MaxStall < 0:
		return 0
	case p.MaxStall == 0:
		return DefaultMaxStall
	}
	return p.MaxStall
}

// expectedCause is the cause a step that must fail has to show: the move's,
// sharpened for the default broken build, whose failure is known exactly.
func (p Params) expectedCause(m Move) string {
	if m.ExpectCause == NewMasterFailureCause && p.Broken.Spec == DefaultBroken {
		return `unknown directive "gzip"`
	}
	return m.ExpectCause
}

// steady is how long the load runs before the first step.
func (p Params) steady() time.Duration {
	if p.Steady == 0 {
		return 1500 * time.Millisecond
	}
	return p.Steady
}

// planScenario records in meta what the scenario means to do, before it starts.
func (p Params) planScenario(meta *record.Meta, sc Scenario) {
	meta.SteadyMs = float64(p.steady().Milliseconds())
	meta.MaxStallMs = float64(p.maxStall().Milliseconds())
	if p.maxStall() > 0 && sc.MaxStall > p.maxStall() {
		meta.MaxStallMs = float64(sc.MaxStall.Milliseconds())
	}
	meta.PlannedSteps = []record.PlannedStep{}
	start, end := drainWindow(sc.Moves)
	for i, m := range sc.Moves {
		ps := record.PlannedStep{Name: m.Step.Name, AuditMs: float64(m.Audit.Milliseconds())}
		if m.ExpectFail {
			ps.Expected, ps.ExpectedCause = record.ExpectFail, p.expectedCause(m)
		}
		switch i {
		case start:
			ps.Drain = record.DrainStart
		case end:
			ps.Drain = record.DrainEnd
		}
		meta.PlannedSteps = append(meta.PlannedSteps, ps)
	}
	meta.ExpectDrops = sc.Drops
	meta.KnownLosses, meta.Strict = p.knownLosses(sc), p.Strict
	meta.FinalWant = &record.FinalPlan{Binary: sc.Final.Binary, Loose: sc.Final.Loose, Orphans: sc.Final.Orphans, PidFileOld: sc.Final.PidFileOld}
}

// Plan is what sc is meant to do under p, as run.json records it before
// any scenario starts (sealed with its digest): computed as its meta.json's
// plan is (planScenario), so that the two agree unless a record was changed.
// Plans are what each scenario is meant to do, for run.json: every
// scenario's record is held against its plan when the report is made.
func (p Params) Plans(scs []Scenario) []record.ScenarioPlan {
	out := make([]record.ScenarioPlan, 0, len(scs))
	for _, sc := range scs {
		out = append(out, p.Plan(sc))
	}
	return out
}

func (p Params) Plan(sc Scenario) record.ScenarioPlan {
	meta := record.Meta{Scenario: sc.Name, Expect: sc.Expect, Load: p.Load.Record()}
	p.planScenario(&meta, sc)
	plan := record.PlanOf(meta)
	plan.Source = record.PlanCatalogue
	for _, f := range sc.Faults {
		plan.Faults = append(plan.Faults, f.Name()+"@"+f.Step)
	}
	return plan.Sealed()
}

// newMeta describes a run of name against the pair from → to, with the
// load's plan, on clock.
func (p Params) newMeta(name, expect string, to image.Build, plan trafficPlan, clock loadgen.Clock) record.Meta {
	meta := record.Meta{Scenario: name, Expect: expect, From: p.From.Spec, To: to.Spec, FromBuild: BuildRef(p.From), ToBuild: BuildRef(to),
		Load:      p.Load.Record(),
		StartWall: clock.Start().Format(time.RFC3339Nano), Traffic: plan.record(), Observer: record.NewObserverPlan(),
		Heartbeat: p.heartbeatPlan()}
	if len(p.Load.Traffic) > 0 {
		meta.Load.Traffic = p.Load.Kinds()
	}
	if p.Load.Slow > 0 {
		meta.SlowBytes = loadgen.DefaultSlowBytes
	}
	if p.Site != nil {
		meta.Site = p.Site.siteMeta(nil, p.Load)
	}
	p.Load.describeTargets(&meta, plan)
	return meta
}

// BuildRef is what the report says of a build: its spec and what it
// resolved to.
func BuildRef(b image.Build) *record.BuildRef {
	ref := &record.BuildRef{Spec: b.Spec, Exact: b.Exact()}
	if b.Res != nil {
		ref.Version, ref.Suite, ref.Origin, ref.SHA256, ref.Note = b.Res.Version, b.Res.Suite, b.Res.Origin, b.Res.SHA256, b.Res.Note
	}
	return ref
}

// nodeOptions start a node of image with the configuration and command
// line under test, plus extra options.
func (p Params) nodeOptions(image string, extra ...nginx.NodeOption) []nginx.NodeOption {
	opts := []nginx.NodeOption{nginx.WithImage(image)}
	if p.Site != nil {
		opts = append(opts, p.Site.nodeOptions()...)
	} else if p.Config != nil {
		opts = append(opts, nginx.WithConfig(p.Config))
	}
	if p.Command != nil {
		opts = append(opts, nginx.WithCommand(p.Command))
	}
	if bin := p.agentBinary(); bin != "" && (p.LoadPath == LoadPathAgent || p.LoadPath == "" || p.LoadPath == LoadPathAuto) {
		opts = append(opts, nginx.WithAgent(bin, p.LoadPath == LoadPathAgent))
	}
	return append(opts, extra...)
}

// Progress receives live lines (steps, phases, load) for a person to read.
type Progress func(format string, args ...any)
