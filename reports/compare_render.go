package reports

import (
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// WriteCompareAll writes dir/report.json, report.md and report.html of a compare run.
func WriteCompareAll(dir string, c *CompareReport) error {
	return render.WriteFiles(dir, "write compare", c, WriteCompareMarkdown, WriteCompareHTML)
}

// WriteCompareMarkdown writes the compare table.
func WriteCompareMarkdown(w io.Writer, c *CompareReport) error {
	mw := render.NewMdWriter(w)
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
	return mw.Err()
}

// WriteCompareHTML writes the compare table as one self-contained page.
func WriteCompareHTML(w io.Writer, c *CompareReport) error {
	tmpl, err := template.New("compare").Funcs(template.FuncMap{
		"ms": words.FmtMs, "load": render.LoadLine, "failures": procedureFailures, "final": compactFinal,
		"howToRead":   func() string { return compareHowToRead },
		"verdictLine": CompareVerdictLine, "expectWords": expectWords, "join": strings.Join,
		"insecure": func() string { return words.InsecureArchiveNote },
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

// WriteCompareJUnit writes compare --expect's verdicts as JUnit XML: a test
// case per procedure and build (its runs together), failed or in error as
// judged, the reasons and every run's outcome in it.
func WriteCompareJUnit(w io.Writer, c *CompareReport) error {
	type failure = render.JUnitFailure
	type testcase = render.JUnitCase
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	ts := testsuite{Name: fmt.Sprintf("compare %s → %s (broken: %s)", c.From, c.To, c.Broken)}
	for _, s := range c.Summary {
		tc := testcase{Name: s.Procedure + " / " + s.Build, Classname: "compare"}
		for _, p := range c.Procedures {
			if p.Name == s.Procedure && p.Build == s.Build {
				tc.Time += p.DurationMs / 1000
			}
		}
		tc.SystemOut = fmt.Sprintf("expected: %s; happened: %s", s.Expected, s.OutcomeWords())
		msg := strings.Join(s.Reasons, "; ")
		switch s.Verdict {
		case record.VerdictFail:
			tc.Failure = &failure{Message: msg, Type: "expectation", Text: strings.Join(s.Reasons, "\n")}
			ts.Failures++
		case record.VerdictError, "":
			tc.Error = &failure{Message: msg, Type: "invalid-measurement", Text: strings.Join(s.Reasons, "\n")}
			ts.Errors++
		}
		ts.Cases = append(ts.Cases, tc)
	}
	ts.Tests = len(ts.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(ts); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
