package reports

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes report.md: the summary table first (it fits a CI job
// summary), then each scenario's reasons, steps and phases, then how to read it.
func WriteMarkdown(w io.Writer, r *Report) error {
	mw := &mdWriter{w: w}
	mw.printf("# nginx in-place upgrade: %s\n\n", verdictLine(r))
	mw.printf("From `%s` to `%s`; load: %s.\n\n", mdCode(r.From), mdCode(r.To), loadLine(r.Load))
	mw.printf("| scenario | expect | verdict | dropped | requests | failed | slow cut | steps |\n")
	mw.printf("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, s := range r.Scenarios {
		mw.printf("| %s | %s | %s | %d | %d | %d | %d/%d | %s |\n",
			mdCell(s.Name), mdCell(s.Expect), verdictBadge(s.Verdict), s.Dropped, s.Requests.Total,
			s.Requests.Failed, s.Slow.Cut, s.Slow.Started, stepsSummary(s.Steps))
	}
	for _, s := range r.Scenarios {
		writeMarkdownScenario(mw, &s)
	}
	mw.printf("\n## How to read this report\n\n")
	for _, item := range howToRead() {
		mw.printf("- %s\n", mdCell(item))
	}
	return mw.err
}

func writeMarkdownScenario(mw *mdWriter, s *Scenario) {
	mw.printf("\n## %s — %s\n\n", mdCell(s.Name), verdictBadge(s.Verdict))
	mw.printf("Expect **%s**. %s\n\n", mdCell(s.Expect), mdCell(scenarioFacts(s)))
	if len(s.Reasons) > 0 {
		mw.printf("Reasons:\n\n")
		for _, reason := range s.Reasons {
			mw.printf("- %s\n", mdCell(reason))
		}
		mw.printf("\n")
	}
	if len(s.Drops) > 0 && s.Verdict != VerdictFail {
		mw.printf("Dropped:\n\n")
		for _, d := range s.Drops {
			mw.printf("- %s\n", mdCell(d))
		}
		mw.printf("\n")
	}
	if len(s.Causes) > 0 {
		mw.printf("Why (from the step that opened the phase and the load):\n\n")
		for _, c := range s.Causes {
			mw.printf("- %s\n", mdCell(c))
		}
		mw.printf("\n")
	}
	if len(s.Notes) > 0 {
		mw.printf("Notes:\n\n")
		for _, n := range s.Notes {
			mw.printf("- %s\n", mdCell(n))
		}
		mw.printf("\n")
	}
	if len(s.Steps) > 0 {
		mw.printf("| step | signal | pid | sent | verified at | outcome | error |\n")
		mw.printf("| --- | --- | ---: | ---: | ---: | --- | --- |\n")
		for _, st := range s.Steps {
			mw.printf("| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(st.Name), mdCell(st.Signal), pidCell(st.PID),
				fmtMs(st.SentMs), verifiedAt(st), mdCell(stepOutcome(st)), mdCell(st.Error))
		}
		mw.printf("\n")
		for _, st := range s.Steps {
			if len(st.LogLines) > 0 {
				body := strings.Join(st.LogLines, "\n")
				fence := "```"
				for strings.Contains(body, fence) {
					fence += "`"
				}
				mw.printf("Error log at step %s:\n\n%s\n%s\n%s\n\n", mdCell(st.Name), fence, body, fence)
			}
		}
	}
	if len(s.Phases) > 0 {
		mw.printf("| phase | from | to | requests | failed | retried | slow cut | rate (req/s) | p50 | p99 | max | stall | failures |\n")
		mw.printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, p := range s.Phases {
			mw.printf("| %s | %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n",
				mdCell(p.Name), fmtMs(p.StartMs), fmtMs(p.EndMs), p.Requests, p.Failed, p.Retried, p.SlowCut,
				rateCell(p), latencyCell(p.P50Ms, p.Requests), latencyCell(p.P99Ms, p.Requests),
				latencyCell(p.MaxMs, p.Requests), latencyCell(p.StallMs, p.Requests), mdCell(classSummary(p.ByClass)))
		}
		mw.printf("\n")
		if s.Stall.Phase != "" {
			limit := "no limit"
			if s.MaxStallMs > 0 {
				limit = "limit " + fmtMs(s.MaxStallMs)
			}
			mw.printf("Longest stall: %s in %s (%s).\n\n", fmtMs(s.Stall.Ms), mdCell(s.Stall.Phase), limit)
		}
	}
	writeMarkdownTraffic(mw, s)
	if s.Final != nil {
		mw.printf("Final state: %s\n", mdCell(finalLine(s.Final)))
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

type mdWriter struct {
	w   io.Writer
	err error
}

func (m *mdWriter) printf(format string, args ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, args...)
	}
}

// mdCell makes text safe inside a Markdown table cell or list item: no
// table breaks, no HTML.
func mdCell(s string) string {
	return strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "\r", " ", "\n", " ", "`", "\\`",
		"*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	).Replace(s)
}

// mdCode makes text safe inside a `code span`.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s)
}

