package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// Engine is a Docker engine cells run on. The same URL given twice is two
// workers on one engine: they share its pool and its image builds.
type Engine struct {
	URL    string
	Pool   *dockertest.Pool // nil: unreachable (Err says why)
	Err    error
	images *sync.Mutex // image builds on this engine, one at a time
}

// Connect connects to each engine URL once, in order. An engine whose
// address or answer says it is on another machine is bad input (the load
// goes only to 127.0.0.1); an engine that does not answer is kept, with
// its error: the cells it takes become error cells.
func Connect(ctx context.Context, urls []string) ([]*Engine, error) {
	for _, u := range urls {
		if err := harness.CheckEndpoint(u); err != nil {
			return nil, &Error{err.Error()}
		}
	}
	out := make([]*Engine, len(urls))
	byURL := map[string]*Engine{}
	for i, u := range urls {
		if e, ok := byURL[u]; ok {
			out[i] = &Engine{URL: u, Pool: e.Pool, Err: e.Err, images: e.images}
			continue
		}
		e := &Engine{URL: u, images: &sync.Mutex{}}
		e.Pool, e.Err = harness.ConnectTo(ctx, u)
		if e.Err == nil {
			if err := harness.CheckLocal(ctx, e.Pool, u); err != nil {
				return nil, &Error{err.Error()}
			}
		}
		byURL[u], out[i] = e, e
	}
	return out, nil
}

// Reachable are the engines that answered, each once.
func Reachable(engines []*Engine) []*Engine {
	var out []*Engine
	seen := map[string]bool{}
	for _, e := range engines {
		if e.Pool != nil && !seen[e.URL] {
			seen[e.URL] = true
			out = append(out, e)
		}
	}
	return out
}

// CellParams are a run's parameters for one cell.
func CellParams(base scenarios.Params, c Cell) (scenarios.Params, error) {
	p := base
	p.From, p.To = c.FromBuild, c.ToBuild
	p.Config, p.Site = c.ConfigData, nil
	if c.ConfigDir {
		// A whole /etc/nginx tree, as --config-dir runs it: the cell's
		// pre-check (scenarios.CheckSite) reads its listeners.
		p.Config = nil
		p.Site = &scenarios.Site{Tree: c.Tree}
		if base.Site != nil {
			p.Site.Mounts, p.Site.Hosts, p.Site.UpstreamCmd = base.Site.Mounts, base.Site.Hosts, base.Site.UpstreamCmd
		}
	}
	p.Load.Traffic = c.Traffic
	p.Live = nil
	return p, p.Load.Validate()
}

