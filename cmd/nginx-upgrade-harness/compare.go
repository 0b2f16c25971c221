package main

import (
	"context"
	"io"
)

const compareUsage = `Usage: nginx-upgrade-harness compare --procedure NAME [--procedure NAME …] [flags]
`

func compareCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("compare", compareUsage, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return bad("compare: not available yet")
}
