package upgradetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Logf receives the harness's progress lines (steps, phases, image builds)
// for a person to read; GinkgoWriter.Printf fits.
type Logf func(format string, args ...any)

// Engine is the Docker engine of DOCKER_HOST (or the local socket) set up
// for upgrade runs by this process.
type Engine struct {
	pool  *dockertest.Pool
	lease *harness.Lease
	// heartbeat is the static CLI that also runs as the heartbeat in
	// nginx's container (the reaper's binary; the trial says why when it
	// is not a static build).
	heartbeat string
	logf      Logf
	timeout   time.Duration // of the set-up: NewEngine, each pair's builds
}

type engineConfig struct {
	reaper  string
	logf    Logf
	timeout time.Duration
}

// EngineOption configures NewEngine.
type EngineOption func(*engineConfig)

// Reaper names the static build of the CLI (make build's
// bin/nginx-upgrade-harness) that removes this process's containers if it
// dies. Default: $NUH_REAPER_BINARY, else this process's executable. A test
// binary linked with cgo cannot be one: the process then removes its
// containers itself on Close, and says so in the log.
func Reaper(path string) EngineOption { return func(c *engineConfig) { c.reaper = path } }

// Log sends progress lines to logf, each ending in a newline (default:
// nowhere).
func Log(logf Logf) EngineOption { return func(c *engineConfig) { c.logf = logf } }

// SetupTimeout bounds NewEngine and each Pair's builds (default 15 min: a
// source build takes a few on a cold cache).
func SetupTimeout(d time.Duration) EngineOption { return func(c *engineConfig) { c.timeout = d } }

const (
	defaultSetupTimeout = 15 * time.Minute
	closeTimeout        = time.Minute
)

// NewEngine connects to the Docker engine, removes what earlier runs left
// behind whose process is provably gone, and holds this process's reaper.
// Close it when done (DeferCleanup(engine.Close) on the next line).
func NewEngine(ctx context.Context, opts ...EngineOption) (*Engine, error) {
	cfg := engineConfig{reaper: os.Getenv("NUH_REAPER_BINARY"), logf: func(string, ...any) {}, timeout: defaultSetupTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.timeout <= 0 {
		return nil, fmt.Errorf("upgradetest: SetupTimeout(%s): want a positive duration", cfg.timeout)
	}
	if cfg.logf == nil {
		return nil, errors.New("upgradetest: Log(nil): give a function, or leave the option out")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	pool, err := harness.Connect()
	if err != nil {
		return nil, fmt.Errorf("upgradetest: no engine: %w", err)
	}
	e := &Engine{pool: pool, logf: lines(cfg.logf), timeout: cfg.timeout}
	if n, err := harness.Prune(ctx, pool); err != nil {
		return nil, fmt.Errorf("upgradetest: sweep of earlier runs' leftovers: %w", err)
	} else if n > 0 {
		e.logf("removed %d container(s) left behind by an earlier run", n)
	}
	var lopts []harness.LeaseOption
	e.heartbeat = cfg.reaper
	if cfg.reaper != "" {
		lopts = append(lopts, harness.ReaperBinary(cfg.reaper))
	} else if exe, err := os.Executable(); err == nil {
		e.heartbeat = exe
	}
	lease, err := harness.HoldLease(ctx, pool, append(lopts, harness.LeaseLog(cfg.logf))...)
	if err != nil {
		e.logf("%s: this process (run %s) removes its containers itself on Close", harness.OneLine(err.Error()), harness.RunID())
	} else {
		e.lease = lease
	}
	return e, nil
}

// lines ends each line with a newline: the harness's lines carry none,
// and a Printf such as GinkgoWriter's adds none.
func lines(logf Logf) Logf {
	return func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		logf("%s", line)
	}
}

// Close removes the containers this process created and has not removed
// (each scenario removes its own: this is the safety net), then lets the
// reaper go. It is bounded by a minute.
func (e *Engine) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_, err := harness.PruneOwn(ctx, e.pool)
	if err != nil {
		err = fmt.Errorf("upgradetest: %s; remove them with `nginx-upgrade-harness prune --run %s`", harness.OneLine(err.Error()), harness.RunID())
	}
	if e.lease != nil {
		err = errors.Join(err, e.lease.Close())
	}
	return err
}

// Pool is the engine's connection, for code that drives the harness's
// lower layers itself (the project's own suite); a spec that runs
// scenarios through a Pair needs none.
func (e *Engine) Pool() *dockertest.Pool { return e.pool }
