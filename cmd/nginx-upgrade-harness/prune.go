package main

import (
	"context"
	"fmt"
	"io"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
)

const pruneUsage = `Usage: nginx-upgrade-harness prune [--all] [--cache]

Removes the containers the harness left behind (label nginx-upgrade-harness=1)
whose creating process is gone. Runs clean up after themselves; this is for
a run that was killed hard (kill -9, a second Ctrl-C, a lost machine). With
--all it also removes the containers of runs still under way. With --cache
it also empties the build cache (the Debian package files, upstream tarballs
and archive indexes fetched so far, under $XDG_CACHE_HOME or ~/.cache): a
version the archive has withdrawn can then no longer be built.

Examples:
  nginx-upgrade-harness prune
  nginx-upgrade-harness prune --all
  nginx-upgrade-harness prune --cache

Exit codes: 0 done, 2 Docker unreachable.
`

func pruneCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("prune", pruneUsage, stderr)
	all := fs.Bool("all", false, "also remove the containers of runs still under way")
	cache := fs.Bool("cache", false, "also empty the build cache (package files, tarballs, indexes)")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	prune := harness.Prune
	if *all {
		prune = harness.PruneAll
	}
	n, err := prune(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "removed %d container(s)\n", n)
	return nil
}
