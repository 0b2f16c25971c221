package upgradetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// Pair is an old and a new nginx build, resolved and built into an image
// on an Engine, ready to run scenarios on.
type Pair struct {
	engine  *Engine
	dir     string
	timeout time.Duration

	mu     sync.Mutex // guards params.Broken and images.Broken, resolved and built on first need
	params scenarios.Params
	images scenarios.Images
}

type pairConfig struct {
	broken string
	config []byte
	load   scenarios.Load
	dir    string
}

// PairOption configures Engine.Pair.
type PairOption func(*pairConfig)

// BrokenBuild is the new build the broken-build scenario upgrades to, one
// that cannot start with the configuration (default
// scenarios.DefaultBroken). It is resolved and built only when a scenario
// needs it.
func BrokenBuild(spec string) PairOption { return func(c *pairConfig) { c.broken = spec } }

// Config is the nginx.conf under test (default: the harness's,
// harness/nginx's DefaultConfig). It must listen where the harness's does
// (docs/builds.md).
func Config(nginxConf []byte) PairOption { return func(c *pairConfig) { c.config = nginxConf } }

// Load is the traffic every scenario of the pair gets (default
// scenarios.DefaultLoad: 500 GET/s without keep-alive, 4 long downloads).
func Load(l scenarios.Load) PairOption { return func(c *pairConfig) { c.load = l } }

// ReportDir is where the pair's runs write their records and report
// (default: a new directory under os.TempDir, kept for reading).
func ReportDir(dir string) PairOption { return func(c *pairConfig) { c.dir = dir } }

// Pair resolves from and to (build specs: debian:SUITE|VERSION,
// source:stable|mainline|VERSION[:FLAGS], binary:PATH, image:REF) and
// builds their image, or finds it in the cache.
func (e *Engine) Pair(ctx context.Context, from, to string, opts ...PairOption) (*Pair, error) {
	cfg := pairConfig{broken: scenarios.DefaultBroken, load: scenarios.DefaultLoad}
	for _, o := range opts {
		o(&cfg)
	}
	var p scenarios.Params
	var err error
	if p.From, err = image.ParseBuild(from); err != nil {
		return nil, fmt.Errorf("upgradetest: from: %w", err)
	}
	if p.To, err = image.ParseBuild(to); err != nil {
		return nil, fmt.Errorf("upgradetest: to: %w", err)
	}
	if p.Broken, err = image.ParseBuild(cfg.broken); err != nil {
		return nil, fmt.Errorf("upgradetest: broken build: %w", err)
	}
	p.Config, p.Load = cfg.config, cfg.load
	p.Heartbeat = e.heartbeat
	if err := p.Load.Validate(); err != nil {
		return nil, fmt.Errorf("upgradetest: load: %w", err)
	}
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "upgradetest-"); err != nil {
			return nil, fmt.Errorf("upgradetest: %w", err)
		}
		defer func() {
			if err != nil {
				os.Remove(cfg.dir)
			}
		}()
	} else if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("upgradetest: %w", err)
	}
	pr := &Pair{engine: e, dir: cfg.dir, timeout: e.timeout, params: p}
	ctx, cancel := context.WithTimeout(ctx, pr.timeout)
	defer cancel()
	// The broken build waits until a scenario needs it: resolving and
	// building it is a source build, minutes on a cold cache.
	good := p
	good.Broken = image.Build{}
	if err = scenarios.ResolveBuilds(ctx, &good, scenarios.Progress(e.logf)); err != nil {
		return nil, fmt.Errorf("upgradetest: resolving %s -> %s: %w", from, to, err)
	}
	pr.params.From, pr.params.To = good.From, good.To
	var im scenarios.Images
	goodOnly := []scenarios.Scenario{{Name: "good"}}
	if im, err = scenarios.PrepareImages(ctx, e.pool, goodOnly, good, scenarios.Progress(e.logf)); err != nil {
		return nil, fmt.Errorf("upgradetest: building the image of %s -> %s: %w", from, to, err)
	}
	pr.images.Good = im.Good
	return pr, nil
}

