package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Load is the traffic every scenario of a run gets.
type Load struct {
	Rate      int
	Method    string // GET or POST
	KeepAlive bool
	Slow      int // long downloads in flight across the transitions
	// Traffic are the traffic kinds (--traffic; see Kinds for the default).
	Traffic []string
	// Targets, when set (--targets), are the requests of the request kinds.
	Targets *Targets
}

// DefaultLoad is the default suite's traffic; README says why.
var DefaultLoad = Load{Rate: 500, Method: "GET", KeepAlive: false, Slow: 4}

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
}

// Load paths (Params.LoadPath).
const (
	LoadPathAuto  = "auto"
	LoadPathNetns = "netns"
	LoadPathHost  = "host"
)

// startLoad starts the run's load on node — the main profile, and long
// downloads sized to last span — by the chosen path, and records in meta
// (rewritten on disk) which path it took.
func (p Params) startLoad(ctx context.Context, node *nginx.Node, clock loadgen.Clock, dir string,
	span time.Duration, meta *record.Meta) (*loadgen.Load, loadgen.Slow, error) {
	slow := loadgen.Slow{Count: p.Load.Slow, BytesPerSec: int64(float64(loadgen.DefaultSlowBytes) / span.Seconds())}
	path := p.LoadPath
	if path == "" || path == LoadPathAuto {
		path = LoadPathHost
		if loadgen.CheckNetns(node.NetnsPath()) == nil {
			path = LoadPathNetns
		}
	}
	var load *loadgen.Load
	var err error
	switch path {
	case LoadPathNetns:
		profiles, opts, perr := p.Load.profiles(loadTargets{http: node.InnerURL(), https: node.InnerTLSURL(), addr: innerAddr(node)}, node.Certificate())
		if perr != nil {
			return nil, slow, perr
		}
		load, err = loadgen.RunWithOptions(ctx, node.InnerURL(), clock, dir, profiles, slow, append(opts, loadgen.InNetns(node.NetnsPath()))...)
		tlsNote := ""
		if node.TLSURL() != "" {
			tlsNote = " (and " + strings.TrimPrefix(node.InnerTLSURL(), "https://") + " for TLS)"
		}
		meta.LoadPath = fmt.Sprintf("inside the container's network namespace, to %s%s: straight to nginx, no proxy between",
			strings.TrimPrefix(node.InnerURL(), "http://"), tlsNote)
	case LoadPathHost:
		profiles, opts, perr := p.Load.profiles(loadTargets{http: node.URL(), https: node.TLSURL(), addr: node.HostAddr}, node.Certificate())
		if perr != nil {
			return nil, slow, perr
		}
		load, err = loadgen.RunWithOptions(ctx, node.URL(), clock, dir, profiles, slow, opts...)
		meta.LoadPath = "from the host to " + strings.TrimPrefix(node.URL(), "http://") +
			", through Docker's port proxy, to nginx on port " + strings.TrimPrefix(node.InnerURL(), "http://127.0.0.1:") +
			" in the container (a reset may reach the client as eof)"
		if contains(p.Load.Kinds(), TrafficHTTP2) {
			meta.LoadPath += "; HTTP/2 to " + strings.TrimPrefix(node.TLSURL(), "https://") + ", port " +
				strings.TrimPrefix(node.InnerTLSURL(), "https://127.0.0.1:") + " in the container"
		}
	default:
		return nil, slow, fmt.Errorf("load path %q: want auto, netns or host", p.LoadPath)
	}
	if err != nil {
		return nil, slow, err
	}
	if p.Site != nil {
		meta.Site = p.Site.siteMeta(node, p.Load)
	}
	serverLog := node.Witness()
	meta.ServerLog = &serverLog
	if err := writeJSON(filepath.Join(dir, record.MetaFile), meta); err != nil {
		load.Close()
		return nil, slow, err
	}
	return load, slow, nil
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

// plan records in meta what the scenario means to do, before it starts.
func (p Params) plan(meta *record.Meta, sc Scenario) {
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
}

// steady is how long the load runs before the first step.
func (p Params) steady() time.Duration {
	if p.Steady == 0 {
		return 1500 * time.Millisecond
	}
	return p.Steady
}

// ResolveBuilds resolves the run's builds (From, To, Broken) in place with
// one resolver: what debian:SUITE and source:stable name today, their
// files fetched into the cache. Each resolution is a progress line.
func ResolveBuilds(ctx context.Context, p *Params, progress Progress, opts ...image.ResolverOption) error {
	r, err := image.NewResolver(append([]image.ResolverOption{image.WithProgress(progressWriter{progress})}, opts...)...)
	if err != nil {
		return err
	}
	return r.Resolve(ctx, &p.From, &p.To, &p.Broken)
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

// newMeta describes a run of name against the pair from → to, on clock.
func (p Params) newMeta(name, expect string, to image.Build, clock loadgen.Clock) record.Meta {
	meta := record.Meta{Scenario: name, Expect: expect, From: p.From.Spec, To: to.Spec, FromBuild: BuildRef(p.From), ToBuild: BuildRef(to),
		Load:      record.Load{Rate: p.Load.Rate, Method: p.Load.Method, Keepalive: p.Load.KeepAlive, Slow: p.Load.Slow},
		StartWall: clock.Start().Format(time.RFC3339Nano), Traffic: p.Load.plan(), Observer: record.NewObserverPlan()}
	if len(p.Load.Traffic) > 0 {
		meta.Load.Traffic = p.Load.Kinds()
	}
	if p.Load.Slow > 0 {
		meta.SlowBytes = loadgen.DefaultSlowBytes
	}
	if p.Site != nil {
		meta.Site = p.Site.siteMeta(nil, p.Load)
	}
	p.Load.describeTargets(&meta)
	return meta
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
	return append(opts, extra...)
}

// Progress receives live lines (steps, phases, load) for a person to read.
type Progress func(format string, args ...any)

// Validate checks the load parameters before anything starts.
func (l Load) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("--rate: got %d, want at least 1 request per second", l.Rate)
	case l.Rate > 20000:
		return fmt.Errorf("--rate: got %d, want at most 20000 (above it this machine measures itself, not nginx)", l.Rate)
	case l.Method != "GET" && l.Method != "POST":
		return fmt.Errorf("--method: got %q, want GET or POST", l.Method)
	case l.Slow < 0 || l.Slow > 64:
		return fmt.Errorf("--slow: got %d, want 0 to 64 long downloads", l.Slow)
	}
	if _, err := ParseTraffic(l.Traffic); err != nil {
		return err
	}
	for _, tp := range l.plan() {
		if tk, _ := trafficKind(tp.Kind); tk.Requests && tp.Rate < 1 {
			return fmt.Errorf("rate %d: the request kinds share it, and %s gets none: give at least 1 per kind", l.Rate, tp.Kind)
		}
	}
	return l.validateTargets()
}

