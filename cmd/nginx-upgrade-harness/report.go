package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

const reportUsage = `Usage: nginx-upgrade-harness report DIR

Rebuilds DIR/report.json, DIR/report.md and DIR/report.html from the records
a run left on disk (results.gob, connections.jsonl, events.jsonl, … in one
folder per scenario). Works on a run that was interrupted half-way, and on a compare directory: every
result written before the interruption is counted. The verdicts are
recomputed from the records, not copied.

A run with --repeat or --baseline is rebuilt whole: every repeat of
DIR/candidate/K/ and DIR/baseline/K/, the aggregates and the comparison.

A matrix run (run --matrix) is rebuilt cell by cell: DIR/cells/ID/ each,
then the matrix table. Two more forms, for matrices (see their --help):
  nginx-upgrade-harness report merge [--out DIR] SHARD-DIR…   shards into one report
  nginx-upgrade-harness report trend DIR…                     runs side by side, per cell

Example:
  nginx-upgrade-harness report reports-out/2026-11-26T10-00-00
  nginx-upgrade-harness report --junit junit.xml reports-out/2026-11-26T10-00-00
  nginx-upgrade-harness report reports-out/2026-11-26T10-00-00 --junit junit.xml   # flags after DIR work too

Exit codes: as run's — 0 the gate passed, 1 it failed, 2 bad input, 3 a
measurement is invalid.
`

func reportCmd(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "merge" {
		return reportMerge(ctx, args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "trend" {
		return reportTrend(ctx, args[1:], stderr)
	}
	fs := newFlagSet("report", reportUsage, stderr)
	junit := fs.String("junit", "", "also write a JUnit XML file")
	// Flags may come after the directory too: report DIR --junit FILE.
	dirs, err := parseWithDirs(fs, args)
	if err != nil {
		return err
	}
	if len(dirs) != 1 {
		return bad("report: want exactly one run directory, got %d%s (see report --help)", len(dirs), listed(dirs))
	}
	dir := dirs[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return bad("report: %s is not a directory", dir)
	}
	if reports.IsMatrixDir(dir) {
		return reportMatrix(dir, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.CompareFile)); err == nil {
		c, err := reports.RenderCompare(dir)
		if err != nil {
			return err
		}
		printCompare(stderr, c)
		printReportPath(stderr, dir, "")
		return nil
	}
	// A run with repeats or a baseline: each repeat's own reports first,
	// then the whole.
	for _, pair := range []string{record.PairCandidate, record.PairBaseline} {
		subs, _ := filepath.Glob(filepath.Join(dir, pair, "*"))
		for _, sub := range subs {
			if st, err := os.Stat(sub); err == nil && st.IsDir() {
				if _, err := reports.Render(sub); err != nil {
					return err
				}
			}
		}
	}
	r, err := reports.Render(dir)
	if err != nil {
		return err
	}
	printSummary(stderr, r)
	if *junit != "" {
		if err := writeJUnit(*junit, r); err != nil {
			return err
		}
	}
	printReportPath(stderr, dir, "")
	return verdictErr(r)
}

// listed is ": a b" for the arguments a message names, or "".
func listed(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return ": " + strings.Join(args, " ")
}
