package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// maxRepeat bounds --repeat: each repeat of the default suite takes about
// a minute and a half here.
const maxRepeat = 100

// plan checks --repeat, --baseline and --junit and states what the run
// will do; pb is the baseline's parameters (the pair --from → --baseline).
func (f *runFlags) plan(p scenarios.Params, scs []scenarios.Scenario) (record.RunPlan, scenarios.Params, error) {
	plan := record.RunPlan{Repeat: f.repeat, From: p.From.Spec, To: p.To.Spec, Alpha: judge.Alpha, InsecureArchive: f.insecure}
	pb := p
	if f.repeat < 1 || f.repeat > maxRepeat {
		return plan, pb, bad("--repeat: got %d, want 1 to %d", f.repeat, maxRepeat)
	}
	if f.baseline != "" {
		b, err := image.ParseBuild(f.baseline)
		if err != nil {
			return plan, pb, bad("--baseline: %v", err)
		}
		pb.To = b
		plan.Baseline = b.Spec
	}
	if err := checkJUnitDir(f.junit, f.out); err != nil {
		return plan, pb, err
	}
	for _, sc := range scs {
		plan.Scenarios = append(plan.Scenarios, sc.Name)
		if sc.Broken && plan.Baseline != "" {
			plan.CandidateOnly = append(plan.CandidateOnly, sc.Name)
		}
	}
	return plan, pb, nil
}

// runPlanned runs the plan: cheap checks first (the mirror, the config on
// an image already there), then the images, the config on the pair, the
// provenance, and the scenarios — each repeat of the candidate followed by
// the same repeat of the baseline, so that a machine that slows down part
// way weighs on both alike.
func runPlanned(ctx context.Context, stderr io.Writer, f *runFlags, p, pb scenarios.Params, scs []scenarios.Scenario,
	plan record.RunPlan, args []string) error {
	start := time.Now()
	ss, err := openSession(ctx, stderr, f.out, "", f.insecure, func(pr scenarios.Progress) error {
		return resolvePlanned(ctx, f, &p, &pb, scs, plan, pr)
	})
	if err != nil {
		return err
	}
	defer ss.close()
	out, pool, pr := ss.out, ss.pool, ss.con.Line
	p.Live, pb.Live = ss.con.Live(), ss.con.Live()
	var bscs []scenarios.Scenario
	for _, sc := range scs {
		if !sc.Broken {
			bscs = append(bscs, sc)
		}
	}
	if err := precheck(ctx, pool, &p, scs, pr); err != nil {
		return err
	}
	plan.Plans = p.Plans(scs)
	if err := writeJSONFile(filepath.Join(out, record.PlanFile), plan); err != nil {
		return err
	}
	im, err := scenarios.PrepareImages(ctx, pool, scs, p, pr)
	if err != nil {
		return err
	}
	var imB scenarios.Images
	if plan.Baseline != "" && len(bscs) > 0 {
		if imB, err = scenarios.PrepareImages(ctx, pool, bscs, pb, pr); err != nil {
			return err
		}
	}
	if p.Site != nil {
		// The tree's own pre-check: what it listens on decides what every
		// container publishes, and what it cannot serve is left out of the load.
		var rejects *scenarios.NewBuildRejectsError
		if err := scenarios.CheckSite(ctx, pool, im, &p); errors.As(err, &rejects) {
			fmt.Fprintf(stderr, "nginx-upgrade-harness: %s\n", oneLine(err.Error()))
			return errFailed
		} else if err != nil {
			return badInput{err}
		}
		scs = scenarios.SiteScenarios(scs, &p)
		for _, l := range p.Site.Declared.Listeners {
			pr("listener %s", l)
		}
		for _, sk := range p.Site.Skipped {
			pr("not run against this configuration: %s: %s", sk.Profile, sk.Reason)
		}
		if len(scs) == 0 {
			return bad("--config-dir %s: no scenario chosen can run against it (see above)", p.Site.Tree.Dir)
		}
		bscs = scenarios.SiteScenarios(bscs, &scenarios.Params{Site: &scenarios.Site{}, Load: p.Load})
		plan.Scenarios = plan.Scenarios[:0]
		for _, sc := range scs {
			plan.Scenarios = append(plan.Scenarios, sc.Name)
		}
		plan.Plans = p.Plans(scs)
		if err := writeJSONFile(filepath.Join(out, record.PlanFile), plan); err != nil {
			return err
		}
		pb.Load, pb.Site = p.Load, p.Site
	} else if err := scenarios.CheckConfig(ctx, pool, im, p); err != nil {
		return badInput{err}
	}
	prov := provenance(ctx, pool, start, args, f.config, p, pb, im, imB, pr)
	provPath := filepath.Join(out, record.ProvenanceFile)
	if err := writeJSONFile(provPath, prov); err != nil {
		return err
	}
	if !plan.Layout() {
		if _, err := scenarios.RunSuite(ctx, pool, scs, p, im, out, pr); err != nil {
			return err
		}
	} else {
		for k := 1; k <= plan.Repeat && ctx.Err() == nil; k++ {
			pr("candidate %s → %s: run %d of %d", plan.From, plan.To, k, plan.Repeat)
			if _, err := scenarios.RunSuite(ctx, pool, scs, p, im, record.RepeatDir(out, record.PairCandidate, k), pr); err != nil {
				return err
			}
			if plan.Baseline != "" && len(bscs) > 0 && ctx.Err() == nil {
				pr("baseline %s → %s: run %d of %d", plan.From, plan.Baseline, k, plan.Repeat)
				if _, err := scenarios.RunSuite(ctx, pool, bscs, pb, imB, record.RepeatDir(out, record.PairBaseline, k), pr); err != nil {
					return err
				}
			}
			if _, err := scenarios.Render(out); err != nil {
				return err
			}
		}
	}
	if ctx.Err() == nil {
		d := time.Since(start).Seconds()
		prov.DurationS = &d
		if err := writeJSONFile(provPath, prov); err != nil {
			return err
		}
	}
	r, err := scenarios.Render(out)
	if err != nil {
		return err
	}
	printSummary(stderr, r)
	if f.junit != "" {
		if err := writeJUnit(f.junit, r); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "junit: %s\n", f.junit)
	}
	if err := ss.done(ctx); err != nil {
		return err
	}
	return verdictErr(r)
}