// Run plays one scenario in its own container under load and writes every
// record to dir/<scenario>: meta.json, events.jsonl, the load's files,
// final.json, end.json, and error.txt when it could not run. The returned
// error is for a scenario that could not run; a scenario that ran and lost
// requests returns nil — the verdict is the report's business.
func Run(ctx context.Context, pool *dockertest.Pool, sc Scenario, p Params, image string, dir string, progress Progress) (err error) {
	sdir := filepath.Join(dir, sc.Name)
	to := p.To
	if sc.Broken {
		to = p.Broken
	}
	steady := p.steady()
	meta := p.newMeta(sc.Name, sc.Expect, to, loadgen.NewClock())
	p.plan(&meta, sc)
	extra := append(faultNodeOptions(sc.Faults), nginx.WithLabel(harness.Label+".scenario", sc.Name))
	if p.Site != nil {
		var opts []nginx.NodeOption
		var notes []string
		if sc, opts, notes, err = siteScenario(sc, p.Site); err != nil {
			return err
		}
		extra = append(extra, opts...)
		meta.Notes = append(meta.Notes, notes...)
	}
	if sc.ConfigEdit != nil {
		base := p.Config
		if base == nil {
			base = []byte(nginx.DefaultConfig)
		}
		conf, err := sc.ConfigEdit(base)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		extra = append(extra, nginx.WithConfig(conf))
		meta.Notes = append(meta.Notes, sc.ConfigNote)
	}
	for k, v := range sc.Sysctls {
		extra = append(extra, nginx.WithSysctl(k, v))
		meta.Notes = append(meta.Notes, fmt.Sprintf("sysctl %s=%s in this scenario's container", k, v))
	}
	t, err := newTrial(ctx, pool, sc.Name, sdir, p, meta, progress, p.nodeOptions(image, extra...)...)
	if err != nil {
		os.WriteFile(filepath.Join(sdir, record.ErrorFile), []byte(oneLine(err.Error())+"\n"), 0o644)
		return err
	}
	defer t.close()
	defer func() {
		if err != nil {
			t.fail(err)
		}
	}()

	if err := t.startLoad(ctx, slowSpan(sc, steady), plannedDuration(sc, steady)); err != nil {
		return err
	}
	phase := "steady"
	t.progress("%s: steady for %s", sc.Name, steady)
	if err := p.watch(t.loadCtx, steady, t.load, sc.Name, &phase); err != nil && ctx.Err() != nil {
		return err
	}

	faults, err := newFaultLog(t)
	if err != nil {
		return err
	}
	driver := nginx.NewDriver(t.node)
	var faultErr error
	for _, m := range sc.Moves {
		if t.loadCtx.Err() != nil {
			break
		}
		t.progress("%s: %s%s", sc.Name, m.Step.Name, signalNote(m.Step.Signal))
		r := driver.Run(ctx, m.Step)
		t.stepSamples(r)
		ev := t.stepEvent(r)
		if m.ExpectFail {
			ev.Expected, ev.ExpectedCause = record.ExpectFail, p.expectedCause(m)
		}
		if err := t.event(ev); err != nil {
			return err
		}
		if r.OK && r.Phase != "" {
			phase = r.Phase
		}
		var stepErr error
		switch {
		case r.OK && !m.ExpectFail:
			t.progress("%s: %s verified in %s; phase %s", sc.Name, r.Name, r.Verified.Sub(r.Sent).Round(time.Millisecond), phaseName(r))
		case !r.OK && m.ExpectFail:
			t.progress("%s: %s failed as expected: %s", sc.Name, r.Name, r.Err)
		case r.OK && m.ExpectFail:
			stepErr = fmt.Errorf("%s verified but was expected to fail", r.Name)
		default:
			stepErr = fmt.Errorf("%s", r.Err)
		}
		if r.DockerFault {
			// The environment failed (a Docker call, the container's
			// state): the scenario could not run, whatever was expected.
			faultErr = fmt.Errorf("%s", r.Err)
			t.progress("%s: %s: %v", sc.Name, r.Name, faultErr)
			break
		}
		if stepErr != nil {
			t.progress("%s: %s: %v", sc.Name, r.Name, stepErr)
			break
		}
		faults.strike(ctx, sc, m.Step.Name, r.OK)
		if m.StartSlow > 0 && p.Load.Slow > 0 {
			t.progress("%s: starting %d long downloads on the workers that accept now", sc.Name, m.StartSlow)
			if err := t.load.StartDownloads(m.StartSlow, t.slow.BytesPerSec/3); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			break
		}
		if m.Audit > 0 {
			t.progress("%s: audit %s", sc.Name, m.Audit)
			if p.watch(t.loadCtx, m.Audit, t.load, sc.Name, &phase) != nil {
				break
			}
		}
	}

	faults.healAll(context.WithoutCancel(ctx), sc)
	if faultErr == nil {
		faultErr = t.envFault(ctx)
	}
	wait := quitTimeout
	if faultErr != nil {
		wait = 0 // the environment failed: the downloads cannot finish, cut them now
	}
	if _, err := t.finishLoad(ctx, wait); err != nil {
		return err
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer fcancel()
	final := finalState(fctx, t.node, sc, t.start)
	// The log is read after the final state, under a deadline of its own:
	// a large one takes seconds. Not when the environment failed: the
	// engine or the container does not answer, and the run is an error.
	if faultErr == nil {
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		werr := t.keepWitness(wctx)
		wcancel()
		if werr != nil {
			return werr
		}
	}
	if faultErr != nil {
		writeJSON(t.path(record.FinalFile), final)
		return faultErr
	}
	return t.end(ctx, final)
}

// loadMargin is what the load may run past the planned duration of its
// scenario before it is cut.
const loadMargin = 30 * time.Second

// plannedDuration is the longest a scenario's load may run: the steady
// phase, every step's timeout and audit, the wait for the long downloads,
// and a margin.
func plannedDuration(sc Scenario, steady time.Duration) time.Duration {
	d := steady + quitTimeout + loadMargin
	for _, m := range sc.Moves {
		t := m.Step.Timeout
		if t == 0 {
			t = 10 * time.Second
		}
		d += t + m.Audit + 10*time.Second
	}
	return d
}

// finalFrom reads what a snapshot says of the end state: every nginx
// process with its binary (a worker's is its master's: nginx forks its
// workers and never execs them), the masters, the pid files. It records;
// judge.Final says what is wrong with it.
func finalFrom(s proc.Snapshot) record.Final {
	f := record.Final{CheckErrors: []string{}, ServingBinary: "none", Processes: []record.FinalProcess{}}
	binaryOf := map[int]string{}
	for _, m := range s.Masters() {
		binaryOf[m.PID] = m.Binary
	}
	for _, p := range s.Procs {
		if p.Role == proc.RoleOther || !p.Alive() {
			continue
		}
		fp := record.FinalProcess{PID: p.PID, PPID: p.PPID, Role: string(p.Role), State: p.State, Binary: p.Binary}
		if p.Role != proc.RoleMaster {
			fp.Binary = "unknown"
			if b, ok := binaryOf[p.PPID]; ok {
				fp.Binary = b
			}
		}
		if fp.Binary == "" {
			fp.Binary = "unknown"
		}
		f.Processes = append(f.Processes, fp)
	}
	f.Masters = len(s.Masters())
	f.PIDFilePID = s.PidFile
	f.OldbinPresent = s.OldbinSet
	switch {
	case f.Masters == 1:
		m := s.Masters()[0]
		f.ServingBinary = m.Binary
		f.Workers = len(s.Workers(m.PID))
	case f.Masters > 1:
		f.ServingBinary = "unknown"
		for _, m := range s.Masters() {
			f.Workers += len(s.Workers(m.PID))
		}
	}
	return f
}

// finalState reads the end state and has the judge hold it against what
// the scenario must end on (final.json keeps the judge's word beside the
// processes: the original master's pid is known only here).
func finalState(ctx context.Context, node *nginx.Node, sc Scenario, start proc.Snapshot) record.Final {
	var s proc.Snapshot
	var err error
	// A master that just respawned workers may need a moment.
	for i := 0; i < 20; i++ {
		if s, err = node.Snapshot(ctx); err == nil && len(s.Masters()) == 1 && len(s.Workers(s.PidFile)) > 0 {
			break
		}
		if harness.IsDockerFault(err) {
			break // the container's state will not improve by asking again
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return record.Final{ExpectedBinary: sc.Final.Binary, ServingBinary: "unknown",
			CheckErrors: []string{"could not read the process table: " + err.Error()}}
	}
	f := finalFrom(s)
	f.ExpectedBinary = sc.Final.Binary
	f.Serving = node.Probe(ctx) == nil
	judge.Final(&f)
	judge.FinalChecks(&f, judge.FinalWant{Binary: sc.Final.Binary, Loose: sc.Final.Loose, Orphans: sc.Final.Orphans, PidFileOld: sc.Final.PidFileOld},
		judge.FinalSeen{StartPidFile: start.PidFile, Table: s.String()})
	return f
}

func phaseName(r nginx.StepResult) string {
	if r.Phase == "" {
		return "unchanged"
	}
	return r.Phase
}

func signalNote(sig string) string {
	if sig == "" {
		return ""
	}
	return " (" + sig + ")"
}

// watch lets the load run for d, feeding p.Live a status line of it.
func (p Params) watch(ctx context.Context, d time.Duration, load *loadgen.Load, name string, phase *string) error {
	if p.Live == nil {
		return sleep(ctx, d)
	}
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		s := load.Snapshot()
		var req, failed int64
		for _, ps := range s.Profiles {
			req, failed = req+ps.Requests, failed+ps.Failed
		}
		p.Live(fmt.Sprintf("%s [%s] %d requests, %d failed, %d retried, %d connections opened, downloads %d/%d done, %d cut",
			name, *phase, req, failed, s.Retried, s.Opened, s.Downloads.Completed, s.Downloads.Started, s.Downloads.Cut))
		if err := sleep(ctx, min(left, 500*time.Millisecond)); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// stepCost is about what sending and verifying a step takes here under
// the default load (a few execs in the container): measured 1.35 s a step
// for install + USR2 and 1.4 s for WINCH on the default upgrade at 500 req/s.
const stepCost = 1500 * time.Millisecond

// Long connections outlast the drain by this much of the planned time to
// its end, and at least drainMarginMin: steps run slower on a busy machine
// than planned, and a download that ends before the drain-ending step is
// sent proves nothing of the drain (reports.NothingProvesDrain).
const (
	drainMarginFraction = 0.5
	drainMarginMin      = 3 * time.Second
)

// drainSignals start a drain of the workers that hold the long connections.
var drainSignals = map[string]bool{"WINCH": true, "HUP": true, "QUIT": true, "TERM": true}

// drainWindow finds the move that starts the drain (the first WINCH, HUP,
// QUIT or TERM) and the one that ends it (the first one from there that
// waits for a set of workers to go: a QUIT or TERM to a master, or the
// wait for the old generation). -1, -1 when the scenario has none (KILL, a
// USR2 that must fail, a reload nginx rejects).
func drainWindow(moves []Move) (start, end int) {
	start, end = -1, -1
	for i, m := range moves {
		if start < 0 && drainSignals[m.Step.Signal] && !m.ExpectFail {
			start = i
		}
		if start >= 0 && i > start && (m.Step.Signal == "QUIT" || m.Step.Signal == "TERM" || m.Step.Name == nginx.OldGenerationDrainedStep) {
			return start, i
		}
	}
	return -1, -1
}

// slowSpan is how long the long downloads last. With a drain, from the
// load's start to the planned sending of the drain-ending step, plus the
// margin: they are in flight when the drain starts and when its end is
// sent, and the end's verification (the old master's exit) waits for them.
// Without one, across every step to half-way through the last audit; a
// scenario that cuts them (SlowOutlasts) makes them last three times that.
func slowSpan(sc Scenario, steady time.Duration) time.Duration {
	_, end := drainWindow(sc.Moves)
	span := steady
	if end >= 0 {
		for _, m := range sc.Moves[:end] {
			span += stepCost + m.Audit
		}
		return span + max(drainMarginMin, time.Duration(float64(span)*drainMarginFraction))
	}
	for i, m := range sc.Moves {
		span += stepCost
		if i < len(sc.Moves)-1 {
			span += m.Audit
		} else {
			span += m.Audit / 2
		}
	}
	if sc.SlowOutlasts {
		span *= 3
	}
	return span
}

// Images are the pair images a run needs: old→new, and old→broken when a
// scenario runs against the broken build.
type Images struct {
	Good, Broken string
	// GoodSystemd and BrokenSystemd are their systemd variants (empty
	// until PrepareSystemdImages), for procedures that run under systemd.
	GoodSystemd, BrokenSystemd string
}

// PrepareImages builds (or finds in the cache) the images the scenarios need.
func PrepareImages(ctx context.Context, pool *dockertest.Pool, scs []Scenario, p Params, progress Progress) (Images, error) {
	var im Images
	needGood, needBroken := false, false
	for _, s := range scs {
		if s.Broken {
			needBroken = true
		} else {
			needGood = true
		}
	}
	w := progressWriter{progress}
	if needGood {
		info, err := image.EnsureImage(ctx, pool, p.From, p.To, w)
		if err != nil {
			return im, err
		}
		im.Good = info.Ref
	}
	if needBroken {
		info, err := image.EnsureImage(ctx, pool, p.From, p.Broken, w)
		if err != nil {
			return im, err
		}
		im.Broken = info.Ref
	}
	return im, nil
}

type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			w.p("%s", l)
		}
	}
	return len(b), nil
}

