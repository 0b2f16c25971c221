package main

import (
	"context"
	"fmt"
	"io"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

const pruneUsage = `Usage: nginx-upgrade-harness prune [--all]

Removes the containers the harness left behind (label nginx-upgrade-harness=1)
whose creating process is gone. Runs clean up after themselves; this is for
a run that was killed hard (kill -9, a second Ctrl-C, a lost machine). With
--all it also removes the containers of runs still under way.

Examples:
  nginx-upgrade-harness prune
  nginx-upgrade-harness prune --all

Exit codes: 0 done, 2 Docker unreachable.
`

func pruneCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("prune", pruneUsage, stderr)
	all := fs.Bool("all", false, "also remove the containers of runs still under way")
	if err := parseFlags(fs, args); err != nil {
		return err
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
