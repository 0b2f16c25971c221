package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// WriteMarkdown writes report.md, made to be a CI job summary: the verdict
// line first, one table, then each scenario run's detail folded in
// <details>, then how to read it. Every time in a column is in the unit its
// heading names.
func WriteMarkdown(w io.Writer, r *record.Report) error {
	mw := NewMdWriter(w)
	mw.Printf("# %s\n\n", verdictHeadline(r, MdCode))
	WriteMarkdownInsecure(mw, r.InsecureArchive)
	mw.Printf("%s Load: %s.\n\n", gateLine(r, func(s string) string { return "`" + MdCode(s) + "`" }), LoadLine(r.Load))
	writeMarkdownBuilds(mw, r)
	writeSummaryTable(mw, newSummaryTable(r))
	writeSideBySide(mw, sideBySide(r))
	if r.Site != nil {
		writeMarkdownSite(mw, r.Site)
	}
	if pv := r.Provenance; pv != nil {
		mw.Printf("\n<details><summary>Provenance</summary>\n\n")
		mw.Printf("- tool %s, commit `%s`\n- command: `%s`\n- started %s", MdCell(pv.Tool.Version), MdCode(pv.Tool.Commit),
			MdCode(strings.Join(pv.CommandLine, " ")), MdCell(pv.Start))
		if pv.DurationS != nil {
			mw.Printf(", took %.0f s", *pv.DurationS)
		}
		docker := "unknown"
		if pv.Docker != nil {
			docker = *pv.Docker
		}
		mw.Printf("\n- kernel %s, Docker %s\n- config sha256 `%s`\n", MdCell(pv.Kernel), MdCell(docker), MdCode(pv.ConfigSHA256))
		for _, b := range pv.Builds {
			mw.Printf("- build `%s` = `%s`", MdCode(b.Spec), MdCode(b.Exact))
			if b.SHA256 != "" {
				mw.Printf(", sha256 `%s`", MdCode(b.SHA256))
			}
			mw.Printf("\n")
		}
		for _, im := range pv.Images {
			mw.Printf("- image `%s` (%s → %s), id `%s`\n", MdCode(im.Ref), MdCell(im.From), MdCell(im.To), MdCode(im.ID))
			for _, b := range []*record.BinaryIdentity{im.Old, im.New} {
				if b != nil {
					mw.Printf("  - `%s` sha256 `%s`:\n\n    ```\n    %s\n    ```\n", MdCode(b.Path), MdCode(b.SHA256),
						strings.ReplaceAll(strings.TrimSpace(b.V), "\n", "\n    "))
				}
			}
		}
		mw.Printf("\n</details>\n")
	}
	for _, c := range r.Comparisons {
		mw.Printf("\n<details><summary>%s against the baseline: %s</summary>\n\n", MdCell(c.Scenario), verdictBadge(c.Verdict))
		mw.Printf("Test: %s.\n\n", MdCell(c.Test))
		for _, reason := range c.Reasons {
			mw.Printf("- %s\n", MdCell(reason))
		}
		mw.Printf("\n</details>\n")
	}
	for _, s := range allRuns(r) {
		writeMarkdownScenario(mw, &s)
	}
	mw.Printf("\n<details><summary>How to read this report</summary>\n\n")
	for _, item := range howToRead() {
		mw.Printf("- %s\n", MdCell(item))
	}
	mw.Printf("\n</details>\n")
	return mw.Err()
}

func allRuns(r *record.Report) []record.Scenario {
	out := append([]record.Scenario{}, r.Scenarios...)
	if r.Baseline != nil {
		out = append(out, r.Baseline.Scenarios...)
	}
	return out
}

// verdictHeadline is the line a person reads first.
func verdictHeadline(r *record.Report, code func(string) string) string {
	mark := map[string]string{record.VerdictPass: "✓", record.VerdictFail: "✗", record.VerdictError: "⚠"}[r.Verdict]
	if mark == "" {
		mark = "?"
	}
	return fmt.Sprintf("%s %s — nginx in-place upgrade %s → %s (%s)", mark, strings.ToUpper(r.Verdict), code(words.BuildLabel(r.From, r.FromBuild)), code(words.BuildLabel(r.To, r.ToBuild)), verdictLine(r))
}