func verdictLine(r *Report) string {
	counts := map[string]int{}
	for _, s := range r.Scenarios {
		counts[s.Verdict]++
	}
	return fmt.Sprintf("%d pass, %d fail, %d error", counts[VerdictPass], counts[VerdictFail], counts[VerdictError])
}

func verdictBadge(v string) string {
	switch v {
	case VerdictPass:
		return "✅ pass"
	case VerdictFail:
		return "❌ fail"
	case VerdictError:
		return "⚠️ error"
	}
	return mdCell(v)
}

func loadLine(l Load) string {
	conn := "a new connection per request"
	if l.Keepalive {
		conn = "keep-alive"
	}
	return fmt.Sprintf("%d req/s %s, %s, %s", l.Rate, l.Method, conn, plural(l.Slow, "long download"))
}

func scenarioFacts(s *Scenario) string {
	var parts []string
	if s.LoadPath != "" {
		parts = append(parts, "Load path: "+s.LoadPath+".")
	}
	parts = append(parts, fmt.Sprintf("Achieved %.0f req/s; latency p50 %s, p99 %s, max %s.",
		s.Rate, msCell(s.Latency.P50Ms), msCell(s.Latency.P99Ms), msCell(s.Latency.MaxMs)))
	c := s.Connections
	parts = append(parts, fmt.Sprintf("Connections: %d opened, %d closed idle by the server, %d closed under a request, %d reset, %d refused; %s retried.",
		c.Opened, c.ClosedByServerIdle, c.ClosedUnderRequest, c.Reset, c.Refused, plural(s.Retried, "request")))
	if s.Slow.Started > 0 || s.Load.Slow > 0 {
		parts = append(parts, fmt.Sprintf("Long downloads: %d started, %d completed, %d cut.", s.Slow.Started, s.Slow.Completed, s.Slow.Cut))
	}
	return strings.Join(parts, " ")
}

func stepsSummary(steps []Step) string {
	if len(steps) == 0 {
		return "none"
	}
	asExpected := 0
	for _, st := range steps {
		if stepAsExpected(st) {
			asExpected++
		}
	}
	return fmt.Sprintf("%d/%d as expected", asExpected, len(steps))
}

func stepAsExpected(st Step) bool { return st.Verified != (st.Expected == ExpectFail) }

func stepOutcome(st Step) string {
	switch {
	case st.Verified && st.Expected == ExpectFail:
		return "verified, expected to fail"
	case st.Verified:
		return "verified"
	case st.Expected == ExpectFail:
		return "failed, as expected"
	}
	return "NOT verified"
}

func verifiedAt(st Step) string {
	if !st.Verified && st.VerifiedMs == 0 {
		return "—"
	}
	return fmtMs(st.VerifiedMs)
}

func pidCell(pid int) string {
	if pid == 0 {
		return ""
	}
	return fmt.Sprint(pid)
}

func msCell(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

func latencyCell(ms float64, requests int) string {
	if requests == 0 {
		return "—"
	}
	return msCell(ms)
}

func rateCell(p Phase) string {
	if p.LoadMs == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", p.Rate)
}

func finalLine(f *Final) string {
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