// resolvePlanned resolves every build of the plan to an exact version the
// archive (or the cache) holds, its files fetched: in seconds, and before
// Docker is reached.
func resolvePlanned(ctx context.Context, f *runFlags, p, pb *scenarios.Params, scs []scenarios.Scenario, plan record.RunPlan, pr scenarios.Progress) error {
	builds := []*image.Build{&p.From, &p.To}
	for _, sc := range scs {
		if sc.Broken {
			builds = append(builds, &p.Broken)
			break
		}
	}
	if plan.Baseline != "" {
		builds = append(builds, &pb.To)
	}
	if err := resolveBuilds(ctx, f, pr, builds...); err != nil {
		return err
	}
	pb.From = p.From
	if p.From.Res != nil && p.From.Exact() == p.To.Exact() {
		pr("%s and %s both resolve to %s: a same-binary upgrade (still a valid test of the procedure)", p.From.Spec, p.To.Spec, p.From.Exact())
	}
	return nil
}

// precheck finds in seconds what would otherwise fail after minutes of
// building: a configuration that the old build rejects (tried on a cached
// image with the same old build, when there is one).
func precheck(ctx context.Context, pool *dockertest.Pool, p *scenarios.Params, scs []scenarios.Scenario, pr scenarios.Progress) error {
	// A fault the engine cannot inject (cpu-starve on Podman's API, which
	// has no docker update) is bad input, before anything is built. Every
	// scenario carries the same faults: the first that needs it is asked
	// about, once.
	if c, ok := faultNeedingUpdate(scs); ok {
		if err := harness.CheckUpdate(ctx, pool); err != nil {
			return bad("--fault %s: %v", c.Name(), err)
		}
	}
	// When the pair is cached the configuration is checked on it right away
	// (after PrepareImages, which then costs nothing).
	if p.Config != nil && !image.PairCached(pool, p.From, p.To) {
		if ref := image.CachedPairWithOld(pool, p.From); ref != "" {
			if err := scenarios.CheckConfig(ctx, pool, scenarios.Images{Good: ref}, *p); err != nil {
				return badInput{err}
			}
		}
	}
	return nil
}

// faultNeedingUpdate is the first fault of scs that changes a running
// container through the engine (docker update).
func faultNeedingUpdate(scs []scenarios.Scenario) (fault.Chosen, bool) {
	for _, sc := range scs {
		for _, c := range sc.Faults {
			if fault.NeedsEngineUpdate(c.Fault) {
				return c, true
			}
		}
	}
	return fault.Chosen{}, false
}

