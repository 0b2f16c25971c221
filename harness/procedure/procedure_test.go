package procedure

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "/usr/sbin/service nginx upgrade", want: []string{"/usr/sbin/service", "nginx", "upgrade"}},
		{in: `  a   'b c'  "d \"e\" $f" g\ h `, want: []string{"a", "b c", `d "e" $f`, "g h"}},
		{in: `x'y'"z"`, want: []string{"xyz"}},
		{in: `''`, want: []string{""}},
		{in: "a; rm -rf / | b", want: []string{"a;", "rm", "-rf", "/", "|", "b"}},
		{in: "", want: nil},
		{in: `'open`, err: "unterminated single quote"},
		{in: `"open`, err: "unterminated double quote"},
		{in: `end\`, err: "backslash"},
	} {
		got, err := SplitWords(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitWords(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	script := filepath.Join(t.TempDir(), "up.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec, kind, name, err string
	}{
		{spec: "manual", kind: "manual", name: "manual"},
		{spec: "debian-initd", kind: "debian-initd", name: "debian-initd"},
		{spec: "debian-package", kind: "debian-package", name: "debian-package"},
		{spec: "debian-package-host", kind: "debian-package-host", name: "debian-package-host"},
		{spec: "script:" + script, kind: "script", name: "script-up.sh"},
		{spec: `cmd:"/usr/local/bin/up grade" --now`, kind: "cmd", name: "cmd-up grade"},
		{spec: "script:/no/such/file.sh", err: "no such file"},
		{spec: "script:", err: "want script:PATH"},
		{spec: "cmd:", err: "empty command line"},
		{spec: "manual:x", err: "takes no argument"},
		{spec: "yum", err: `unknown procedure "yum"`},
	} {
		p, err := Parse(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Parse(%q) error = %v, want one line with %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || p.Kind != tc.kind || p.Name() != tc.name {
			t.Errorf("Parse(%q) = %+v (name %q), %v; want kind %s name %s", tc.spec, p, p.Name(), err, tc.kind, tc.name)
		}
	}
}
