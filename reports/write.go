package reports

import (
	"fmt"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// Render rebuilds report.json, report.md and report.html from the records in dir.
func Render(dir string) (*record.Report, error) {
	r, err := BuildRun(dir)
	if err != nil {
		return nil, fmt.Errorf("build report from %s: %w", dir, err)
	}
	if err := render.WriteAll(dir, r); err != nil {
		return nil, fmt.Errorf("write report to %s: %w", dir, err)
	}
	return r, nil
}
