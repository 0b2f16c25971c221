package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// printList writes `run --list`: the scenarios, the faults and the
// procedures, a line each, from their catalogues.
func printList(w io.Writer) {
	fmt.Fprintln(w, "Scenarios (--scenario NAME):")
	for _, s := range scenarios.Catalogue() {
		why, _, _ := strings.Cut(s.Why, ". ")
		fmt.Fprintf(w, "  %-22s %-9s expect %-10s %s\n", s.Name, s.Kind, s.Expect, strings.TrimSuffix(why, ".")+".")
	}
	fmt.Fprintln(w, "\nTraffic kinds (--traffic KIND, repeatable; several run together, each accounted on its own):")
	for _, k := range scenarios.TrafficKinds() {
		fmt.Fprintf(w, "  %-22s %s\n", k.Name, k.What)
	}
	fmt.Fprintln(w, "\nKnown losses (a zero-drops scenario passes with them, reported beside the verdict; --strict fails them):")
	for _, k := range scenarios.KnownLossCatalogue() {
		fmt.Fprintf(w, "  %-22s %s; classes %s, nginx's log: %s; at most %s. Remedy: %s.\n", k.Loss.Name,
			strings.ReplaceAll(k.Where, "`", ""), strings.Join(k.Loss.Classes, ", "), strings.Join(k.Loss.Witness, ", "),
			strings.ReplaceAll(k.Bound, "`", ""), k.Loss.Remedy)
	}
	fmt.Fprintln(w, "\nFaults (--fault NAME[@STEP]; they strike the graceful scenarios):")
	for _, f := range fault.Catalogue() {
		fmt.Fprintf(w, "  %-22s after %-19s %s\n", f.Name(), f.At(), f.What())
	}
	fmt.Fprintln(w, "\nProcedures (compare --procedure NAME):")
	for _, p := range procedure.Help() {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