func gateLine(r *record.Report, code func(string) string) string {
	if r.Gate == record.GateBaseline && r.Baseline != nil {
		return fmt.Sprintf("Gate: the candidate %s must drop no more than the baseline %s (one-sided exact rate test, α = %g), over %s each; "+
			"positive controls must fail their own verdicts no more often than the baseline's; broken-build is judged by its own verdicts.",
			code(r.From+" → "+r.To), code(r.Baseline.From+" → "+r.Baseline.To), judge.Alpha, words.Plural(r.Repeat, "run"))
	}
	if r.Repeat > 1 {
		return fmt.Sprintf("Gate: every run of every scenario meets its expectation (%s each).", words.Plural(r.Repeat, "run"))
	}
	return "Gate: every scenario meets its expectation."
}

// summaryTable is the one table both renderers show: a row per scenario —
// its runs aggregated —, or with a baseline a row per comparison. Right
// marks the columns of numbers.
type summaryTable struct {
	Head  []string
	Right []bool
	Rows  []summaryRow
}

type summaryRow struct {
	Verdict string // of the row, for colour
	Cells   []string
}

func newSummaryTable(r *record.Report) summaryTable {
	if r.Baseline != nil {
		t := summaryTable{
			Head: []string{"scenario", "verdict", "test", "candidate drops per 10k [95% CI]", "baseline drops per 10k [95% CI]",
				"p (one-sided)", "candidate stall, ms: median (range)", "baseline stall, ms: median (range)", "runs"},
			Right: []bool{false, false, false, true, true, true, true, true, true},
		}
		for _, c := range r.Comparisons {
			test, p, base, bstall := "own verdicts", "—", "—", "—"
			switch c.Test {
			case record.TestExactRate:
				test = "rate test"
				if c.Dispersion != nil && *c.Dispersion > 1 {
					test += fmt.Sprintf(" (dispersion %.1f)", *c.Dispersion)
				}
			case record.TestFailRate:
				test = "fail-rate test"
			}
			if c.PValue != nil {
				p = words.FmtP(*c.PValue)
			}
			runs := countRuns(*c.Candidate)
			if c.Baseline != nil {
				base, bstall = rateCell10k(c.Baseline), stallCell(c.Baseline.StallMs)
				runs += " + " + countRuns(*c.Baseline)
			}
			t.Rows = append(t.Rows, summaryRow{Verdict: c.Verdict, Cells: []string{c.Scenario, VerdictMark(c.Verdict), test,
				rateCell10k(c.Candidate), base, p, stallCell(c.Candidate.StallMs), bstall, runs}})
		}
		return t
	}
	t := summaryTable{
		Head: []string{"scenario", "builds", "expect", "verdict", "runs", "requests", "dropped", "drops per 10k [95% CI]",
			"longest stall, ms: median (range)", "steps as expected"},
		Right: []bool{false, false, false, false, true, true, true, true, true, true},
	}
	for _, a := range r.Aggregates {
		runs := runsNamed(r.Scenarios, a.Scenario)
		v, _ := judge.Worst(verdictsOf(runs))
		expect := ""
		if len(runs) > 0 {
			expect = runs[0].Expect
		}
		ok, all := 0, 0
		for _, s := range runs {
			for _, st := range s.Steps {
				all++
				if judge.StepAsExpected(st) {
					ok++
				}
			}
		}
		mark := VerdictMark(v)
		if v == record.VerdictPass && words.PassesWithKnownLoss(runs) > 0 {
			mark += ", known loss"
		}
		t.Rows = append(t.Rows, summaryRow{Verdict: v, Cells: []string{a.Scenario, a.From + " → " + a.To, expect, mark,
			runsCell(a), fmt.Sprint(a.Requests), fmt.Sprint(a.Dropped), rateCell10k(&a), stallCell(a.StallMs), fmt.Sprintf("%d/%d", ok, all)}})
	}
	return t
}

func writeSummaryTable(mw *MdWriter, t summaryTable) {
	mw.Printf("|")
	for _, h := range t.Head {
		mw.Printf(" %s |", MdCell(h))
	}
	mw.Printf("\n|")
	for _, right := range t.Right {
		if right {
			mw.Printf(" ---: |")
		} else {
			mw.Printf(" --- |")
		}
	}
	mw.Printf("\n")
	for _, row := range t.Rows {
		mw.Printf("|")
		for _, c := range row.Cells {
			mw.Printf(" %s |", MdCell(c))
		}
		mw.Printf("\n")
	}
}

