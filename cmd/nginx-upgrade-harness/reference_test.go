package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// TestDocsLinksResolve follows every relative link of README.md and
// docs/*.md: the file must exist and the #anchor name one of its headings,
// so that moving a section breaks a test, not a reader's click.
func TestDocsLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no docs pages under %s: %v", root, err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	link := regexp.MustCompile(`\]\(([^)#\s]*)(#[^)\s]+)?\)`)
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			target, anchor := m[1], strings.TrimPrefix(m[2], "#")
			if strings.Contains(target, "://") {
				continue
			}
			file := page
			if target != "" {
				file = filepath.Join(filepath.Dir(page), target)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s: link to %s: no such file", page, target)
				continue
			}
			if anchor != "" && !slices.Contains(headingSlugs(t, file), anchor) {
				t.Errorf("%s: link to %s#%s: no such heading there", page, target, anchor)
			}
		}
	}
}

// headingSlugs are the anchors GitHub gives a Markdown file's headings.
func headingSlugs(t *testing.T, file string) []string {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fence := false
	punct := regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		out = append(out, strings.ReplaceAll(punct.ReplaceAllString(h, ""), " ", "-"))
	}
	return out
}
