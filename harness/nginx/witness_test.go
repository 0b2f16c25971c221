package nginx

import (
	"os"
	"strings"
	"testing"
)

// The harness's own configuration carries the same record --server-log
// adds to a user's tree: one format, two doors.
func TestDefaultConfigKeepsTheWitness(t *testing.T) {
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if !strings.Contains(flat(DefaultConfig), flat(WitnessFormat)) {
		t.Fatalf("DefaultConfig lacks the witness's log_format and access_log:\n%s", WitnessFormat)
	}
	if !usesWitness([]byte(DefaultConfig), nil) {
		t.Fatal("DefaultConfig does not name the witness's tmpfs")
	}
	if !strings.Contains(DefaultConfig, "add_header "+PidHeader+" $pid always;") {
		t.Fatal("DefaultConfig does not name the worker in its answers")
	}
}

func TestWithoutWitness(t *testing.T) {
	off := string(WithoutWitness([]byte(DefaultConfig)))
	if usesWitness([]byte(off), nil) || strings.Contains(off, "nuh_witness") || !strings.Contains(off, "access_log off;") {
		t.Fatalf("the witness is still on:\n%s", off)
	}
}

func TestCutPartLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"a\n", "a\n"}, {"a\nb", "a\n"}, {"a\nbc\nd", "a\nbc\n"}, {"abc", ""},
	} {
		f, err := os.CreateTemp(t.TempDir(), "log")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(tc.in)
		n, err := cutPartLine(f)
		f.Close()
		got, _ := os.ReadFile(f.Name())
		if err != nil || string(got) != tc.want || n != int64(len(tc.want)) {
			t.Errorf("%q: got %q (%d, %v), want %q", tc.in, got, n, err, tc.want)
		}
	}
}

func TestWithServerLog(t *testing.T) {
	tree := &Tree{Dir: "/site", Files: []TreeFile{{Path: "nginx.conf", Data: []byte("events {}\nhttp {\n    server { listen 80; }\n}\n")}}}
	out, err := WithServerLog(tree)
	if err != nil {
		t.Fatal(err)
	}
	main := string(out.Main())
	if !strings.Contains(main, "http {\n    include "+WitnessInclude+";") {
		t.Fatalf("no include at the top of the http block:\n%s", main)
	}
	if string(tree.Main()) == main {
		t.Fatal("the original tree was changed in place")
	}
	if !usesWitness(out.Main(), out) || usesWitness(tree.Main(), tree) {
		t.Fatal("the witness's tmpfs follows the include, not the tree")
	}
	if _, err := WithServerLog(out); err == nil {
		t.Fatal("a tree that has the include's file already must be refused")
	}
	if _, err := WithServerLog(&Tree{Dir: "/x", Files: []TreeFile{{Path: "nginx.conf", Data: []byte("events {}\n")}}}); err == nil {
		t.Fatal("a tree with no http block must be refused")
	}
}