func runsNamed(runs []record.Scenario, name string) []record.Scenario {
	var out []record.Scenario
	for _, s := range runs {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func verdictsOf(runs []record.Scenario) []string {
	out := make([]string, len(runs))
	for i, s := range runs {
		out[i] = s.Verdict
	}
	return out
}

func runsCell(a record.Aggregate) string {
	parts := []string{}
	for _, x := range []struct {
		n    int
		mark string
	}{{a.Counts.Pass, "✓"}, {a.Counts.Fail, "✗"}, {a.Counts.Error, "⚠"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", x.n, x.mark))
		}
	}
	s := strings.Join(parts, " ")
	if a.Runs < a.Planned {
		s += fmt.Sprintf(" (%d of %d ran)", a.Runs, a.Planned)
	}
	return s
}

// countRuns is how many runs an aggregate has, and how many were invalid.
func countRuns(a record.Aggregate) string {
	s := fmt.Sprint(a.Runs)
	if a.Runs < a.Planned {
		s += fmt.Sprintf(" of %d", a.Planned)
	}
	if a.Counts.Error > 0 {
		s += fmt.Sprintf(" (%d invalid)", a.Counts.Error)
	}
	return s
}

func stallCell(sp *record.Spread) string {
	if sp == nil {
		return "—"
	}
	if sp.Min == sp.Max {
		return fmt.Sprintf("%.0f", sp.Max)
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", sp.Median, sp.Min, sp.Max)
}

func writeMarkdownScenario(mw *MdWriter, s *record.Scenario) {
	name := s.Name
	if s.Repeat > 0 {
		name = fmt.Sprintf("%s %s #%d", s.Pair, s.Name, s.Repeat)
	}
	badge := verdictBadge(s.Verdict)
	if s.PassWithKnownLoss() {
		badge += ", known loss"
	}
	mw.Printf("\n<details><summary>%s — %s — %s → %s, %s</summary>\n\n", MdCell(name), badge,
		MdCell(s.From), MdCell(s.To), words.Plural(s.Dropped, "drop"))
	defer mw.Printf("\n</details>\n")
	mw.Printf("Expect **%s**. %s\n\n", MdCell(s.Expect), MdCell(scenarioFacts(s)))
	if len(s.Reasons) > 0 {
		mw.Printf("Reasons:\n\n")
		for _, reason := range s.Reasons {
			mw.Printf("- %s\n", MdCell(reason))
		}
		mw.Printf("\n")
	}
	if lines := words.KnownLossLines(s); len(lines) > 0 {
		mw.Printf("Known losses (%s):\n\n", words.KnownLossVerdictWords(s))
		for _, l := range lines {
			mw.Printf("- %s\n", MdCell(l))
		}
		mw.Printf("\n")
	}
	if len(s.Drops) > 0 && s.Verdict != record.VerdictFail {
		mw.Printf("Dropped:\n\n")
		for _, d := range s.Drops {
			mw.Printf("- %s\n", MdCell(d))
		}
		mw.Printf("\n")
	}
	if len(s.Causes) > 0 {
		mw.Printf("Why (from the step that opened the phase and the load):\n\n")
		for _, c := range words.CauseLines(s.Causes) {
			mw.Printf("- %s\n", MdCell(c))
		}
		mw.Printf("\n")
	}
	if len(s.Faults) > 0 {
		mw.Printf("Faults:\n\n")
		for _, f := range s.Faults {
			healed := "not healed"
			if f.HealedMs != nil {
				healed = "healed at " + words.FmtMs(*f.HealedMs)
			}
			line := fmt.Sprintf("%s after %s: injected at %s, %s — %s", f.Name, f.Step, words.FmtMs(f.InjectedMs), healed, f.Outcome)
			if f.Error != "" {
				line += "; error: " + f.Error
			}
			if len(f.LogLines) > 0 {
				line += "; error log: " + strings.Join(f.LogLines, " | ")
			}
			if f.Expected != "" {
				line += ". Measured before: " + f.Expected
			}
			mw.Printf("- %s\n", MdCell(line))
		}
		mw.Printf("\n")
	}
	if len(s.Notes) > 0 {
		mw.Printf("Notes:\n\n")
		for _, n := range s.Notes {
			mw.Printf("- %s\n", MdCell(n))
		}
		mw.Printf("\n")
	}
	if len(s.Steps) > 0 {
		mw.Printf("| step | signal | pid | sent (ms) | verified at (ms) | outcome | error |\n")
		mw.Printf("| --- | --- | ---: | ---: | ---: | --- | --- |\n")
		for _, st := range s.Steps {
			verified := "—"
			if st.Verified || st.VerifiedMs != 0 {
				verified = fmt.Sprintf("%.0f", st.VerifiedMs)
			}
			mw.Printf("| %s | %s | %s | %.0f | %s | %s | %s |\n", MdCell(st.Name), MdCell(st.Signal), pidCell(st.PID),
				st.SentMs, verified, MdCell(words.StepOutcome(st)), MdCell(st.Error))
		}
		mw.Printf("\n")
		for _, st := range s.Steps {
			if len(st.LogLines) > 0 {
				body := strings.Join(st.LogLines, "\n")
				fence := "```"
				for strings.Contains(body, fence) {
					fence += "`"
				}
				mw.Printf("Error log at step %s:\n\n%s\n%s\n%s\n\n", MdCell(st.Name), fence, body, fence)
			}
		}
	}
	if len(s.Phases) > 0 {
		mw.Printf("| phase | from (ms) | to (ms) | requests | failed | retried | slow cut | rate (req/s) | p50 (ms) | p99 (ms) | max (ms) | stall (ms) | failures |\n")
		mw.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, p := range s.Phases {
			mw.Printf("| %s | %.0f | %.0f | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n",
				MdCell(p.Name), p.StartMs, p.EndMs, p.Requests, p.Failed, p.Retried, p.SlowCut,
				rateCell(p), msNum(p.P50Ms, p.Requests), msNum(p.P99Ms, p.Requests),
				msNum(p.MaxMs, p.Requests), msNum(p.StallMs, p.Requests), MdCell(words.ClassSummary(p.ByClass)))
		}
		mw.Printf("\n")
		if s.Stall.Phase != "" {
			limit := "no limit"
			if s.MaxStallMs > 0 {
				limit = "limit " + words.FmtMs(s.MaxStallMs)
			}
			mw.Printf("Longest stall: %s in %s (%s).\n\n", words.FmtMs(s.Stall.Ms), MdCell(s.Stall.Phase), limit)
		}
		if line := observerLine(s.Observer); line != "" {
			mw.Printf("%s\n\n", line)
		}
	}
	writeMarkdownTraffic(mw, s)
	writeMarkdownTargets(mw, s)
	writeMarkdownWitness(mw, s)
	if s.Final != nil {
		mw.Printf("Final state: %s\n", MdCell(finalLine(s.Final)))
	}
}

// howToRead explains the report in plain sentences (both renderers use it).
func howToRead() []string {
	return []string{
		"verdict: pass, the scenario met its expectation; fail, it ran and did not (a step nginx refused, with its log line, is a fail); " +
			"error, it could not run or its premises did not hold (the run did not finish — no end marker, fewer steps than planned, no final state —, " +
			"a step did not verify for a reason nginx did not log, an expected failure had another cause, the load started late, stopped early, " +
			"fell below 80% of its rate in a phase of 1 s or more or sent nothing for a window, a file of the run is missing or cut short): " +
			"nothing can be concluded from it.",
		"expect: zero-drops, nothing may be lost and no client may wait longer than the stall limit; drops, a positive control " +
			"(e.g. KILL with requests in flight) that must lose connections of server-side classes in the phase its step opened and nowhere else, " +
			"or the detector is broken.",
		"stall: the longest a client waited in the phase — the longest request, or the longest gap without any response while requests were " +
			"outstanding (10 ms resolution), whichever is longer.",
		"dropped = failed requests + requests the HTTP client retried on a fresh connection after the server closed the one they were " +
			"written on (the retry hides the close; it is still a drop) + long downloads cut short. Closes of idle keep-alive connections " +
			"are not drops.",
		"phases are the spans between steps, on one clock (ms since the run started): each starts when its step's signal is sent; " +
			"a request belongs to the phase in which it was sent, a retry to the phase in which it happened, a download to the phase in which it ended.",
		"failure classes name what the client saw: refused, reset, eof, timeout, status-5xx, status-3xx (a redirect), status-other, " +
			"wrong-body (a 2xx whose body differs from the one the steady phase served), other; cancelled (the client gave up as the load " +
			"stopped) is listed but is never a drop. " +
			"Through Docker's port proxy a reset by nginx may reach the client as eof: see each scenario's load path.",
		"report.html plots latency and errors over time with the steps marked; report.json holds every figure.",
	}
}

func verdictLine(r *record.Report) string {
	if r.Verdict != "" {
		what := "scenario runs"
		if r.Gate == record.GateBaseline {
			what = "comparisons"
		}
		return fmt.Sprintf("%d pass%s, %d fail, %d error over %s", r.Counts.Pass, words.KnownLossNote(r), r.Counts.Fail, r.Counts.Error, what)
	}
	counts := map[string]int{}
	for _, s := range r.Scenarios {
		counts[s.Verdict]++
	}
	return fmt.Sprintf("%d pass, %d fail, %d error", counts[record.VerdictPass], counts[record.VerdictFail], counts[record.VerdictError])
}

// VerdictMark is a verdict with its mark, in characters any font has.
func VerdictMark(v string) string {
	switch v {
	case record.VerdictPass:
		return "✓ pass"
	case record.VerdictFail:
		return "✗ fail"
	case record.VerdictError:
		return "⚠ error"
	}
	return v
}

func verdictBadge(v string) string {
	switch v {
	case record.VerdictPass:
		return "✅ pass"
	case record.VerdictFail:
		return "❌ fail"
	case record.VerdictError:
		return "⚠️ error"
	}
	return MdCell(v)
}

// LoadLine says the load in one line: rate, method, keep-alive, long
// downloads.
func LoadLine(l record.Load) string {
	conn := "a new connection per request"
	if l.KeepAlive {
		conn = "keep-alive"
	}
	return fmt.Sprintf("%d req/s %s, %s, %s", l.Rate, l.Method, conn, words.Plural(l.Slow, "long download"))
}

func scenarioFacts(s *record.Scenario) string {
	var parts []string
	if s.LoadPath != "" {
		parts = append(parts, "Load path: "+s.LoadPath+".")
	}
	parts = append(parts, fmt.Sprintf("Achieved %.0f req/s; latency p50 %s, p99 %s, max %s.",
		s.Rate, msCell(s.Latency.P50Ms), msCell(s.Latency.P99Ms), msCell(s.Latency.MaxMs)))
	c := s.Connections
	parts = append(parts, fmt.Sprintf("Connections: %d opened, %d closed idle by the server, %d closed under a request, %d reset, %d refused; %s retried.",
		c.Opened, c.ClosedByServerIdle, c.ClosedUnderRequest, c.Reset, c.Refused, words.Plural(s.Retried, "request")))
	if s.Slow.Started > 0 || s.Load.Slow > 0 {
		parts = append(parts, fmt.Sprintf("Long downloads: %d started, %d completed, %d cut.", s.Slow.Started, s.Slow.Completed, s.Slow.Cut))
	}
	if lc := s.LongConnections; lc != nil {
		d := lc.Drain
		var each []string
		for _, c := range lc.Connections {
			span := "spans it"
			if !c.Spans {
				span = "does not span it"
			}
			each = append(each, fmt.Sprintf("%s %d %s–%s %s in %s, %s", c.Kind, c.ID, words.FmtMs(c.StartMs), words.FmtMs(c.EndMs), c.Outcome, c.Phase, span))
		}
		parts = append(parts, fmt.Sprintf("Long connections against the drain (%s sent at %s, %s sent at %s, verified at %s): %s.",
			words.StepLabel(record.Step{Name: d.StartStep, Signal: d.StartSignal}), words.FmtMs(d.StartSentMs),
			words.StepLabel(record.Step{Name: d.EndStep, Signal: d.EndSignal}), words.FmtMs(d.EndSentMs), words.FmtMs(d.EndVerifiedMs), strings.Join(each, "; ")))
	}
	return strings.Join(parts, " ")
}

func stepsSummary(steps []record.Step) string {
	if len(steps) == 0 {
		return "none"
	}
	asExpected := 0
	for _, st := range steps {
		if judge.StepAsExpected(st) {
			asExpected++
		}
	}
	return fmt.Sprintf("%d/%d as expected", asExpected, len(steps))
}

func verifiedAt(st record.Step) string {
	if !st.Verified && st.VerifiedMs == 0 {
		return "—"
	}
	return words.FmtMs(st.VerifiedMs)
}

func finalLine(f *record.Final) string {
	line := fmt.Sprintf("%d master(s), %d worker(s), serving binary %s", f.Masters, f.Workers, f.ServingBinary)
	if f.ExpectedBinary != "" {
		line += fmt.Sprintf(" (expected %s)", f.ExpectedBinary)
	}
	line += fmt.Sprintf(", nginx.pid holds %d, .oldbin present: %t, serving: %t", f.PIDFilePID, f.OldbinPresent, f.Serving)
	if len(f.Processes) > 0 {
		var ps []string
		for _, p := range f.Processes {
			ps = append(ps, fmt.Sprintf("%d %s (parent %d, %s binary)", p.PID, p.Role, p.PPID, p.Binary))
		}
		line += "; processes: " + strings.Join(ps, ", ")
	}
	if len(f.Wrong) > 0 {
		line += "; wrong: " + strings.Join(f.Wrong, "; ")
	}
	if len(f.CheckErrors) > 0 {
		line += "; check errors: " + strings.Join(f.CheckErrors, "; ")
	}
	return line + "."
}

// writeMarkdownBuilds says what each spec resolved to, with the hash of
// the file it came from.
func writeMarkdownBuilds(mw *MdWriter, r *record.Report) {
	for _, b := range []struct {
		side string
		ref  *record.BuildRef
	}{{"old", r.FromBuild}, {"new", r.ToBuild}} {
		if b.ref == nil {
			continue
		}
		mw.Printf("- %s build `%s`: `%s`", b.side, MdCode(b.ref.Spec), MdCode(b.ref.Exact))
		if b.ref.Suite != "" {
			mw.Printf(" from %s", MdCell(b.ref.Suite))
		} else if b.ref.Origin != "" {
			mw.Printf(" from the %s", MdCell(b.ref.Origin))
		}
		if b.ref.SHA256 != "" {
			mw.Printf(", sha256 `%s`", MdCode(b.ref.SHA256))
		}
		if b.ref.Note != "" {
			mw.Printf(" (%s)", MdCell(b.ref.Note))
		}
		mw.Printf("\n")
	}
	if r.FromBuild != nil || r.ToBuild != nil {
		mw.Printf("\n")
	}
}

// WriteMarkdownInsecure warns, at the head of a report, that the archive's
// signatures were not checked (--insecure-archive).
func WriteMarkdownInsecure(mw *MdWriter, insecure bool) {
	if insecure {
		mw.Printf("> **%s**\n\n", words.InsecureArchiveNote)
	}
}

// observerLine sums the observer up for report.md ("" without a record).
func observerLine(o *record.Observer) string {
	if o == nil {
		return ""
	}
	line := fmt.Sprintf("Observer: %d windows of 100 ms recorded, %d blind (worst: the load %s late, the runtime %s, the control probe %s; %d control probes missed).",
		o.Windows, o.Unhealthy, words.FmtMs(o.WorstLateMs), words.FmtMs(o.WorstHiccupMs), words.FmtMs(o.WorstProbeMs), o.ProbeMissed)
	switch h := o.Heartbeat; {
	case h == nil: // a record made before the heartbeat
	case h.Absent != "":
		line += fmt.Sprintf(" nginx's container: no heartbeat (%s).", h.Absent)
	default:
		line += fmt.Sprintf(" nginx's container: %d heartbeat ticks over %s–%s, worst %s late, %s over %s.",
			h.Ticks, words.FmtMs(h.FromMs), words.FmtMs(h.ToMs), words.FmtMs(h.WorstLateMs), words.Plural(len(h.Late), "span"), words.FmtMs(analysis.NginxMaxLateMs))
		if h.WorstRunqMs > 0 || len(h.Held) > 0 {
			line += fmt.Sprintf(" nginx's processes: at worst %s a window waiting for a CPU, held by the machine in %s.",
				words.FmtMs(h.WorstRunqMs), words.Plural(len(h.Held), "span"))
		}
	}
	return line
}
