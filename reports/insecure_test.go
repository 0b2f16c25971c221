package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// A run whose builds were resolved with --insecure-archive says so at the
// top of every report: a top-level field of report.json, report.md's
// first lines, the page's heading; a run without it says nothing of it.
func TestInsecureArchiveSaidFirst(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		dir := t.TempDir()
		writeFixture(t, dir, "upgrade", upgradeFixture())
		writePlan(t, dir, record.RunPlan{Repeat: 1, From: "debian:bookworm", To: "debian:bookworm-security", Scenarios: []string{"upgrade"},
			Alpha: judge.Alpha, InsecureArchive: insecure})
		if _, err := Render(dir); err != nil {
			t.Fatal(err)
		}
		var top map[string]any
		data, _ := os.ReadFile(filepath.Join(dir, record.ReportJSON))
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		if v, ok := top["insecure_archive"]; ok != insecure || (insecure && v != true) {
			t.Errorf("insecure %t: report.json insecure_archive = %v (present %t)", insecure, v, ok)
		}
		md, _ := os.ReadFile(filepath.Join(dir, record.ReportMarkdown))
		first := strings.Join(strings.SplitN(string(md), "\n", 5)[:4], "\n")
		if strings.Contains(first, words.InsecureArchiveNote) != insecure || strings.Contains(string(md), "NOT checked") != insecure {
			t.Errorf("insecure %t: report.md begins\n%s", insecure, first)
		}
		page, _ := os.ReadFile(filepath.Join(dir, record.ReportHTML))
		h1 := bytes.Index(page, []byte("</h1>"))
		if note := bytes.Index(page, []byte("NOT checked")); (note > h1 && note < h1+200) != insecure {
			t.Errorf("insecure %t: report.html: the note at %d, the heading ends at %d", insecure, note, h1)
		}
	}
}

// compare's and matrix's reports say it first too.
func TestInsecureArchiveSaidFirstByCompareAndMatrix(t *testing.T) {
	var b strings.Builder
	if err := WriteCompareMarkdown(&b, &CompareReport{InsecureArchive: true}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.SplitN(b.String(), "\n", 4); !strings.Contains(lines[2], words.InsecureArchiveNote) {
		t.Errorf("compare report.md begins %q", lines)
	}
	b.Reset()
	if err := WriteCompareHTML(&b, &CompareReport{InsecureArchive: true}); err != nil || !strings.Contains(b.String(), "</h1>\n<p class=\"insecure\">") {
		t.Errorf("compare report.html: %v", err)
	}
	b.Reset()
	if err := WriteMatrixMarkdown(&b, &MatrixReport{InsecureArchive: true}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.SplitN(b.String(), "\n", 4); !strings.Contains(lines[2], words.InsecureArchiveNote) {
		t.Errorf("matrix report.md begins %q", lines)
	}
	b.Reset()
	if err := WriteMatrixHTML(&b, &MatrixReport{InsecureArchive: true}); err != nil || !strings.Contains(b.String(), "</h1>\n<p class=\"insecure\">") {
		t.Errorf("matrix report.html: %v", err)
	}
	for name, data := range map[string]any{"compare": &CompareReport{}, "matrix": &MatrixReport{}} {
		if out, _ := json.Marshal(data); strings.Contains(string(out), "insecure_archive") {
			t.Errorf("%s report.json without --insecure-archive: %s", name, out)
		}
	}
}
