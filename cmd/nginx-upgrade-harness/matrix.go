package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios/matrix"
)

// matrixFlags are run's flags for a matrix: the file, the engines, the shard.
type matrixFlags struct {
	file  string
	hosts multiFlag
	shard string
}

func registerMatrixFlags(fs *flag.FlagSet) *matrixFlags {
	mf := &matrixFlags{}
	fs.StringVar(&mf.file, "matrix", "", "run the cells of a matrix `FILE` (YAML or JSON: from, to, configs, traffic, faults, scenarios, exclude, rate): one report with a row per cell (docs/matrix.md)")
	fs.Var(&mf.hosts, "docker-host", "with --matrix, a Docker engine `URL` to run cells on, repeatable: one cell at a time per engine, concurrently (default: DOCKER_HOST or unix:///var/run/docker.sock); engines of this machine only — the load goes to 127.0.0.1")
	fs.StringVar(&mf.shard, "shard", "", "with --matrix, run only shard `I/N` of the cells (cell index modulo N is I-1), for CI matrix jobs; merge them with `report merge`")
	return mf
}

func (mf *matrixFlags) active() bool { return mf.file != "" || len(mf.hosts) > 0 || mf.shard != "" }

// matrixExcludes are run's flags the matrix file replaces.
var matrixExcludes = map[string]string{
	"scenario": "scenarios", "fault": "faults", "from": "from", "to": "to", "config": "configs", "traffic": "traffic",
	"repeat": "", "baseline": "", "junit": "", "list": "",
}

func runMatrix(ctx context.Context, stderr io.Writer, fs *flag.FlagSet, f *runFlags, mf *matrixFlags, args []string) error {
	start := time.Now()
	if mf.file == "" {
		return bad("--docker-host and --shard go with --matrix FILE")
	}
	var conflict error
	fs.Visit(func(fl *flag.Flag) {
		key, ok := matrixExcludes[fl.Name]
		if !ok || conflict != nil {
			return
		}
		if key == "" {
			conflict = bad("--%s does not go with --matrix", fl.Name)
		} else {
			conflict = bad("--%s: with --matrix the matrix file says which (its %q key)", fl.Name, key)
		}
	})
	if conflict != nil {
		return conflict
	}
	base, _, err := f.params()
	if err != nil {
		return err
	}
	m, err := matrix.Read(mf.file, base.Load)
	if err != nil {
		return badInput{err}
	}
	base.Load = m.Load
	for _, c := range m.Cells {
		if _, err := matrix.CellParams(base, c); err != nil {
			return bad("%s: %v", mf.file, err)
		}
	}
	var shard *reports.Shard
	if mf.shard != "" {
		if shard, err = matrix.ParseShard(mf.shard); err != nil {
			return badInput{err}
		}
	}
	cells := m.Shard(shard)
	hosts := []string(mf.hosts)
	if len(hosts) == 0 {
		h, _, err := harness.Engine()
		if err != nil {
			return badInput{err}
		}
		hosts = []string{h}
	}
	for _, h := range hosts {
		if err := harness.CheckEndpoint(h); err != nil {
			return badInput{err}
		}
	}
	out := f.out
	if out == "" {
		out = filepath.Join("reports-out", "matrix-"+time.Now().Format("2006-01-02T15-04-05"))
		if shard != nil {
			out += fmt.Sprintf("-shard%d-of-%d", shard.Index, shard.Count)
		}
	}
	if reports.IsMatrixDir(out) {
		return bad("--out %s already holds a matrix run: give a new directory", out)
	}
	removeIfEmpty, err := makeReportDir(out)
	if err != nil {
		return err
	}
	defer removeIfEmpty()
	con := newConsole(stderr)
	sayInsecure(con, f.insecure)
	pr := con.Line

	// What takes seconds to find is found before any cell starts: every
	// build resolved to an exact version the archive or the cache holds.
	res, err := newResolver(f, pr)
	if err != nil {
		return err
	}
	if err := m.Resolve(ctx, res); err != nil {
		return badInput{err}
	}
	if err := res.Resolve(ctx, &base.Broken); err != nil {
		return badInput{err}
	}
	engines, err := matrix.Connect(ctx, hosts)
	if err != nil {
		return badInput{err}
	}
	reachable := matrix.Reachable(engines)
	for _, e := range engines {
		if e.Err != nil {
			pr("engine %s: %v: the cells it takes are error cells", e.URL, e.Err)
		}
	}
	if len(reachable) == 0 {
		return fmt.Errorf("no Docker engine answers: %v", engines[0].Err)
	}
	var leases []*harness.Lease
	for _, e := range reachable {
		if n, err := harness.Prune(ctx, e.Pool); err == nil && n > 0 {
			pr("engine %s: removed %d container(s) left behind by an earlier run", e.URL, n)
		}
		leases = append(leases, holdReaper(ctx, e.Pool, func(format string, args ...any) {
			pr("engine %s: "+format, append([]any{e.URL}, args...)...)
		}))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout/2)
		defer cancel()
		for i, e := range reachable {
			if _, err := harness.PruneOwn(cctx, e.Pool); err != nil {
				fmt.Fprintf(stderr, "nginx-upgrade-harness: %s; remove them with `nginx-upgrade-harness prune --run %s`\n", oneLine(err.Error()), harness.RunID())
			}
			if err := leases[i].Close(); err != nil {
				fmt.Fprintf(stderr, "nginx-upgrade-harness: engine %s: %s\n", e.URL, oneLine(err.Error()))
			}
		}
	}()
	reportDirOnExit(ctx, out)
	scope := "the whole matrix"
	if shard != nil {
		scope = "shard " + shard.String()
	}
	pr("matrix %s: %d cells (%d excluded), %s: %d cells on %d worker(s)", mf.file, len(m.Cells), len(m.Excluded), scope, len(cells), len(engines))
	prov := matrixProvenance(start, args, reachable[0].Pool)
	provPath := filepath.Join(out, record.ProvenanceFile)
	if err := writeJSONFile(provPath, prov); err != nil {
		return err
	}
	r, err := m.Run(ctx, engines, shard, base, out, pr)
	if err != nil {
		return err
	}
	if ctx.Err() == nil {
		d := time.Since(start).Seconds()
		prov.DurationS = &d
		if err := writeJSONFile(provPath, prov); err != nil {
			return err
		}
		if r, err = reports.RenderMatrix(out, reports.MatrixOptions{}); err != nil {
			return err
		}
	}
	printMatrixSummary(stderr, r)
	pr("matrix took %s", time.Since(start).Round(time.Second))
	printReportPath(stderr, out, "also report.json, report.html; each cell's under cells/ID/")
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: the report holds what was measured until then")
	}
	return verdictExit(r.Verdict)
}