// Params are the pair's run parameters, its builds resolved (the broken
// one once a scenario needed it), for code that calls package scenarios
// itself.
func (p *Pair) Params() scenarios.Params {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

// Dir is the pair's report directory.
func (p *Pair) Dir() string { return p.dir }

// image is the image a scenario runs on: the pair's, or for one that needs
// the broken build, old -> broken, resolved and built on first need.
func (p *Pair) image(ctx context.Context, broken bool) (string, scenarios.Params, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !broken {
		return p.images.Good, p.params, nil
	}
	if p.images.Broken == "" {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		if err := scenarios.ResolveBuilds(ctx, &p.params, scenarios.Progress(p.engine.logf)); err != nil {
			return "", p.params, fmt.Errorf("upgradetest: resolving the broken build %s: %w", p.params.Broken.Spec, err)
		}
		brokenOnly := []scenarios.Scenario{{Name: "broken", Broken: true}}
		im, err := scenarios.PrepareImages(ctx, p.engine.pool, brokenOnly, p.params, scenarios.Progress(p.engine.logf))
		if err != nil {
			return "", p.params, fmt.Errorf("upgradetest: building the image of %s -> %s: %w", p.params.From.Spec, p.params.Broken.Spec, err)
		}
		p.images.Broken = im.Broken
	}
	return p.images.Broken, p.params, nil
}

type runConfig struct {
	attempts int
	timeout  time.Duration
	traffic  []string
	subdir   string
}

// RunOption configures Pair.Run and Pair.RunScenario.
type RunOption func(*runConfig)

// DefaultAttempts is how many times a scenario whose verdict is error is
// run, at most: the policy the project's CI documentation gives (a
// measurement that did not hold is retried; a fail never is).
const DefaultAttempts = 3

// Attempts runs a scenario whose verdict is error up to n times in all
// (default DefaultAttempts; 1: never again). A fail or a pass ends it.
// Each earlier attempt's record is kept in DIR/attempts/NAME-K, out of the
// report.
func Attempts(n int) RunOption { return func(c *runConfig) { c.attempts = n } }

// AttemptTimeout bounds one attempt (default 4 min; the longest catalogue
// scenario takes about one on a quiet machine). An attempt cut short
// keeps what it measured; its verdict is error.
func AttemptTimeout(d time.Duration) RunOption { return func(c *runConfig) { c.timeout = d } }

// Traffic runs this scenario under these traffic kinds (scenarios.Traffic*)
// instead of the pair's.
func Traffic(kinds ...string) RunOption { return func(c *runConfig) { c.traffic = kinds } }

// Subdir writes this run's records and report to a folder of the pair's
// report directory (e.g. one per traffic kind: two runs of one scenario in
// one directory replace each other).
func Subdir(name string) RunOption { return func(c *runConfig) { c.subdir = name } }

const defaultAttemptTimeout = 4 * time.Minute

// Result is a judged run of one scenario.
type Result struct {
	// Scenario is its entry of report.json: the verdict, its reasons, and
	// every figure the judge read.
	Scenario record.Scenario
	// Dir holds report.md, report.json, report.html, and the records in
	// Dir/NAME.
	Dir string
	// Attempts are the runs it took, the last one judged above.
	Attempts []Attempt
	// CouldNotRun is why the last attempt could not run, if it could not
	// (its verdict says so too).
	CouldNotRun error
}

// Attempt is one run of a scenario.
type Attempt struct {
	Verdict string
	Reasons []string
	Dropped int
	Stall   record.Stall
	Took    time.Duration
	RunErr  error
	Kept    string // where its record was moved when it was run again
}

func (a Attempt) String() string {
	s := fmt.Sprintf("verdict=%s dropped=%d stall=%.0f ms in %s, took %s, reasons=%v",
		a.Verdict, a.Dropped, a.Stall.Ms, a.Stall.Phase, a.Took.Round(time.Second), a.Reasons)
	if a.RunErr != nil {
		s += fmt.Sprintf(" (could not run: %v)", a.RunErr)
	}
	return s
}

// AttemptLines are the attempts for a report entry, one line each.
func (r *Result) AttemptLines() []string {
	var out []string
	for i, a := range r.Attempts {
		out = append(out, fmt.Sprintf("attempt %d: %s", i+1, a))
	}
	return out
}

// Run plays the catalogue scenario name (scenarios.Names) under load, in a
// container of its own, and returns its judged result. The error is for
// what kept it from being judged (an unknown scenario, a bad option, an
// image that could not be built, the context ended); a scenario that ran
// and lost requests returns its result and no error: the verdict says.
func (p *Pair) Run(ctx context.Context, name string, opts ...RunOption) (*Result, error) {
	if name == "" {
		return nil, fmt.Errorf("upgradetest: no scenario named (known: %v)", scenarios.Names())
	}
	scs, err := scenarios.Lookup([]string{name})
	if err != nil {
		return nil, fmt.Errorf("upgradetest: %w", err)
	}
	return p.run(ctx, scs[0], opts)
}

// RunScenario plays a scenario of your own steps, judged by the same rules
// as the catalogue's (the package documentation says how, and what it
// refuses).
func (p *Pair) RunScenario(ctx context.Context, sc scenarios.Scenario, opts ...RunOption) (*Result, error) {
	if err := CheckScenario(sc); err != nil {
		return nil, err
	}
	return p.run(ctx, sc, opts)
}

// CheckScenario says why a scenario of your own cannot be judged by the
// catalogue's rules, in one line, or returns nil.
func CheckScenario(sc scenarios.Scenario) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("upgradetest: scenario %q: %s", sc.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case sc.Name == "":
		return errors.New("upgradetest: a scenario needs a name")
	case len(sc.Moves) == 0:
		return bad("no steps")
	case len(sc.KnownLosses) > 0:
		return bad("declares known losses: a loss is excused only where the catalogue measured and named it")
	case sc.MaxStall != 0:
		return bad("raises the stall limit: only a catalogue fault, as measured, may")
	case len(sc.Faults) > 0:
		return bad("strikes faults: a fault comes with the expectation it was measured to have (run the catalogue's through the CLI's --fault)")
	case sc.Expect == scenarios.ExpectDrops && sc.Drops == nil:
		return bad("expects drops but does not say where and what (Drops)")
	case sc.Expect != scenarios.ExpectZeroDrops && sc.Expect != scenarios.ExpectDrops:
		return bad("expectation %q: want %q or %q", sc.Expect, scenarios.ExpectZeroDrops, scenarios.ExpectDrops)
	case sc.Final.Binary != "old" && sc.Final.Binary != "new":
		return bad("final binary %q: want old or new", sc.Final.Binary)
	}
	if _, err := scenarios.Lookup([]string{sc.Name}); err == nil {
		return bad("the name is a catalogue scenario's: give yours its own")
	}
	seen := map[string]bool{}
	for i, m := range sc.Moves {
		switch {
		case m.Step.Name == "":
			return bad("step %d has no name", i+1)
		case seen[m.Step.Name]:
			return bad("two steps named %s", m.Step.Name)
		case m.Step.Expect == nil:
			return bad("step %s verifies nothing (Step.Expect): build it with harness/nginx's constructors", m.Step.Name)
		case m.Step.Signal == "" && m.Step.Action == nil:
			return bad("step %s neither signals nor acts", m.Step.Name)
		}
		seen[m.Step.Name] = true
	}
	return nil
}