// RunSuite runs the scenarios one after another into dir and renders the
// reports after each one, so that what is on disk is always complete up to
// the scenario that ran last. It stops early when ctx ends (Ctrl-C) and
// still renders what was measured.
func RunSuite(ctx context.Context, pool *dockertest.Pool, scs []Scenario, p Params, im Images, dir string, progress Progress) (*record.Report, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		image := im.Good
		if sc.Broken {
			image = im.Broken
		}
		if err := Run(ctx, pool, sc, p, image, dir, progress); err != nil {
			progress("%s: could not run: %v", sc.Name, err)
		}
		if _, err := Render(dir); err != nil {
			return nil, err
		}
	}
	return Render(dir)
}

// Render rebuilds report.json, report.md and report.html from the records
// in dir (reports.Render).
func Render(dir string) (*record.Report, error) { return reports.Render(dir) }

// DefaultBroken is the default broken new build: nginx compiled without the
// gzip module, which the default nginx.conf uses, so its master exits with
// `[emerg] unknown directive "gzip"`.
const DefaultBroken = "source:stable:--without-http_gzip_module"

// CheckConfig tries the configuration under test in a throwaway container
// before any scenario starts: the old binary's `nginx -t`, then nginx started
// and asked for what the load will ask — `/`, the long-download file at a
// limited rate when there are long downloads, `/post` for POST — so that a
// config that cannot serve the load is bad input (one line), not a failed
// scenario.
func CheckConfig(ctx context.Context, pool *dockertest.Pool, im Images, p Params) error {
	if p.Site != nil {
		return errors.New("a configuration tree is checked by CheckSite")
	}
	image := im.Good
	if image == "" {
		image = im.Broken
	}
	n, err := nginx.StartNode(ctx, pool, p.nodeOptions(image, nginx.WithoutStart())...)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	defer n.Close()
	if err := n.StartNginx(ctx); err != nil {
		return fmt.Errorf("--config: %w (does it listen on port %d? a configuration on its own ports goes in a tree: --config-dir)", err, nginx.ListenPort)
	}
	check := func(method, path string, body string, wantLen int64) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, method, n.URL()+path, strings.NewReader(body))
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return fmt.Errorf("--config: %s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("--config: %s %s answered %s, the load needs 200", method, path, resp.Status)
		}
		if wantLen > 0 && resp.ContentLength != wantLen {
			return fmt.Errorf("--config: %s %s has %d bytes, the long downloads expect %d", method, path, resp.ContentLength, wantLen)
		}
		return nil
	}
	if p.Load.Method == "POST" {
		if err := check("POST", "/post", strings.Repeat("x", 512), 0); err != nil {
			return err
		}
	} else if err := check("GET", "/", "", 0); err != nil {
		return err
	}
	if p.Load.Slow > 0 {
		if err := check("HEAD", loadgen.DefaultSlowPath+"?rate=1000000", "", loadgen.DefaultSlowBytes); err != nil {
			return err
		}
	}
	if err := p.Load.checkTraffic(ctx, n); err != nil {
		if te, ok := err.(targetsError); ok {
			return te.error
		}
		return fmt.Errorf("--config: %w", err)
	}
	return nil
}
