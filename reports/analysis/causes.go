package analysis

import (
	"fmt"
	"slices"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// DropCauses explains the drops from what was measured: which step opened
// the phase they happened in, and what the load was. It names nginx's
// behaviour; it never changes the count or the verdict.
func DropCauses(s *record.Scenario) []record.Cause {
	opener := map[string]record.Step{}
	for _, st := range s.Steps {
		opener[phaseOf(st)] = st
	}
	out := []record.Cause{}
	for _, p := range s.Phases {
		if p.Dropped == 0 && p.Failed == 0 && p.Retried == 0 && p.SlowCut == 0 {
			continue
		}
		if p.WebSocketsDropped > 0 {
			out = append(out, record.Cause{Phase: p.Name, Class: "websocket", Count: p.WebSocketsDropped,
				Text: fmt.Sprintf("%s (%s): nginx relays a WebSocket without reading it and keeps it until it ends, so a worker that is shutting down (since WINCH or QUIT) holds it, and its master with it; "+
					"it closes it without a close frame (1006) only when it is made to — worker_shutdown_timeout expiring, TERM, KILL. A graceful upgrade under WebSocket traffic therefore ends either by cutting them or not at all",
					p.Name, words.Plural(p.WebSocketsDropped, "WebSocket")+" ended abnormally")})
		}
		st, ok := opener[p.Name]
		sig := ""
		if ok {
			sig = st.Signal
		}
		drainCut := false
		if c, ok := drainCutCause(s, p, st); ok {
			out = append(out, c)
			drainCut = true
		}
		closes := p.Retried + p.ByClass[record.ClassEOF] + p.ByClass[record.ClassReset]
		var why string
		switch {
		case crashIn(s, p) != "":
			why = crashIn(s, p)
		case sig == "KILL":
			why = "KILL: the workers died at once, and every connection they held (requests in flight, long downloads) was cut"
		case sig == "TERM":
			why = "TERM is nginx's fast shutdown: the signalled master's workers closed the connections they held at once, cutting requests in flight and long downloads on them"
		case (sig == "WINCH" || sig == "QUIT") && s.Load.KeepAlive && closes > 0:
			why = "the keep-alive close race: a worker that is shutting down closes its idle keep-alive connections, and a request the client wrote on one of them at that moment is lost " +
				"(net/http replays a GET on a new connection — counted as retried —, a POST fails with EOF); a new connection per request does not meet it"
		case p.ByClass[record.ClassRefused] > 0:
			why = "connections refused: nothing accepted on the port at that moment"
		case p.ByClass[record.ClassTimeout] > 0:
			why = "requests timed out: nothing answered them in time"
		default:
			continue
		}
		for _, c := range words.SortedClasses(p.ByClass) {
			if c == record.ClassCancelled {
				continue
			}
			out = append(out, record.Cause{Phase: p.Name, Class: c, Count: p.ByClass[c], Text: why})
		}
		if n := p.Retried; n > 0 {
			out = append(out, record.Cause{Phase: p.Name, Class: record.CauseRetried, Count: n, Text: why})
		}
		if n := p.SlowCut; n > 0 && !drainCut {
			out = append(out, record.Cause{Phase: p.Name, Class: record.CauseSlowCut, Count: n, Text: why})
		}
	}
	return out
}

// crashIn says which processes died unplanned during phase p (s.Deaths),
// or "": what they held was lost with them, whatever step opened the phase.
func crashIn(s *record.Scenario, p record.Phase) string {
	var who []string
	for _, d := range s.Deaths {
		if d.ToMs < p.StartMs || d.FromMs > p.EndMs {
			continue
		}
		w := fmt.Sprintf("%s %d", d.Role, d.PID)
		if d.Generation != "" {
			w += " (" + d.Generation + ")"
		}
		if d.Signal > 0 {
			w += fmt.Sprintf(" of signal %d (%s)", d.Signal, SignalName(d.Signal))
		}
		who = append(who, w)
	}
	if len(who) == 0 {
		return ""
	}
	return "a crash, not the transition: " + strings.Join(who, ", ") + " died, which the plan did not make happen; " +
		"the requests a worker had read and not yet answered are lost with it, and nginx never logs them"
}

// drainCutCause explains long connections cut in a phase a graceful drain
// opened (WINCH, QUIT, HUP): draining workers keep what they hold to its
// end, so something ended the drain early. It says how long after the step
// they were cut, and nginx's own lines when the step caught any.
func drainCutCause(s *record.Scenario, p record.Phase, st record.Step) (record.Cause, bool) {
	if p.SlowCut == 0 || (st.Signal != "WINCH" && st.Signal != "QUIT" && st.Signal != "HUP") {
		return record.Cause{}, false
	}
	var after []float64
	if lc := s.LongConnections; lc != nil {
		for _, c := range lc.Connections {
			if c.Phase == p.Name && c.Outcome == "cut" {
				after = append(after, c.EndMs-st.SentMs)
			}
		}
	}
	when := ""
	if len(after) > 0 {
		lo, hi := slices.Min(after), slices.Max(after)
		when = fmt.Sprintf(", %s after %s", words.FmtMs(lo), st.Signal)
		if hi-lo >= 100 {
			when = fmt.Sprintf(", %s to %s after %s", words.FmtMs(lo), words.FmtMs(hi), st.Signal)
		}
	}
	text := fmt.Sprintf("the workers draining since %s closed long downloads they were still serving%s: a graceful drain keeps a held "+
		"connection to its end, so something ended it early — worker_shutdown_timeout shorter than the longest connection does this", words.StepLabel(st), when)
	if l := firstFailureLine(st.LogLines); l != "" {
		text += "; nginx logged: " + l
	} else {
		text += "; nginx logged no [error] to [emerg] line while the step ran (the shutdown timeout's close is logged at debug level only)"
	}
	return record.Cause{Phase: p.Name, Class: record.CauseSlowCut, Count: p.SlowCut, Text: text}, true
}

// firstFailureLine is the first [error] to [emerg] line of lines, or "".
func firstFailureLine(lines []string) string {
	for _, l := range lines {
		for _, lvl := range []string{"[emerg]", "[alert]", "[crit]", "[error]"} {
			if strings.Contains(l, lvl) {
				return l
			}
		}
	}
	return ""
}

// knownStepFailures explain error-log lines nginx writes when a step fails.
var knownStepFailures = []struct{ line, why string }{
	{"the changing binary signal is ignored",
		"nginx ignores USR2 while its master's parent is the process that started it: a master run in the foreground " +
			"(`daemon off;`, as container images run it) keeps that parent, so USR2 is ignored for as long as it runs; " +
			"run it daemonised under an init to upgrade in place"},
	{"execve() failed while executing new binary process",
		"on USR2 nginx re-executes the path it was started with (its argv[0]) as given, without searching PATH: " +
			"a master started by a relative name (`nginx`) cannot start its new binary; start it by its absolute path"},
}

// stepCauses explains failed steps from nginx's own log lines.
func stepCauses(s *record.Scenario) []record.Cause {
	var out []record.Cause
	for _, st := range s.Steps {
		if st.Verified {
			continue
		}
		for _, k := range knownStepFailures {
			if slices.ContainsFunc(st.LogLines, func(l string) bool { return strings.Contains(l, k.line) }) {
				out = append(out, record.Cause{Phase: phaseOf(st), Class: record.CauseStepFailed, Count: 1, Text: fmt.Sprintf("%s: %s", st.Name, k.why)})
				break
			}
		}
	}
	return out
}

func phaseOf(st record.Step) string {
	if st.Phase != "" {
		return st.Phase
	}
	return st.Name
}