// matrixProvenance is what a matrix run is: the tool, the command line, the
// machine and the first engine's version; each cell's images are in its
// own records.
func matrixProvenance(start time.Time, args []string, pool *dockertest.Pool) *record.Provenance {
	ver, rev := buildVersion()
	prov := &record.Provenance{Tool: record.Tool{Version: ver, Commit: rev},
		CommandLine: append([]string{os.Args[0], "run"}, args...), Start: start.UTC().Format(time.RFC3339Nano),
		Kernel: harness.KernelRelease(), Images: []record.ImageProvenance{}}
	if v, err := harness.DockerVersion(pool); err == nil {
		prov.Docker = &v
	}
	return prov
}

func printMatrixSummary(w io.Writer, r *reports.MatrixReport) {
	rows := [][]string{{"CELL", "VERDICT", "DROPPED", "STALL ms", "DURATION", "ENGINE"}}
	var notes [][]string
	for _, c := range r.Cells {
		rows = append(rows, []string{c.ID, strings.ToUpper(c.Verdict), fmt.Sprint(c.Dropped), reports.StallCell(c.StallMs),
			reports.DurationCell(c.DurationS), c.Engine})
		var n []string
		if c.Verdict != record.VerdictPass {
			n = c.Reasons
		}
		notes = append(notes, n)
	}
	printRows(w, rows, notes)
	fmt.Fprintf(w, "\nverdict: %s (%d pass, %d fail, %d error; gate: %s)\n", strings.ToUpper(r.Verdict), r.Counts.Pass, r.Counts.Fail, r.Counts.Error, r.Gate)
}

// reportMatrix re-renders a matrix directory from its records.
func reportMatrix(dir string, stderr io.Writer) error {
	r, err := reports.RenderMatrix(dir, reports.MatrixOptions{Write: true})
	if err != nil {
		return err
	}
	printMatrixSummary(stderr, r)
	printReportPath(stderr, dir, "")
	return verdictExit(r.Verdict)
}

