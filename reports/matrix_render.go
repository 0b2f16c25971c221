package reports

import (
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// WriteMatrix writes a matrix directory's report.json, report.md and
// report.html, each whole or not at all.
func WriteMatrix(dir string, r *MatrixReport) error {
	return render.WriteFiles(dir, "write", r, WriteMatrixMarkdown, WriteMatrixHTML)
}

// ReadMatrixReport reads a matrix report.json back.
func ReadMatrixReport(path string) (*MatrixReport, error) {
	var r MatrixReport
	if err := record.ReadJSON(path, &r); err != nil {
		return nil, fmt.Errorf("read matrix report: %w", err)
	}
	return &r, nil
}

// CellCombination is a cell's combination in words, for a table.
func CellCombination(c MatrixCell) (builds, config, traffic, faults, scenarios string) {
	faults = "none"
	if len(c.Faults) > 0 {
		faults = strings.Join(c.Faults, "+")
	}
	return c.From + " → " + c.To, c.Config, strings.Join(c.Traffic, "+"), faults, strings.Join(c.Scenarios, "+")
}

// StallCell and DurationCell print a nullable figure.
func StallCell(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f", *v)
}

func DurationCell(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f s", *v)
}

func matrixScope(r *MatrixReport) string {
	switch {
	case r.Matrix.Shard != nil:
		return fmt.Sprintf("shard %s: %d of the matrix's %d cells", r.Matrix.Shard, len(r.Cells), r.Matrix.Cells)
	case len(r.Matrix.MergedFrom) > 0:
		return fmt.Sprintf("%d cells, merged from %d shard directories (%s); every verdict recomputed from the cells' records",
			len(r.Cells), len(r.Matrix.MergedFrom), strings.Join(r.Matrix.MergedFrom, ", "))
	}
	return fmt.Sprintf("%d cells", len(r.Cells))
}

// WriteMatrixMarkdown writes report.md of a matrix: the verdict, then a row
// per cell linking to the cell's own report.
func WriteMatrixMarkdown(w io.Writer, r *MatrixReport) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Matrix %s: %s\n\n", r.Matrix.File, strings.ToUpper(r.Verdict))
	if r.InsecureArchive {
		fmt.Fprintf(b, "> **%s**\n\n", words.InsecureArchiveNote)
	}
	fmt.Fprintf(b, "%s (%d pass, %d fail, %d error); %d combinations excluded by the file. Matrix digest `%.12s`.\n\n",
		matrixScope(r), r.Counts.Pass, r.Counts.Fail, r.Counts.Error, r.Matrix.Excluded, r.Matrix.Digest)
	if len(r.Matrix.Engines) > 0 {
		fmt.Fprintf(b, "Docker engines: %s.\n\n", strings.Join(r.Matrix.Engines, ", "))
	}
	fmt.Fprintf(b, "Load: %d requests/s %s, keep-alive %t, %d long downloads.\n\n", r.Load.Rate, r.Load.Method, r.Load.KeepAlive, r.Load.Slow)
	fmt.Fprintf(b, "| cell | builds | config | traffic | faults | scenarios | verdict | dropped | stall ms | duration | engine |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---:|---:|---:|---|\n")
	for _, c := range r.Cells {
		builds, config, traffic, faults, scs := CellCombination(c.MatrixCell)
		id := "`" + c.ID + "`"
		if c.Report != "" {
			id = fmt.Sprintf("[`%s`](%s)", c.ID, c.Report)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | **%s** | %d | %s | %s | %s |\n", id, render.MdCell(builds), render.MdCell(config),
			traffic, faults, scs, strings.ToUpper(c.Verdict), c.Dropped, StallCell(c.StallMs), DurationCell(c.DurationS), render.MdCell(c.Engine))
	}
	var why []string
	for _, c := range r.Cells {
		if c.Verdict == record.VerdictPass {
			continue
		}
		for _, reason := range c.Reasons {
			why = append(why, fmt.Sprintf("- `%s` %s: %s", c.ID, strings.ToUpper(c.Verdict), render.MdCell(reason)))
		}
	}
	if len(why) > 0 {
		fmt.Fprintf(b, "\n## Why\n\n%s\n", strings.Join(why, "\n"))
	}
	var notRun []string
	for _, c := range r.Cells {
		for _, nr := range c.NotRun {
			notRun = append(notRun, fmt.Sprintf("- `%s`: %s", c.ID, render.MdCell(nr)))
		}
	}
	if len(notRun) > 0 {
		fmt.Fprintf(b, "\n## Not run against the cell's configuration\n\n%s\n", strings.Join(notRun, "\n"))
	}
	fmt.Fprintf(b, "\nEach cell's folder (`cells/ID/`) is a run directory: `nginx-upgrade-harness report cells/ID` rebuilds its report.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMatrixHTML writes report.html of a matrix: the same table, with a
// link from each cell to its own report.html.
func WriteMatrixHTML(w io.Writer, r *MatrixReport) error {
	tmpl, err := template.New("matrix").Funcs(template.FuncMap{
		"insecure": func() string { return words.InsecureArchiveNote },
		"upper":    strings.ToUpper,
		"combo": func(c CellResult) []string {
			builds, config, traffic, faults, scs := CellCombination(c.MatrixCell)
			return []string{builds, config, traffic, faults, scs}
		},
		"stall":    StallCell,
		"duration": DurationCell,
		"scope":    matrixScope,
		"cellHTML": func(c CellResult) string {
			return strings.TrimSuffix(c.Report, record.ReportMarkdown) + record.ReportHTML
		},
		"join": strings.Join,
	}).Parse(matrixHTML)
	if err != nil {
		return err
	}
	return tmpl.Execute(w, r)
}

const matrixHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Matrix {{.Matrix.File}}: {{upper .Verdict}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
td.n{text-align:right}.pass{background:#e6f4e6}.fail{background:#fbe3e3}.error{background:#fff3cd}
p.insecure{background:#fbe3e3;border:1px solid #b3261e;padding:.5em .8em;font-weight:bold}
</style></head><body>
<h1>Matrix {{.Matrix.File}}: <span class="{{.Verdict}}">{{upper .Verdict}}</span></h1>
{{if .InsecureArchive}}<p class="insecure">{{insecure}}</p>{{end}}
<p>{{scope .}} ({{.Counts.Pass}} pass, {{.Counts.Fail}} fail, {{.Counts.Error}} error); {{.Matrix.Excluded}} combinations excluded by the file.
{{if .Matrix.Engines}}Docker engines: {{join .Matrix.Engines ", "}}.{{end}}</p>
<table><tr><th>cell</th><th>builds</th><th>config</th><th>traffic</th><th>faults</th><th>scenarios</th><th>verdict</th><th>dropped</th><th>stall ms</th><th>duration</th><th>engine</th></tr>
{{range .Cells}}<tr class="{{.Verdict}}"><td>{{if .Report}}<a href="{{cellHTML .}}">{{.ID}}</a>{{else}}{{.ID}}{{end}}</td>
{{range combo .}}<td>{{.}}</td>{{end}}<td>{{upper .Verdict}}</td><td class="n">{{.Dropped}}</td><td class="n">{{stall .StallMs}}</td><td class="n">{{duration .DurationS}}</td><td>{{.Engine}}</td></tr>
{{if ne .Verdict "pass"}}<tr class="{{.Verdict}}"><td></td><td colspan="10">{{range .Reasons}}{{.}}<br>{{end}}</td></tr>{{end}}
{{end}}</table>
</body></html>
`

// RenderMatrix rebuilds every cell's report and the matrix's report.json,
// report.md and report.html from the records in dir.
func RenderMatrix(dir string, opt MatrixOptions) (*MatrixReport, error) {
	r, err := BuildMatrix(dir, opt)
	if err != nil {
		return nil, err
	}
	if err := WriteMatrix(dir, r); err != nil {
		return nil, err
	}
	return r, nil
}
