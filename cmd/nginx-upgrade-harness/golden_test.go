package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// updateGolden rewrites testdata/golden/ from what `report DIR` makes now:
// only when the output is meant to change (go test -run TestReportGolden -update).
var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenRecords are recorded directories checked in: a run, a compare
// and a matrix, each as the tool left them (records only: every report
// file is rebuilt from them).
var goldenRecords = []struct {
	name, dir string
	outputs   []string // the files compared byte for byte
	// junit writes the JUnit XML of a record the report command gives no
	// --junit for (compare's is compare --expect's); "cli" takes report
	// --junit's; "" none (a matrix has none).
	junit string
}{
	{"run", "../../reports/testdata/upgrade-run", reportFiles(""), "cli"},
	{"compare", "../../reports/testdata/compare-gate", reportFiles(""), "compare"},
	{"matrix", "../../reports/testdata/matrix-run", append(reportFiles(""),
		append(reportFiles("cells/debian-bookworm-security_one-worker_http2_nofault_upgrade"),
			reportFiles("cells/source-stable_one-worker_http2_nofault_upgrade")...)...), ""},
}

// reportFiles are report.json, report.md and report.html under dir.
func reportFiles(dir string) []string {
	return []string{filepath.Join(dir, record.ReportJSON), filepath.Join(dir, record.ReportMarkdown), filepath.Join(dir, record.ReportHTML)}
}

// TestReportGolden: `report DIR` over recorded directories gives the same
// report.json, report.md, report.html and JUnit, byte for byte, as the
// files under testdata/golden/ — the guard of every restructure of the
// record, the checker and the renderers. The tool's version comes from
// the records (provenance.json), so nothing is masked.
func TestReportGolden(t *testing.T) {
	for _, g := range goldenRecords {
		t.Run(g.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), g.name)
			copyTree(t, g.dir, dir)
			junit := filepath.Join(t.TempDir(), "junit.xml")
			args := []string{dir}
			if g.junit == "cli" {
				args = []string{"--junit", junit, dir}
			}
			var stderr bytes.Buffer
			if code := realMain(append([]string{"report"}, args...), io.Discard, &stderr); code == exitBadInput {
				t.Fatalf("report %s: exit %d: %s", g.name, code, stderr.String())
			}
			got := map[string]string{}
			switch g.junit {
			case "compare":
				c, err := reports.RenderCompare(dir)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(junit)
				if err != nil {
					t.Fatal(err)
				}
				if err := reports.WriteCompareJUnit(f, c); err != nil {
					t.Fatalf("junit of %s: %v", g.name, err)
				}
				f.Close()
				fallthrough
			case "cli":
				got["junit.xml"] = junit
			}
			for _, o := range g.outputs {
				got[o] = filepath.Join(dir, o)
			}
			for name, path := range got {
				have, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				golden := filepath.Join("testdata", "golden", g.name, name)
				if *updateGolden {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, have, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%s: %v (make it with go test -run TestReportGolden -update)", name, err)
				}
				if !bytes.Equal(have, want) {
					t.Errorf("%s of the %s record differs from %s:\n%s", name, g.name, golden, firstDiff(want, have))
				}
			}
		})
	}
}

// firstDiff shows the first line where two files part.
func firstDiff(want, have []byte) string {
	w, h := bytes.Split(want, []byte("\n")), bytes.Split(have, []byte("\n"))
	for i := 0; i < len(w) || i < len(h); i++ {
		var wl, hl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(h) {
			hl = h[i]
		}
		if !bytes.Equal(wl, hl) {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + string(wl) + "\n  have: " + string(hl)
		}
	}
	return "(same lines, different bytes)"
}

// copyTree copies a directory of records (regular files and folders).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