const reportMergeUsage = `Usage: nginx-upgrade-harness report merge [--out DIR] SHARD-DIR…

Merges the directories of the shards of one matrix run (run --matrix FILE
--shard I/N, one per CI job) into one report: each cell's records are
gathered under DIR/cells/ID/ and every verdict is recomputed from them —
none is copied. Shards of different matrices are refused (exit 2); a cell
no shard ran is an error cell ("not run by any shard").

Example:
  nginx-upgrade-harness report merge --out merged shard-1 shard-2
`

const reportTrendUsage = `Usage: nginx-upgrade-harness report trend [--out FILE] DIR…

Puts runs of the same matrix side by side, cell by cell, in the order given
(oldest first): verdict, dropped, stall and duration per cell, with ▲ where
a cell got worse than in the run before. The cells line up by their place
in the matrix file (from#1, to#2, config, traffic, faults, scenarios), so
runs over successive builds compare. Exit 1 when the last run made a cell
worse, else 0.

Example:
  nginx-upgrade-harness report trend nightly-1 nightly-2 nightly-3
`

// parseWithDirs parses flags given before, between or after the
// directories.
func parseWithDirs(fs *flag.FlagSet, args []string) ([]string, error) {
	var dirs []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return dirs, nil
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func reportMerge(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("report merge", reportMergeUsage, stderr)
	out := fs.String("out", "", "the merged report's `DIR` (default: a new directory under ./reports-out/)")
	dirs, err := parseWithDirs(fs, args)
	if err != nil {
		var help helpRequested
		if errors.As(err, &help) {
			fmt.Fprint(stderr, reportMergeUsage)
			return nil
		}
		return err
	}
	if len(dirs) == 0 {
		return bad("report merge: want one or more shard directories (see report merge --help)")
	}
	if *out == "" {
		*out = filepath.Join("reports-out", "matrix-merged-"+time.Now().Format("2006-01-02T15-04-05"))
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return bad("report merge: %s is not a directory", d)
		}
		if !reports.IsMatrixDir(d) {
			return bad("report merge: %s is not a matrix run directory (no %s)", d, reports.MatrixFile)
		}
		if same(d, *out) {
			return bad("report merge: --out %s is one of the shards: give a new directory", *out)
		}
	}
	if reports.IsMatrixDir(*out) {
		return bad("report merge: --out %s already holds a matrix run: give a new directory", *out)
	}
	r, err := reports.MergeMatrix(*out, dirs)
	if err != nil {
		if strings.Contains(err.Error(), "another matrix") || strings.Contains(err.Error(), "run by both") || strings.Contains(err.Error(), "does not have") {
			return badInput{err}
		}
		return err
	}
	printMatrixSummary(stderr, r)
	printReportPath(stderr, *out, "")
	return verdictExit(r.Verdict)
}

func same(a, b string) bool {
	x, err1 := filepath.Abs(a)
	y, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && x == y
}

func reportTrend(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("report trend", reportTrendUsage, stderr)
	out := fs.String("out", "", "also write the table as Markdown to `FILE`")
	dirs, err := parseWithDirs(fs, args)
	if err != nil {
		var help helpRequested
		if errors.As(err, &help) {
			fmt.Fprint(stderr, reportTrendUsage)
			return nil
		}
		return err
	}
	if len(dirs) < 2 {
		return bad("report trend: want two or more matrix run directories, oldest first (see report trend --help)")
	}
	var runs []*reports.MatrixReport
	for _, d := range dirs {
		if !reports.IsMatrixDir(d) {
			return bad("report trend: %s is not a matrix run directory (no %s)", d, reports.MatrixFile)
		}
		r, err := reports.BuildMatrix(d, reports.MatrixOptions{})
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	t, err := reports.BuildTrend(dirs, runs)
	if err != nil {
		return badInput{err}
	}
	if err := reports.WriteTrendMarkdown(stderr, t); err != nil {
		return err
	}
	if *out != "" {
		fh, err := os.Create(*out)
		if err != nil {
			return bad("--out: %v", err)
		}
		if err := reports.WriteTrendMarkdown(fh, t); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	if t.Worse > 0 {
		return errFailed
	}
	return nil
}
