package main

import (
	"context"
	"fmt"
	"io"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
)

const pruneUsage = `Usage: nginx-upgrade-harness prune [--run ID | --all] [--cache]

Removes the containers the harness left behind (label nginx-upgrade-harness=1)
whose run is provably gone: a reaper held the run, and none holds it any more.
Every run holds a reaper (a small container of the tool's own binary) that
removes its containers within 10 s when the run ends without doing so itself
(kill -9, a second Ctrl-C, a lost machine); this is for what a reaper could
not remove (the engine restarted under both). Runs are told apart by a random
id on their containers, never by a pid or a hostname: a run in another pid
namespace, container or host sharing the engine is never touched. Containers
of a run that had no reaper (it said so in one line, with its id) are kept:
--run ID removes those of one run; --all removes every container of the
harness, those of runs still under way and their reapers included. With
--cache it also empties the build cache (the Debian package files, upstream
tarballs and archive indexes fetched so far, under $XDG_CACHE_HOME or
~/.cache): a version the archive has withdrawn can then no longer be built.

Examples:
  nginx-upgrade-harness prune
  nginx-upgrade-harness prune --run 3f2a9c0d1e4b5a67
  nginx-upgrade-harness prune --all
  nginx-upgrade-harness prune --cache

Exit codes: 0 done, 2 bad input or Docker unreachable.
`

func pruneCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("prune", pruneUsage, stderr)
	all := fs.Bool("all", false, "remove every container of the harness, those of runs still under way included")
	run := fs.String("run", "", "remove the containers of run `ID` (the id a run names when it has no reaper)")
	cache := fs.Bool("cache", false, "also empty the build cache (package files, tarballs, indexes)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *all && *run != "" {
		return bad("--all and --run: choose one")
	}
	if *cache {
		dir, n, err := image.ClearCache()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "removed the build cache %s (%d files)\n", dir, n)
	}
	pool, err := harness.Connect()
	if err != nil {
		return err
	}
	var n int
	switch {
	case *all:
		n, err = harness.PruneAll(ctx, pool)
	case *run != "":
		n, err = harness.PruneRun(ctx, pool, *run)
	default:
		n, err = harness.Prune(ctx, pool)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "removed %d container(s)\n", n)
	if *all || *run != "" {
		return nil
	}
	runs, err := harness.Runs(ctx, pool)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.ID == "" {
			fmt.Fprintf(stderr, "kept %d container(s) with no run id: %s\n", r.Containers, r.Why())
			continue
		}
		fmt.Fprintf(stderr, "kept run %s: %d container(s), %s\n", r.ID, r.Containers, r.Why())
	}
	return nil
}
