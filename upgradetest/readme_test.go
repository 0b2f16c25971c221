package upgradetest

import (
	"os"
	"strings"
	"testing"
)

// The README's spec for a user's own build is the text example_test.go
// compiles (and TestMyBuild runs), line for line.
func TestREADMESpecIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	want := between(t, string(example), "// my build: begin\n", "// my build: end\n")
	section := between(t, string(readme), "## Use it from your own Ginkgo suite\n", "\n## ")
	got := between(t, section, "```go\n", "```\n")
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("README.md's spec differs from example_test.go's; README:\n%s\nexample_test.go:\n%s", got, want)
	}
	if n := strings.Count(strings.TrimSpace(want), "\n") + 1; n >= 20 {
		t.Errorf("the user's spec is %d lines, want under 20", n)
	}
}

// between is the text of s after the first begin and before the next end.
func between(t *testing.T, s, begin, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, begin)
	if !ok {
		t.Fatalf("no %q", begin)
	}
	in, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("no %q after %q", end, begin)
	}
	return in
}
