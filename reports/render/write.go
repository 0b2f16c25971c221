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
	for _, out := range []struct {
		name  string
		write func(io.Writer, *record.Report) error
	}{
		{record.ReportJSON, record.WriteJSON},
		{record.ReportMarkdown, WriteMarkdown},
		{record.ReportHTML, WriteHTML},
	} {
		if err := record.WriteFileAtomic(filepath.Join(dir, out.name), func(w io.Writer) error { return out.write(w, r) }); err != nil {
			return fmt.Errorf("write %s: %w", out.name, err)
		}
	}
	return nil
}