func (p *Pair) run(ctx context.Context, sc scenarios.Scenario, opts []RunOption) (*Result, error) {
	cfg := runConfig{attempts: DefaultAttempts, timeout: defaultAttemptTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.attempts < 1 {
		return nil, fmt.Errorf("upgradetest: Attempts(%d): want at least 1", cfg.attempts)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("upgradetest: AttemptTimeout(%s): want a positive duration", cfg.timeout)
	}
	if cfg.traffic != nil {
		l := p.Params().Load
		l.Traffic = cfg.traffic
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("upgradetest: traffic: %w", err)
		}
	}
	img, params, err := p.image(ctx, sc.Broken)
	if err != nil {
		return nil, err
	}
	if cfg.traffic != nil {
		params.Load.Traffic = cfg.traffic
	}
	dir := p.dir
	if cfg.subdir != "" {
		dir = filepath.Join(dir, cfg.subdir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("upgradetest: %w", err)
	}
	logf := p.engine.logf
	res := &Result{Dir: dir}
	for n := 1; n <= cfg.attempts; n++ {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, cfg.timeout)
		runErr := scenarios.Run(actx, p.engine.pool, sc, params, img, dir, scenarios.Progress(logf))
		cancel()
		if _, err := scenarios.Render(dir); err != nil {
			return res, fmt.Errorf("upgradetest: rendering the report in %s: %w", dir, err)
		}
		s, err := entryOf(dir, sc.Name)
		if err != nil {
			return res, err
		}
		res.Scenario, res.CouldNotRun = s, runErr
		res.Attempts = append(res.Attempts, Attempt{Verdict: s.Verdict, Reasons: s.Reasons, Dropped: s.Dropped,
			Stall: s.Stall, Took: time.Since(start), RunErr: runErr})
		logf("%s: attempt %d: %s", sc.Name, n, res.Attempts[n-1])
		if s.Verdict != record.VerdictError || n == cfg.attempts || ctx.Err() != nil {
			break
		}
		kept := filepath.Join(dir, "attempts", fmt.Sprintf("%s-%d", sc.Name, n))
		if err := keepAside(filepath.Join(dir, sc.Name), kept); err != nil {
			return res, err
		}
		res.Attempts[n-1].Kept = kept
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("upgradetest: %s: %w", sc.Name, context.Cause(ctx))
	}
	return res, nil
}

// keepAside moves an attempt's record out of the report directory.
func keepAside(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("upgradetest: %w", err)
	}
	if err := os.RemoveAll(to); err != nil {
		return fmt.Errorf("upgradetest: %w", err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("upgradetest: keeping an attempt aside: %w", err)
	}
	return nil
}

// entryOf reads scenario name's entry of dir/report.json.
func entryOf(dir, name string) (record.Scenario, error) {
	r, err := record.ReadReport(filepath.Join(dir, record.ReportJSON))
	if err != nil {
		return record.Scenario{}, fmt.Errorf("upgradetest: %w", err)
	}
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	return record.Scenario{}, fmt.Errorf("upgradetest: %s has no scenario %s", filepath.Join(dir, record.ReportJSON), name)
}