// provenance records what this run is: the tool, the command line, the
// machine, the images and binaries, the configuration. What cannot be read
// is left null and said on the console; it never stops the run.
func provenance(ctx context.Context, pool *dockertest.Pool, start time.Time, args []string, configFile string,
	p, pb scenarios.Params, im, imB scenarios.Images, pr scenarios.Progress) *record.Provenance {
	ver, rev := buildVersion()
	prov := &record.Provenance{
		Tool:         record.Tool{Version: ver, Commit: rev},
		CommandLine:  append([]string{os.Args[0], "run"}, args...),
		Start:        start.UTC().Format(time.RFC3339Nano),
		Kernel:       harness.KernelRelease(),
		ConfigSHA256: nginx.ConfigSHA256(p.Config),
		Images:       []record.ImageProvenance{},
	}
	seen := map[string]bool{}
	for _, b := range []image.Build{p.From, p.To, p.Broken, pb.To} {
		if b.Spec != "" && !seen[b.Spec] && (b.Res != nil || b.Kind == image.KindBinary || b.Kind == image.KindImage) {
			seen[b.Spec] = true
			prov.Builds = append(prov.Builds, *scenarios.BuildRef(b))
		}
	}
	if p.Site != nil {
		prov.ConfigSHA256 = p.Site.Tree.SHA256()
		configFile = p.Site.Tree.Dir
	}
	if configFile != "" {
		abs, err := filepath.Abs(configFile)
		if err != nil {
			abs = configFile
		}
		prov.ConfigFile = &abs
	}
	if v, err := harness.DockerVersion(pool); err == nil {
		prov.Docker = &v
	} else {
		pr("provenance: docker version: %v", err)
	}
	for _, img := range []struct {
		ref      string
		from, to image.Build
	}{{im.Good, p.From, p.To}, {im.Broken, p.From, p.Broken}, {imB.Good, pb.From, pb.To}} {
		if img.ref == "" {
			continue
		}
		id, err := nginx.DescribeImage(ctx, pool, img.ref)
		if err != nil {
			pr("provenance: %v", err)
		}
		ip := record.ImageProvenance{From: img.from.Exact(), To: img.to.Exact(), Ref: img.ref, ID: id.ID}
		if id.Old != nil {
			ip.Old = &record.BinaryIdentity{Path: id.Old.Path, SHA256: id.Old.SHA256, V: id.Old.V}
		}
		if id.New != nil {
			ip.New = &record.BinaryIdentity{Path: id.New.Path, SHA256: id.New.SHA256, V: id.New.V}
		}
		prov.Images = append(prov.Images, ip)
	}
	return prov
}

func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeJUnit writes the JUnit XML of a report to path.
func writeJUnit(path string, r *record.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if err := render.WriteJUnit(f, r); err != nil {
		f.Close()
		return fmt.Errorf("--junit: %w", err)
	}
	return f.Close()
}

// resolveBuilds resolves builds in place (what debian:SUITE and
// source:stable name today, files fetched into the cache), obeying or
// writing the lock file when one is given; each resolution is one console
// line. A build that resolves to nothing, or from a suite whose signature
// does not verify, is bad input.
func resolveBuilds(ctx context.Context, f *runFlags, pr scenarios.Progress, builds ...*image.Build) error {
	r, err := newResolver(f, pr)
	if err != nil {
		return err
	}
	if err := r.Resolve(ctx, builds...); err != nil {
		return badInput{err}
	}
	return nil
}

// newResolver is a resolver whose lines go to the console, with the lock
// file when one is given, checking the archive's signatures unless
// --insecure-archive.
func newResolver(f *runFlags, pr scenarios.Progress) (*image.Resolver, error) {
	opts := []image.ResolverOption{image.WithProgress(lineWriter{pr}), image.WithInsecureArchive(f.insecure)}
	if f.lock != "" {
		opts = append(opts, image.WithLock(f.lock))
	}
	r, err := image.NewResolver(opts...)
	if err != nil {
		return nil, badInput{err}
	}
	return r, nil
}

// lineWriter turns written lines into console lines.
type lineWriter struct{ pr scenarios.Progress }

func (w lineWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			w.pr("%s", l)
		}
	}
	return len(b), nil
}

// checkJUnitDir refuses a --junit FILE whose directory does not exist,
// unless it is the report directory --out (or inside it), which the run
// makes: `--out DIR --junit DIR/junit.xml` is how CI keeps them together.
func checkJUnitDir(junit, out string) error {
	if junit == "" {
		return nil
	}
	dir := filepath.Dir(junit)
	if out != "" {
		if rel, err := filepath.Rel(filepath.Clean(out), dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			if rel != "." {
				return bad("--junit: %s: inside --out %s but not in it; write it to %s itself", junit, out, out)
			}
			return nil
		}
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return bad("--junit: %s: no such directory", dir)
	}
	return nil
}
