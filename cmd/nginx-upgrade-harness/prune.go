package main

import (
	"context"
	"fmt"
	"io"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

const pruneUsage = `Usage: nginx-upgrade-harness prune

Removes every container the harness created (label nginx-upgrade-harness=1),
running or not. Runs clean up after themselves; this is for a run that was
killed hard (kill -9, a second Ctrl-C, a lost machine).

Example:
  nginx-upgrade-harness prune
`

func pruneCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("prune", pruneUsage, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pool, err := harness.Connect()
	if err != nil {
		return err
	}
	n, err := harness.Prune(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "removed %d container(s)\n", n)
	return nil
}
