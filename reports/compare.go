package reports

import (
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// Builds a compare run puts through each procedure (Procedure.Build).
const (
	BuildGood   = "good"
	BuildBroken = "broken"
)

// Outcomes of a procedure (Procedure.Outcome), from the final state.
const (
	OutcomeUpgraded   = "upgraded"    // one master, the new binary serves
	OutcomeKeptOld    = "kept-old"    // the old set serves, the new binary never took over
	OutcomeRestarted  = "restarted"   // the service went down and came back
	OutcomeDown       = "down"        // nothing serves at the end
	OutcomeTwoMasters = "two-masters" // left half-way
	OutcomeFailed     = "failed"      // the procedure could not be run
)

// CompareReport is DIR/report.json of `compare` (design.md): packaging
// procedures side by side, each with a good and a broken new build.
type CompareReport struct {
	Schema int `json:"schema"`

	// InsecureArchive: the builds were resolved with --insecure-archive
	// (absent otherwise).
	InsecureArchive bool `json:"insecure_archive,omitempty"`

	From       string      `json:"from"`
	To         string      `json:"to"`
	Broken     string      `json:"broken"`
	Load       record.Load `json:"load"`
	Procedures []Procedure `json:"procedures"`

	// With --expect: what each build was expected to do, the verdict (the
	// worst of the summary rows') and its counts; Summary is a row per
	// procedure and build over its runs (with --expect or --repeat).
	Expect  *CompareExpect   `json:"expect,omitempty"`
	Verdict string           `json:"verdict,omitempty"`
	Counts  *record.Counts   `json:"counts,omitempty"`
	Repeat  int              `json:"repeat,omitempty"`
	Summary []CompareSummary `json:"summary,omitempty"`
	Missing int              `json:"missing_runs,omitempty"` // planned runs with no record (an interrupted compare)
}

// Procedure is one upgrade procedure run against one build.
type Procedure struct {
	Name       string          `json:"name"`
	Build      string          `json:"build"`
	Init       string          `json:"init"` // the init system it ran under: docker-init or systemd
	ExitCode   int             `json:"exit_code"`
	DurationMs float64         `json:"duration_ms"`
	Dropped    int             `json:"dropped"`
	Requests   record.Requests `json:"requests"`
	Final      record.Final    `json:"final"`
	Outcome    string          `json:"outcome"`

	// Extras, beyond the contract.
	Failures map[string]int `json:"failures_by_class"`
	Retried  int            `json:"retried"`
	SlowCut  int            `json:"slow_cut"`
	Verdict  string         `json:"verdict,omitempty"` // of the scenario the procedure ran in, if any
	Reasons  []string       `json:"reasons,omitempty"`
	Error    string         `json:"error,omitempty"` // why it could not be run

	Dir          string   `json:"dir,omitempty"`              // its record directory, under the compare run's
	TimedOut     bool     `json:"timed_out,omitempty"`        // the procedure hung and was killed at its timeout
	BinaryOnDisk string   `json:"binary_on_disk,omitempty"`   // old, new or unknown: what a restart would run
	Restart      []string `json:"restart_evidence,omitempty"` // why the outcome is restarted: what was seen
	Notes        []string `json:"notes,omitempty"`            // what a reader should know (policy-rc.d, a repackaged .deb…)

	Repeat int `json:"repeat,omitempty"` // its run under --repeat (1…N)
	// Under systemd: the unit nginx ran as and systemd's view before the
	// procedure (the view after is Final.Systemd).
	Unit          string              `json:"unit,omitempty"`
	SystemdBefore *record.SystemdView `json:"systemd_before,omitempty"`
	// With --expect: what its build was expected to do, and its verdict
	// against that (pass, fail, error) with the reasons.
	Expected      string   `json:"expected,omitempty"`
	Judged        string   `json:"judged,omitempty"`
	JudgedReasons []string `json:"judged_reasons,omitempty"`
}

// NewProcedure fills a procedure's load figures from the scenario it ran
// in; the caller sets Build, ExitCode, DurationMs and Outcome.
func NewProcedure(name string, s *record.Scenario) Procedure {
	p := Procedure{
		Name: name, Dropped: s.Dropped, Requests: s.Requests, Failures: map[string]int{},
		Retried: s.Retried, SlowCut: s.Slow.Cut, Verdict: s.Verdict, Reasons: s.Reasons, Error: s.Error,
	}
	for _, f := range s.Failures {
		p.Failures[f.Class] += f.Count
	}
	if s.Final != nil {
		p.Final = *s.Final
	}
	return p
}

// OutcomeOf names what a procedure left behind. ran is false when the
// procedure could not be run at all; wentDown tells that the load saw the
// service unreachable for a while (a restart, not a graceful upgrade).
func OutcomeOf(f *record.Final, ran, wentDown bool) string {
	switch {
	case !ran || f == nil:
		return OutcomeFailed
	case f.Masters >= 2:
		return OutcomeTwoMasters
	case f.Masters == 0 || !f.Serving:
		return OutcomeDown
	case wentDown:
		return OutcomeRestarted
	case f.ServingBinary == "new":
		return OutcomeUpgraded
	case f.ServingBinary == "old":
		return OutcomeKeptOld
	}
	return OutcomeFailed
}

// WriteCompareAll writes dir/report.json, report.md and report.html of a compare run.
func WriteCompareAll(dir string, c *CompareReport) error {
	for _, out := range []struct {
		name  string
		write func(io.Writer, *CompareReport) error
	}{
		{record.ReportJSON, func(w io.Writer, c *CompareReport) error { return record.WriteIndentedJSON(w, c) }},
		{record.ReportMarkdown, WriteCompareMarkdown},
		{record.ReportHTML, WriteCompareHTML},
	} {
		if err := record.WriteFileAtomic(filepath.Join(dir, out.name), func(w io.Writer) error { return out.write(w, c) }); err != nil {
			return fmt.Errorf("write compare %s: %w", out.name, err)
		}
	}
	return nil
}

// WriteCompareMarkdown writes the compare table.
func WriteCompareMarkdown(w io.Writer, c *CompareReport) error {
	mw := &render.MdWriter{W: w}
	if c.Expect != nil {
		mark := map[string]string{record.VerdictPass: "✓", record.VerdictFail: "✗", record.VerdictError: "⚠"}[c.Verdict]
		mw.Printf("%s %s — nginx upgrade procedures against `--expect %s`: %s\n\n", mark, strings.ToUpper(c.Verdict), render.MdCode(c.Expect.Spec), render.MdCell(CompareVerdictLine(c)))
	}
	mw.Printf("# nginx upgrade procedures compared\n\n")
	render.WriteMarkdownInsecure(mw, c.InsecureArchive)
	mw.Printf("From `%s` to `%s` (good) and `%s` (broken); load: %s.\n\n", render.MdCode(c.From), render.MdCode(c.To), render.MdCode(c.Broken), render.LoadLine(c.Load))
	if c.Expect != nil {
		mw.Printf("Expected: %s.\n\n", render.MdCell(expectWords(c.Expect)))
	}
	if len(c.Summary) > 0 {
		mw.Printf("| procedure | build | runs | outcomes | expected | verdict | why |\n| --- | --- | ---: | --- | --- | --- | --- |\n")
		for _, s := range c.Summary {
			mw.Printf("| %s | %s | %d | %s | %s | %s | %s |\n", render.MdCell(s.Procedure), render.MdCell(s.Build), s.Runs, render.MdCell(s.OutcomeWords()),
				render.MdCell(s.Expected), render.VerdictMark(s.Verdict), render.MdCell(strings.Join(s.Reasons, "; ")))
		}
		mw.Printf("\n")
	}
	mw.Printf("| procedure | build | init | outcome | dropped | requests | failed | failures | duration | exit | final state |\n")
	mw.Printf("| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |\n")
	for _, p := range c.Procedures {
		name := p.Name
		if p.Repeat > 0 {
			name = fmt.Sprintf("%s #%d", p.Name, p.Repeat)
		}
		mw.Printf("| %s | %s | %s | %s | %d | %d | %d | %s | %s | %d | %s |\n",
			render.MdCell(name), render.MdCell(p.Build), render.MdCell(p.Init), render.MdCell(p.Outcome), p.Dropped, p.Requests.Total, p.Requests.Failed,
			render.MdCell(procedureFailures(p)), words.FmtMs(p.DurationMs), p.ExitCode, render.MdCell(compactFinal(p.Final)))
	}
	for _, p := range c.Procedures {
		if len(p.JudgedReasons) > 0 {
			mw.Printf("\n**%s (%s build)** against its expectation — %s: %s\n", render.MdCell(p.Name), render.MdCell(p.Build), render.VerdictMark(p.Judged),
				render.MdCell(strings.Join(p.JudgedReasons, "; ")))
		}
	}
	for _, p := range c.Procedures {
		if c.Expect == nil && (p.Error != "" || len(p.Reasons) > 0) {
			mw.Printf("\n**%s (%s build)**: %s\n", render.MdCell(p.Name), render.MdCell(p.Build), render.MdCell(strings.Join(append(errorFirst(p.Error), p.Reasons...), "; ")))
		}
	}
	for _, p := range c.Procedures {
		if len(p.Notes) > 0 || len(p.Restart) > 0 || p.BinaryOnDisk != "" || p.Final.Systemd != nil {
			mw.Printf("\n**%s (%s build)** — notes:\n", render.MdCell(p.Name), render.MdCell(p.Build))
			if p.Expected != "" {
				mw.Printf("- expected: %s; happened: %s, %s, exit %d — %s\n", render.MdCell(p.Expected), render.MdCell(p.Outcome),
					words.Plural(p.Dropped, "drop"), p.ExitCode, render.VerdictMark(p.Judged))
			}
			if p.BinaryOnDisk != "" {
				mw.Printf("- binary on disk at the end: %s\n", render.MdCell(p.BinaryOnDisk))
			}
			if p.Unit != "" {
				mw.Printf("- unit: %s\n", render.MdCell(p.Unit))
			}
			if v := p.SystemdBefore; v != nil {
				mw.Printf("- systemd before: %s\n", render.MdCell(v.String()))
			}
			if v := p.Final.Systemd; v != nil {
				mw.Printf("- systemd at the end: %s\n", render.MdCell(v.String()))
			}
			for _, w := range p.Final.Wrong {
				mw.Printf("- wrong: %s\n", render.MdCell(w))
			}
			for _, e := range p.Restart {
				mw.Printf("- restart: %s\n", render.MdCell(e))
			}
			for _, n := range p.Notes {
				mw.Printf("- %s\n", render.MdCell(n))
			}
		}
	}
	mw.Printf("\n%s\n", render.MdCell(compareHowToRead))
	return mw.Err
}

// WriteCompareHTML writes the compare table as one self-contained page.
func WriteCompareHTML(w io.Writer, c *CompareReport) error {
	tmpl, err := template.New("compare").Funcs(template.FuncMap{
		"ms": words.FmtMs, "load": render.LoadLine, "failures": procedureFailures, "final": compactFinal,
		"howToRead":   func() string { return compareHowToRead },
		"verdictLine": CompareVerdictLine, "expectWords": expectWords, "join": strings.Join,
		"insecure": func() string { return record.InsecureArchiveNote },
	}).Parse(compareHTMLTemplate)
	if err != nil {
		return fmt.Errorf("parse compare html template: %w", err)
	}
	return tmpl.Execute(w, c)
}

const compareHowToRead = "outcome: upgraded (one master, the new binary serves), kept-old (the old set serves, the new binary never took over), " +
	"restarted (the service went down and came back), down (nothing serves at the end), two-masters (left half-way), " +
	"failed (the procedure could not be run). The serving binary is read from the running master's executable. " +
	"dropped = failed requests + requests retried after a server close + long downloads cut."

const compareHTMLTemplate = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nginx upgrade procedures compared</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1160px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.upgraded { color: #176f2c; font-weight: bold; } .down, .failed, .two-masters { color: #b3261e; font-weight: bold; }
.kept-old, .restarted { color: #a15c00; font-weight: bold; }
.pass { color: #176f2c; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; } .error { color: #a15c00; font-weight: bold; }
p.insecure { background: #fbe3e3; border: 1px solid #b3261e; padding: .5em .8em; font-weight: bold; }
</style></head><body>
<h1>nginx upgrade procedures compared</h1>
{{if .InsecureArchive}}<p class="insecure">{{insecure}}</p>{{end}}
<p>From <code>{{.From}}</code> to <code>{{.To}}</code> (good) and <code>{{.Broken}}</code> (broken); load: {{load .Load}}.</p>
{{if .Expect}}<h2 class="{{.Verdict}}">{{.Verdict}} against <code>--expect {{.Expect.Spec}}</code>: {{verdictLine .}}</h2>
<p>Expected: {{expectWords .Expect}}.</p>{{end}}
{{if .Summary}}<table>
<tr><th>procedure</th><th>build</th><th>runs</th><th>outcomes</th><th>expected</th><th>verdict</th><th>why</th></tr>
{{range .Summary}}<tr><td>{{.Procedure}}</td><td>{{.Build}}</td><td class="n">{{.Runs}}</td><td>{{.OutcomeWords}}</td><td>{{.Expected}}</td><td class="{{.Verdict}}">{{.Verdict}}</td><td>{{join .Reasons "; "}}</td></tr>
{{end}}</table><p></p>{{end}}
<table>
<tr><th>procedure</th><th>build</th><th>init</th><th>outcome</th><th>dropped</th><th>requests</th><th>failed</th><th>failures</th><th>duration</th><th>exit</th><th>final state</th></tr>
{{range .Procedures}}<tr><td>{{.Name}}</td><td>{{.Build}}</td><td>{{.Init}}</td><td class="{{.Outcome}}">{{.Outcome}}</td><td class="n">{{.Dropped}}</td>
<td class="n">{{.Requests.Total}}</td><td class="n">{{.Requests.Failed}}</td><td>{{failures .}}</td><td class="n">{{ms .DurationMs}}</td>
<td class="n">{{.ExitCode}}</td><td>{{final .Final}}</td></tr>
{{if or .Error .Reasons}}<tr><td colspan="11">{{with .Error}}{{.}}; {{end}}{{range .Reasons}}{{.}}; {{end}}</td></tr>{{end}}
{{if or .Notes .Restart .Final.Systemd}}<tr><td colspan="11">{{with .BinaryOnDisk}}binary on disk: {{.}}; {{end}}{{with .Final.Systemd}}systemd at the end: {{.String}}; {{end}}{{range .Restart}}restart: {{.}}; {{end}}{{range .Notes}}{{.}}; {{end}}</td></tr>{{end}}
{{end}}</table>
<p>{{howToRead}}</p>
</body></html>
`

func procedureFailures(p Procedure) string {
	parts := []string{}
	if s := words.ClassSummary(p.Failures); s != "" {
		parts = append(parts, s)
	}
	if p.Retried > 0 {
		parts = append(parts, fmt.Sprintf("retried: %d", p.Retried))
	}
	if p.SlowCut > 0 {
		parts = append(parts, fmt.Sprintf("downloads cut: %d", p.SlowCut))
	}
	return strings.Join(parts, ", ")
}

func compactFinal(f record.Final) string {
	return fmt.Sprintf("%d master(s), %s binary, pid file %d, serving: %t", f.Masters, f.ServingBinary, f.PIDFilePID, f.Serving)
}

// CompareVerdictLine counts the summary rows' verdicts: "2 pass, 1 fail,
// 0 error over 3 procedure×build rows".
func CompareVerdictLine(c *CompareReport) string {
	if c.Counts == nil {
		return ""
	}
	line := fmt.Sprintf("%d pass, %d fail, %d error over %s", c.Counts.Pass, c.Counts.Fail, c.Counts.Error, words.Plural(len(c.Summary), "procedure×build row"))
	if c.Missing > 0 {
		line += fmt.Sprintf(" (%s not recorded)", words.Plural(c.Missing, "planned run"))
	}
	return line
}

// expectWords says what each build was expected to do.
func expectWords(e *CompareExpect) string {
	var parts []string
	for _, b := range []string{BuildGood, BuildBroken} {
		if be, ok := e.Builds[b]; ok {
			parts = append(parts, fmt.Sprintf("%s build: %s", b, be.Words()))
		}
	}
	return strings.Join(parts, "; ")
}

func errorFirst(e string) []string {
	if e == "" {
		return nil
	}
	return []string{e}
}
