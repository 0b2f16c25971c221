package render

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// WriteAll writes dir/report.json, dir/report.md and dir/report.html. Each
// file appears whole or not at all (written aside, then renamed).
func WriteAll(dir string, r *record.Report) error {
	return WriteFiles(dir, "write", r, WriteMarkdown, WriteHTML)
}

// WriteFiles writes dir/report.json (v as JSON), dir/report.md and
// dir/report.html of a report of any kind — a run's, a compare's, a
// matrix's — each whole or not at all; an error names the file after what
// was being written.
func WriteFiles[T any](dir, what string, v T, markdown, html func(io.Writer, T) error) error {
	for _, out := range []struct {
		name  string
		write func(io.Writer, T) error
	}{
		{record.ReportJSON, func(w io.Writer, v T) error { return record.WriteIndentedJSON(w, v) }},
		{record.ReportMarkdown, markdown},
		{record.ReportHTML, html},
	} {
		if err := record.WriteFileAtomic(filepath.Join(dir, out.name), func(w io.Writer) error { return out.write(w, v) }); err != nil {
			return fmt.Errorf("%s %s: %w", what, out.name, err)
		}
	}
	return nil
}