// Run runs the cells of shard (all when nil) into out: DIR/matrix.json
// first, then each cell under DIR/cells/ID/, one worker per engine taking
// the next cell from a shared queue, and the matrix report rendered after
// each cell and at the end. A worker whose engine stops answering takes no
// more cells; what no worker ran is an error cell ("not run").
func (m *Matrix) Run(ctx context.Context, engines []*Engine, shard *reports.Shard, base scenarios.Params, out string,
	progress scenarios.Progress) (*reports.MatrixReport, error) {
	cells := m.Shard(shard)
	plan := m.Plan(shard)
	plan.InsecureArchive = base.InsecureArchive
	for _, e := range engines {
		plan.Engines = append(plan.Engines, e.URL)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if err := reports.WriteMatrixPlan(out, plan); err != nil {
		return nil, err
	}
	queue := make(chan Cell, len(cells))
	for _, c := range cells {
		queue <- c
	}
	close(queue)
	var renderMu sync.Mutex
	render := func() {
		renderMu.Lock()
		defer renderMu.Unlock()
		if _, err := reports.RenderMatrix(out, reports.MatrixOptions{Finished: true}); err != nil {
			progress("report: %v", err)
		}
	}
	var wg sync.WaitGroup
	for w, e := range engines {
		wg.Add(1)
		go func(w int, e *Engine) {
			defer wg.Done()
			for c := range queue {
				if ctx.Err() != nil {
					return
				}
				alive := runCell(ctx, e, c, base, out, progress)
				render()
				if !alive {
					progress("worker %d (%s): the engine does not answer: it takes no more cells", w+1, e.URL)
					return
				}
			}
		}(w, e)
	}
	wg.Wait()
	if left := len(queue); left > 0 && ctx.Err() == nil {
		progress("%d cell(s) not run: no engine left that answers", left)
	}
	return reports.RenderMatrix(out, reports.MatrixOptions{Write: true})
}

// runCell runs one cell on engine e into out/cells/ID and tells whether the
// engine still answers. A cell that cannot run (the engine is unreachable,
// its images cannot be built, its configuration does not serve) leaves an
// error.txt in each of its scenarios' folders: an error cell with the cause.
func runCell(ctx context.Context, e *Engine, c Cell, base scenarios.Params, out string, pr scenarios.Progress) (alive bool) {
	cdir := reports.CellDir(out, c.ID)
	start := time.Now()
	progress := func(format string, args ...any) { pr("%s: %s", c.ID, fmt.Sprintf(format, args...)) }
	if err := reports.CellRecordStart(cdir, c.ID, e.URL, start); err != nil {
		progress("%v", err)
	}
	scs, err := c.ScenarioList()
	cause := ""
	rec := reports.CellRecord{ID: c.ID, Engine: e.URL}
	defer func() {
		rec.Error = cause
		if err := reports.CellRecordEndWith(cdir, rec, start); err != nil {
			progress("%v", err)
		}
	}()
	failAll := func(why string) {
		cause = oneLine(why)
		progress("error cell: %s", cause)
		for _, sc := range scs {
			sdir := filepath.Join(cdir, sc.Name)
			os.MkdirAll(sdir, 0o755)
			os.WriteFile(filepath.Join(sdir, record.ErrorFile), []byte(cause+"\n"), 0o644)
		}
	}
	if err != nil {
		failAll(err.Error())
		return true
	}
	if e.Pool == nil {
		failAll(fmt.Sprintf("engine %s: %v", e.URL, e.Err))
		return false
	}
	engineAlive := func() bool {
		_, err := harness.ConnectTo(context.WithoutCancel(ctx), e.URL)
		return err == nil
	}
	p, err := CellParams(base, c)
	if err != nil {
		failAll(err.Error())
		return true
	}
	faults := "none"
	if len(c.Faults) > 0 {
		faults = strings.Join(c.Faults, "+")
	}
	progress("starting on %s: %s → %s, config %s, traffic %s, faults %s", e.URL, c.From, c.To, c.MatrixCell.Config,
		strings.Join(p.Load.Kinds(), "+"), faults)
	e.images.Lock()
	im, err := scenarios.PrepareImages(ctx, e.Pool, scs, p, progress)
	e.images.Unlock()
	if err != nil {
		failAll("images on " + e.URL + ": " + err.Error())
		return engineAlive()
	}
	if p.Site != nil {
		// The tree's pre-check: its listeners decide what the cell's
		// containers publish, what it cannot serve is left out (and
		// named in the cell's report).
		if err := scenarios.CheckSite(ctx, e.Pool, im, &p); err != nil {
			var rejects *scenarios.NewBuildRejectsError
			if errors.As(err, &rejects) {
				// The broken-build finding: a fail cell, nginx's line its record.
				rec.Finding = oneLine("broken build: the new build rejects the configuration tree the old build serves (" + rejects.Cause + "); no scenario run")
				progress("%s", rec.Finding)
				return engineAlive()
			}
			failAll(err.Error())
			return engineAlive()
		}
		kept := scenarios.SiteScenarios(scs, &p)
		for _, sk := range p.Site.Skipped {
			if name, ok := strings.CutPrefix(sk.Profile, "scenario "); ok {
				rec.NotRun = append(rec.NotRun, name+": "+sk.Reason)
			}
		}
		scs = kept
	} else if p.Config != nil || len(p.Load.Traffic) > 0 {
		if err := scenarios.CheckConfig(ctx, e.Pool, im, p); err != nil {
			failAll(err.Error())
			return engineAlive()
		}
	}
	// What each scenario of the cell is meant to do, before any runs: the
	// cell's report holds every record against it, as a run's does.
	cellPlan := record.RunPlan{Repeat: 1, From: p.From.Spec, To: p.To.Spec, InsecureArchive: base.InsecureArchive, Plans: p.Plans(scs)}
	for _, sc := range scs {
		cellPlan.Scenarios = append(cellPlan.Scenarios, sc.Name)
	}
	if err := record.WriteFileAtomic(filepath.Join(cdir, record.PlanFile), func(w io.Writer) error { return record.WriteIndentedJSON(w, cellPlan) }); err != nil {
		failAll("write the cell's plan: " + err.Error())
		return true
	}
	if _, err := scenarios.RunSuite(ctx, e.Pool, scs, p, im, cdir, progress); err != nil {
		cause = oneLine(err.Error())
		progress("%v", err)
	}
	if ctx.Err() != nil {
		cause = "interrupted"
		return true
	}
	return engineAlive()
}
