package render

import (
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// WriteHTML writes report.html: one self-contained page (no script, no
// external style or font) with, per scenario, a plot of latency and drops
// over time with the steps marked and the phases shaded, and the tables of
// report.md. Every string goes through html/template's escaping.
func WriteHTML(w io.Writer, r *record.Report) error {
	tmpl, err := template.New("report").Funcs(template.FuncMap{
		"insecure":         func() string { return words.InsecureArchiveNote },
		"ms":               words.FmtMs,
		"msCell":           msCell,
		"latency":          latencyCell,
		"rate":             rateCell,
		"classes":          words.ClassSummary,
		"outcome":          words.StepOutcome,
		"asExpected":       judge.StepAsExpected,
		"verifiedAt":       verifiedAt,
		"pid":              pidCell,
		"steps":            stepsSummary,
		"facts":            scenarioFacts,
		"final":            finalLine,
		"load":             LoadLine,
		"verdicts":         verdictLine,
		"howToRead":        howToRead,
		"causeLines":       words.CauseLines,
		"headline":         func(r *record.Report) string { return verdictHeadline(r, func(s string) string { return s }) },
		"gate":             func(r *record.Report) string { return gateLine(r, func(s string) string { return s }) },
		"summary":          newSummaryTable,
		"sideBySide":       sideBySide,
		"cellClass":        summaryCellClass,
		"allRuns":          allRuns,
		"knownLoss":        func(s record.Scenario) []string { return words.KnownLossLines(&s) },
		"knownLossVerdict": func(s record.Scenario) string { return words.KnownLossVerdictWords(&s) },
		"buildLabel":       words.BuildLabel,
		"runName":          runName,
		"join":             strings.Join,
		"binaries":         imageBinaries,
		"msNum":            msNum,
		"f0":               func(v float64) string { return fmt.Sprintf("%.0f", v) },
		"verifiedAtNum": func(st record.Step) string {
			if !st.Verified && st.VerifiedMs == 0 {
				return "—"
			}
			return fmt.Sprintf("%.0f", st.VerifiedMs)
		},
		"targets":       ShownTargets,
		"classesOrDash": classesOrDash,
		"plot":          newPlotView,
		"f1":            func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"add":           func(a, b float64) float64 { return a + b },
		"sub":           func(a, b float64) float64 { return a - b },
	}).Parse(htmlTemplate)
	if err != nil {
		return fmt.Errorf("parse html template: %w", err)
	}
	return tmpl.Execute(w, r)
}

const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{headline .}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1160px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; display: block; max-width: 100%; overflow-x: auto; }
li code, p code, summary small { overflow-wrap: anywhere; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #176f2c; font-weight: bold; } .fail { color: #b3261e; font-weight: bold; } .error { color: #a15c00; font-weight: bold; }
.bad { color: #b3261e; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
svg.plot { display: block; width: 100%; max-width: 1000px; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
svg .band0 { fill: #eef3fb; } svg .band1 { fill: #fbf7ee; }
svg .frame { fill: none; stroke: #bbb; }
svg .grid { stroke: #e2e2e2; } svg .phase-tick { stroke: #999; }
svg .p99 { fill: none; stroke: #1f5fbf; stroke-width: 2; }
svg .p50 { fill: none; stroke: #34a853; stroke-width: 1.2; }
svg .max { fill: none; stroke: #1f5fbf; stroke-width: 1; stroke-dasharray: 4 3; opacity: .7; }
svg .req { fill: none; stroke: #777; stroke-width: 1.2; }
svg .target { stroke: #222; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .failed { fill: #d93025; } svg .retried { fill: #f29900; } svg .cut { fill: #8e24aa; }
svg .pt { stroke: #fff; stroke-width: .8; }
svg .step line { stroke: #333; stroke-width: 1.5; }
svg .step.expected-fail line { stroke: #a15c00; stroke-width: 2; stroke-dasharray: 3 2; } svg .step.expected-fail text { fill: #a15c00; }
svg .step.bad line { stroke: #d93025; stroke-width: 2.5; } svg .step.bad text { fill: #d93025; font-weight: bold; }
svg .fault rect { fill: #d93025; opacity: .12; } svg .fault text { fill: #b3261e; font-weight: bold; }
svg .verify { fill: #333; opacity: .15; } svg .phase-label { fill: #444; font-style: italic; }
details.run { margin-top: 1.2em; border-top: 1px solid #ccc; } details.run > summary { cursor: pointer; } details.run > summary h2 { display: inline; font-size: 1.2em; border: 0; }
details.run > summary small { font-weight: normal; color: #555; font-size: 13px; }
table.summary td.pass { color: #176f2c; } table.summary td.fail { color: #b3261e; } table.summary td.error { color: #a15c00; }
table.side td { overflow-wrap: anywhere; max-width: 22em; }
h1.pass { color: #176f2c; } h1.fail { color: #b3261e; } h1.error { color: #a15c00; }
p.insecure { background: #fbe3e3; border: 1px solid #b3261e; padding: .5em .8em; font-weight: bold; }
</style>
</head>
<body>
<h1 class="{{.Verdict}}">{{headline .}}</h1>
{{if .InsecureArchive}}<p class="insecure">{{insecure}}</p>{{end}}
<p>{{gate .}} Load: {{load .Load}}.</p>
{{with summary .}}<table class="summary">
<tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .Cells}}<td class="{{cellClass $i $c}}">{{$c}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with sideBySide .}}<table class="side"><tr><th>side by side</th><th>candidate</th><th>baseline</th></tr>
{{range .}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td><td>{{index . 2}}</td></tr>{{end}}</table>{{end}}
{{range .Comparisons}}<details{{if ne .Verdict "pass"}} open{{end}}><summary>{{.Scenario}} against the baseline: <span class="{{.Verdict}}">{{.Verdict}}</span></summary>
<p>Test: {{.Test}}.</p><ul>{{range .Reasons}}<li>{{.}}</li>{{end}}</ul></details>
{{end}}
{{with .Site}}<details open><summary>Site under test: <code>{{.Dir}}</code> ({{len .Files}} files read by nginx)</summary>
<table><tr><th>listener</th><th>ssl</th><th>http2</th><th>reuseport</th><th>server names</th><th>published on</th><th>load</th></tr>
{{range .Listeners}}<tr><td>{{.Address}}:{{.Port}}{{if .DefaultServer}} default_server{{end}}</td><td>{{.SSL}}</td><td>{{.HTTP2}}</td><td>{{.Reuseport}}</td><td>{{join .ServerNames " "}}</td><td>{{.HostAddress}}</td><td>{{.Load}}</td></tr>
{{end}}</table><ul>{{range .SkippedListeners}}<li>listener {{.}}</li>{{end}}
{{if not .Added}}<li>The harness added nothing to this configuration.</li>{{end}}{{range .Added}}<li>Added by the harness: {{.}}</li>{{end}}
{{range .Backends}}<li>Upstream: {{.}}</li>{{end}}{{range .Proxied}}<li>Proxied location: {{.}}</li>{{end}}{{range .Mounts}}<li>Mounted read-only: <code>{{.}}</code></li>{{end}}
{{range .SkippedProfiles}}<li>Not run against this configuration: <b>{{.Profile}}</b> — {{.Reason}}</li>{{end}}</ul></details>{{end}}
{{with .Provenance}}<details><summary>Provenance</summary><ul>
<li>tool {{.Tool.Version}}, commit <code>{{.Tool.Commit}}</code></li>
<li>command: <code>{{join .CommandLine " "}}</code></li>
<li>started {{.Start}}{{with .DurationS}}, took {{f1 .}} s{{end}}</li>
<li>kernel {{.Kernel}}, Docker {{with .Docker}}{{.}}{{else}}unknown{{end}}</li>
<li>config sha256 <code>{{.ConfigSHA256}}</code>{{with .ConfigFile}} ({{.}}){{end}}</li>
{{range .Builds}}<li>{{.Spec}} = <code>{{.Exact}}</code>{{with .Suite}} from {{.}}{{end}}{{with .SHA256}}, sha256 <code>{{.}}</code>{{end}}{{with .Note}} ({{.}}){{end}}</li>{{end}}
{{range .Images}}<li>image <code>{{.Ref}}</code> ({{.From}} → {{.To}}), id <code>{{.ID}}</code>
{{range $b := binaries .}}<br><code>{{$b.Path}}</code> sha256 <code>{{$b.SHA256}}</code><pre>{{$b.V}}</pre>{{end}}</li>{{end}}
</ul></details>{{end}}
{{$gate := .Gate}}
{{range allRuns .}}
<details class="run"{{if and (ne .Verdict "pass") (ne $gate "baseline")}} open{{end}} id="s-{{.Pair}}{{.Name}}{{.Repeat}}">
<summary><h2>{{runName .}} — <span class="{{.Verdict}}">{{.Verdict}}</span>{{if .KnownLossSeen}}{{if eq .Verdict "pass"}}, known loss{{end}}{{end}} <small>{{buildLabel .From .FromBuild}} → {{buildLabel .To .ToBuild}}, {{.Dropped}} dropped</small></h2></summary>
<p>Expect <b>{{.Expect}}</b>. {{facts .}}</p>
{{if .Reasons}}<p>Reasons:</p><ul>{{range .Reasons}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if knownLoss .}}<p>Known losses ({{knownLossVerdict .}}):</p><ul>{{range knownLoss .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if and .Drops (ne .Verdict "fail")}}<p>Dropped:</p><ul>{{range .Drops}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Causes}}<p>Why (from the step that opened the phase and the load):</p><ul>{{range causeLines .Causes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Notes}}<p>Notes:</p><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{with plot .}}
<p class="caption">Latency per {{ms .BucketMs}} (log scale), requests sent against the target rate, and losses; each loss also a point at its exact time, coloured by class. Hover for details.</p>
<svg class="plot" viewBox="0 0 {{f1 .Width}} {{f1 .Height}}" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg" role="img">
<title>latency and losses over time, steps marked</title>
{{$p := .}}
{{range .Phases}}<rect class="{{.Class}}" x="{{f1 .X}}" y="{{f1 $p.LatTop}}" width="{{f1 .W}}" height="{{f1 (sub $p.DropBottom $p.LatTop)}}"><title>phase {{.Name}}</title></rect>
<line class="phase-tick" x1="{{f1 .X}}" x2="{{f1 .X}}" y1="{{f1 (sub .LabelY 11)}}" y2="{{f1 $p.LatTop}}"/><text class="phase-label" x="{{f1 .LabelX}}" y="{{f1 .LabelY}}">{{.Name}}</text>
{{end}}
{{range .LatTicks}}<line class="grid" x1="{{f1 $p.Left}}" x2="{{f1 $p.Right}}" y1="{{f1 .Y}}" y2="{{f1 .Y}}"/><text x="{{f1 (sub $p.Left 4)}}" y="{{f1 (add .Y 4)}}" text-anchor="end">{{.Label}}</text>
{{end}}
{{range .XTicks}}<line class="grid" x1="{{f1 .X}}" x2="{{f1 .X}}" y1="{{f1 $p.DropBottom}}" y2="{{f1 (add $p.DropBottom 4)}}"/><text x="{{f1 .X}}" y="{{f1 (add $p.DropBottom 17)}}" text-anchor="middle">{{.Label}}</text>
{{end}}
{{range .ReqTicks}}<text x="{{f1 (sub $p.Left 4)}}" y="{{f1 (add .Y 4)}}" text-anchor="end">{{.Label}}</text>{{end}}
{{range .DropTick}}<text x="{{f1 (sub $p.Left 4)}}" y="{{f1 (add .Y 4)}}" text-anchor="end">{{.Label}}</text>{{end}}
<text x="{{f1 $p.Left}}" y="{{f1 (sub $p.ReqTop 6)}}">requests sent per {{ms .BucketMs}}</text>
<text x="{{f1 $p.Left}}" y="{{f1 (sub $p.DropTop 6)}}">losses per {{ms .BucketMs}}</text>
<rect class="frame" x="{{f1 $p.Left}}" y="{{f1 $p.LatTop}}" width="{{f1 $p.InnerW}}" height="{{f1 (sub $p.LatBottom $p.LatTop)}}"/>
<rect class="frame" x="{{f1 $p.Left}}" y="{{f1 $p.ReqTop}}" width="{{f1 $p.InnerW}}" height="{{f1 (sub $p.ReqBottom $p.ReqTop)}}"/>
<rect class="frame" x="{{f1 $p.Left}}" y="{{f1 $p.DropTop}}" width="{{f1 $p.InnerW}}" height="{{f1 (sub $p.DropBottom $p.DropTop)}}"/>
{{if .MaxPath}}<path class="max" d="{{.MaxPath}}"/>{{end}}
{{if .P99Path}}<path class="p99" d="{{.P99Path}}"/>{{end}}
{{if .P50Path}}<path class="p50" d="{{.P50Path}}"/>{{end}}
{{if .ReqPath}}<path class="req" d="{{.ReqPath}}"/>{{end}}
{{if .TargetLabel}}<line class="target" x1="{{f1 $p.Left}}" x2="{{f1 $p.Right}}" y1="{{f1 .TargetY}}" y2="{{f1 .TargetY}}"><title>{{.TargetLabel}}</title></line>{{end}}
{{range .Bars}}<rect class="{{.Class}}" x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}"><title>{{.Title}}</title></rect>
{{end}}
{{range .Faults}}<g class="fault"><title>{{.Title}}</title><rect x="{{f1 .X}}" y="{{f1 $p.LatTop}}" width="{{f1 .W}}" height="{{f1 (sub $p.DropBottom $p.LatTop)}}"/><text x="{{f1 (add .X 3)}}" y="{{f1 .LabelY}}">{{.Label}}</text></g>
{{end}}{{range .Steps}}<g class="{{.Class}}"><title>{{.Title}}</title>
{{if .ShowVerified}}<rect class="verify" x="{{f1 .X}}" y="{{f1 $p.LatTop}}" width="{{f1 .VerifiedWidth}}" height="{{f1 (sub $p.DropBottom $p.LatTop)}}"/>{{end}}
<line x1="{{f1 .X}}" x2="{{f1 .X}}" y1="{{f1 (sub $p.LabelTop 2)}}" y2="{{f1 $p.DropBottom}}"/>
<text transform="translate({{f1 (add .X 4)}} {{f1 .LabelY}}) rotate(-90)">{{.Label}}</text></g>
{{end}}
{{range .Points}}<circle class="pt" cx="{{f1 .X}}" cy="{{f1 .Y}}" r="3" fill="{{.Colour}}"><title>{{.Title}}</title></circle>
{{end}}
{{range .Legend}}<g class="legend-item">{{if eq .Kind "box"}}<rect x="{{f1 .X}}" y="{{f1 (sub .Y 9)}}" width="18" height="10" fill="{{.Colour}}"/>{{else if eq .Kind "dot"}}<circle cx="{{f1 (add .X 9)}}" cy="{{f1 (sub .Y 4)}}" r="4" fill="{{.Colour}}"/>{{else if eq .Kind "dash"}}<line x1="{{f1 .X}}" x2="{{f1 (add .X 18)}}" y1="{{f1 (sub .Y 4)}}" y2="{{f1 (sub .Y 4)}}" stroke="{{.Colour}}" stroke-width="1.5" stroke-dasharray="4 3"/>{{else if eq .Kind "step"}}<line x1="{{f1 (add .X 9)}}" x2="{{f1 (add .X 9)}}" y1="{{f1 (sub .Y 12)}}" y2="{{f1 (add .Y 2)}}" stroke="{{.Colour}}" stroke-width="1.5"/>{{else if eq .Kind "step-expected"}}<line x1="{{f1 (add .X 9)}}" x2="{{f1 (add .X 9)}}" y1="{{f1 (sub .Y 12)}}" y2="{{f1 (add .Y 2)}}" stroke="{{.Colour}}" stroke-width="2" stroke-dasharray="3 2"/>{{else if eq .Kind "step-bad"}}<line x1="{{f1 (add .X 9)}}" x2="{{f1 (add .X 9)}}" y1="{{f1 (sub .Y 12)}}" y2="{{f1 (add .Y 2)}}" stroke="{{.Colour}}" stroke-width="2.5"/>{{else}}<line x1="{{f1 .X}}" x2="{{f1 (add .X 18)}}" y1="{{f1 (sub .Y 4)}}" y2="{{f1 (sub .Y 4)}}" stroke="{{.Colour}}" stroke-width="{{if eq .Kind "line"}}2{{else}}1.2{{end}}"/>{{end}}<text x="{{f1 (add .X 24)}}" y="{{f1 .Y}}">{{.Label}}</text></g>
{{end}}
{{if .Empty}}<text x="{{f1 (add $p.Left 10)}}" y="{{f1 (add $p.LatTop 30)}}">no request was recorded</text>{{end}}
{{if .Gens}}<text x="{{f1 $p.Left}}" y="{{f1 (sub $p.GensTop 6)}}">who answered, from nginx's own log (a band per generation of workers, darker: a larger share)</text>
{{range .Gens}}<g class="gen"><rect class="frame" x="{{f1 $p.Left}}" y="{{f1 .Y}}" width="{{f1 $p.InnerW}}" height="13"/>{{$c := .Colour}}{{range .Cells}}<rect x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}" fill="{{$c}}" fill-opacity="{{.Class}}"><title>{{.Title}}</title></rect>{{end}}<text x="{{f1 (add $p.Left 3)}}" y="{{f1 (add .Y 10)}}" font-size="10" stroke="#fff" stroke-width="3" paint-order="stroke">{{.Label}}</text></g>
{{end}}{{range .Steps}}<line class="gen-step" x1="{{f1 .X}}" x2="{{f1 .X}}" y1="{{f1 $p.GensTop}}" y2="{{f1 (sub $p.Height 6)}}" stroke="#333" stroke-width="1"/>{{end}}{{end}}
{{with .Observer}}<text x="{{f1 $p.Left}}" y="{{f1 (sub .Y 6)}}">{{.Caption}}</text>
<g class="observer"><rect class="frame" x="{{f1 $p.Left}}" y="{{f1 .Y}}" width="{{f1 $p.InnerW}}" height="13"/>{{with .Covered}}{{if gt .W 0.0}}<rect x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}" fill="#34a853" fill-opacity="0.35"><title>{{.Title}}</title></rect>{{end}}{{end}}{{range .Blind}}<rect x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}" fill="#d93025"><title>{{.Title}}</title></rect>{{end}}{{range .NginxLate}}<rect x="{{f1 .X}}" y="{{f1 .Y}}" width="{{f1 .W}}" height="{{f1 .H}}" fill="#e8710a"><title>{{.Title}}</title></rect>{{end}}</g>
{{end}}
</svg>
{{if .PointsNote}}<p>{{.PointsNote}}.</p>{{end}}
{{end}}
{{if .Steps}}<table>
<tr><th>step</th><th>signal</th><th>pid</th><th>sent (ms)</th><th>verified at (ms)</th><th>outcome</th><th>error</th></tr>
{{range .Steps}}<tr><td>{{.Name}}</td><td>{{.Signal}}</td><td class="n">{{pid .PID}}</td><td class="n">{{f0 .SentMs}}</td>
<td class="n">{{verifiedAtNum .}}</td><td{{if not (asExpected .)}} class="bad"{{end}}>{{outcome .}}</td><td>{{.Error}}</td></tr>
{{if .LogLines}}<tr><td colspan="7"><pre>{{range .LogLines}}{{.}}
{{end}}</pre></td></tr>{{end}}
{{end}}</table>{{end}}
{{if .Phases}}<table>
<tr><th>phase</th><th>from (ms)</th><th>to (ms)</th><th>requests</th><th>failed</th><th>retried</th><th>slow cut</th><th>rate (req/s)</th><th>p50 (ms)</th><th>p99 (ms)</th><th>max (ms)</th><th>stall (ms)</th><th>failures</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td class="n">{{f0 .StartMs}}</td><td class="n">{{f0 .EndMs}}</td><td class="n">{{.Requests}}</td>
<td class="n">{{.Failed}}</td><td class="n">{{.Retried}}</td><td class="n">{{.SlowCut}}</td><td class="n">{{rate .}}</td>
<td class="n">{{msNum .P50Ms .Requests}}</td><td class="n">{{msNum .P99Ms .Requests}}</td><td class="n">{{msNum .MaxMs .Requests}}</td><td class="n">{{msNum .StallMs .Requests}}</td><td>{{classes .ByClass}}</td></tr>
{{end}}</table>{{end}}
{{with targets .Targets}}<table>
<tr><th>target</th><th>line</th><th>requests</th><th>ok</th><th>dropped</th><th>failed by class</th><th>p50 (ms)</th><th>p99 (ms)</th></tr>
{{range .Rows}}<tr><td>{{.Target}}</td><td class="n">{{.Line}}</td><td class="n">{{.Requests}}</td><td class="n">{{.OK}}</td><td class="n">{{.Dropped}}</td>
<td>{{classesOrDash .ByClass}}</td><td class="n">{{msNum .P50Ms .Requests}}</td><td class="n">{{msNum .P99Ms .Requests}}</td></tr>
{{end}}</table>{{if .More}}<p>{{.More}} more targets in report.json (none of them dropped a request).</p>{{end}}{{end}}
{{with .Witness}}{{if .Present}}<p>Second witness, nginx's own log: {{.Logged}} lines ({{.Unidentified}} the harness's probes), {{.Requests}} client records reconciled, {{if .Complete}}complete{{else}}<b class="bad">incomplete</b>: {{.UnloggedCount}} ok on the client and absent from the log, {{.UnknownCount}} logged and unknown to the client{{end}}; classes: {{classes .Classes}}{{if .AnsweredByOrphans}}; {{.AnsweredByOrphans}} answered by orphaned workers{{end}}.</p>
{{if .Generations}}<table><tr><th>generation</th><th>binary</th><th>master</th><th>workers</th><th>answered</th><th>after its master was gone</th></tr>
{{range .Generations}}<tr><td>{{.Name}}</td><td>{{.Binary}}</td><td class="n">{{pid .Master}}</td><td>{{.Workers}}</td><td class="n">{{.Answered}}</td><td class="n">{{.Orphaned}}</td></tr>
{{end}}</table>{{end}}
{{if .Drops}}<table><tr><th>drop</th><th>kind</th><th>phase</th><th>at (ms)</th><th>reconciled</th><th>pid</th><th>generation</th></tr>
{{range .Drops}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{.Phase}}</td><td class="n">{{f0 .Ms}}</td><td>{{.Class}}</td><td>{{if .PID}}{{.PID}}{{else if .Candidates}}one of {{.Candidates}}{{else}}—{{end}}</td><td>{{.Generation}}{{if .Orphan}} (orphaned){{end}}</td></tr>
{{end}}</table>{{end}}
{{else}}<p>Second witness: absent. {{.Note}}</p>{{end}}{{end}}
{{with .Final}}<p>Final state: {{final .}}</p>{{end}}
</details>
{{end}}
<h2>How to read this report</h2>
<ul>{{range howToRead}}<li>{{.}}</li>{{end}}</ul>
</body>
</html>
`

func runName(s record.Scenario) string {
	if s.Repeat > 0 {
		return fmt.Sprintf("%s %s #%d", s.Pair, s.Name, s.Repeat)
	}
	return s.Name
}

func imageBinaries(im record.ImageProvenance) []*record.BinaryIdentity {
	var out []*record.BinaryIdentity
	for _, b := range []*record.BinaryIdentity{im.Old, im.New} {
		if b != nil {
			out = append(out, b)
		}
	}
	return out
}

// summaryCellClass right-aligns numbers and colours a verdict cell.
func summaryCellClass(i int, cell string) string {
	for _, v := range []string{record.VerdictPass, record.VerdictFail, record.VerdictError} {
		if cell == VerdictMark(v) {
			return v
		}
	}
	if i > 0 && cell != "" && (cell[0] >= '0' && cell[0] <= '9' || cell == "—") {
		return "n"
	}
	return ""
}
