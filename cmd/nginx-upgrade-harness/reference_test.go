package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// TestReferenceUpToDate fails when docs/reference.md is not what the code
// generates: a scenario, fault, traffic kind, procedure or flag added or
// changed without `make docs`.
func TestReferenceUpToDate(t *testing.T) {
	var want bytes.Buffer
	if err := writeReference(&want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", ReferenceFile)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v (run `make docs`)", ReferenceFile, err)
	}
	if bytes.Equal(got, want.Bytes()) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s differs from what the code generates: run `make docs` and commit it\nline %d checked in: %q\nline %d generated:  %q",
				ReferenceFile, i+1, gl, i+1, wl)
		}
	}
}

// TestReferenceListsEveryEntry checks the page names every entry of the
// registries and every flag, so a table cannot silently drop a row.
func TestReferenceListsEveryEntry(t *testing.T) {
	var b bytes.Buffer
	if err := writeReference(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	var want []string
	for _, name := range []string{"run", "compare"} {
		fs, err := commandFlags(name)
		if err != nil {
			t.Fatal(err)
		}
		fs.VisitAll(func(f *flag.Flag) { want = append(want, "| `--"+f.Name) })
	}
	for _, s := range scenarios.Catalogue() {
		want = append(want, "| `"+s.Name+"` |")
	}
	for _, f := range fault.Catalogue() {
		want = append(want, "| `"+f.Name()+"` |")
	}
	for _, k := range scenarios.TrafficNames() {
		want = append(want, "| `"+k+"` |")
	}
	for _, k := range procedure.Kinds() {
		want = append(want, "| `"+k.Name)
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("the reference lacks %q", w)
		}
	}
}
