package judge

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// MinRateFraction is the share of the configured rate every phase of at
// least MinRatePhaseMs must achieve for a verdict to count: a load that
// stalled through a transition proves nothing about it.
const (
	MinRateFraction = 0.8
	MinRatePhaseMs  = 1000
)

// Verdict is the judge's word on a scenario: pass, fail or error, the
// reasons for it, and beside them the premises that did not hold — the
// record incomplete, a step that did not do what was expected, the load
// short of its rate, a window the observer could not see. A fail stands
// whatever premise failed; an error is a run whose premises did not let it
// show either way; a pass has every premise held (Premises empty).
type Verdict struct {
	Verdict  string   // record.VerdictPass, VerdictFail or VerdictError
	Reasons  []string // what decided it, for people (report.json's reasons)
	Premises []string // the premises that did not hold
}

// Scenario gives a scenario's verdict, its reasons and its premises, from its record alone
// (so a verdict can be recomputed from report.json). Premises come first:
// if the scenario could not run, its record is incomplete (no end marker,
// fewer steps than planned, no final state), a step did not do what the
// scenario expects of it — or failed as expected but for another cause —,
// or the load did not cover the run at its rate (it started late, stopped
// early, fell below its rate, or sent nothing for a window), the verdict is
// error: nothing can be concluded. Then the expectation: zero-drops passes
// iff nothing was dropped and no client waited longer than the stall limit;
// drops (a positive control of the detector) passes iff the drops are where
// and what the causing step must produce, and nowhere else. Failed
// final-state checks fail either.
//
// A failed premise gates a pass, it cannot un-see a loss: a zero-drops
// scenario that lost connections by the server's doing is fail whatever
// premise also failed, error.txt included, and its reasons
// keep the premise failures beside the losses ("also: …"). A measurement too
// weak to prove nothing was lost still proves what it saw lost. A positive
// control with a failed premise stays error: its pass needs the premises,
// and its drops are what it expects, not a finding.
//
// A loss the scenario declares known (KnownLoss: its phase, its classes,
// nginx's word on it, its bound) does not fail it: it passes with the known
// loss beside the verdict (s.KnownLossSeen), unless the run is strict. A
// loss that does not fit every term of a known loss fails as any other.
func Scenario(s *record.Scenario) Verdict {
	known := judgeKnownLosses(s)
	s.KnownLossSeen = known.seen
	if s.Strict {
		known.explained = nil
	}
	premises := premiseReasons(s)
	deaths := DeathReasons(s)
	if len(premises) > 0 {
		// A crash stands whatever premise failed; another death may be the
		// environment's (the OOM killer, a kill from outside) when the run
		// itself went wrong: it is said, beside the premises.
		crashes, others := splitCrashes(s, deaths)
		if lost := append(crashes, serverSideLosses(s, known.explained)...); len(lost) > 0 {
			lost = append(lost, others...)
			for _, p := range premises {
				lost = append(lost, "also: "+p)
			}
			return Verdict{record.VerdictFail, lost, premises}
		}
		return Verdict{record.VerdictError, append(append([]string{}, premises...), others...), premises}
	}
	fails := deaths
	var blind []string
	for _, st := range s.Steps {
		switch {
		case st.Expected == record.ExpectFail && st.Verified:
			fails = append(fails, fmt.Sprintf("step %s verified but the scenario expects it to fail", words.StepLabel(st)))
		case st.Expected != record.ExpectFail && !st.Verified:
			// Not verified, and nginx's error log says why: the path itself
			// failed (a finding about nginx), not the measurement.
			fails = append(fails, fmt.Sprintf("step %s failed: nginx logged %s", words.StepLabel(st), nginxCause(st)))
		}
	}
	if s.Final != nil {
		for _, e := range s.Final.CheckErrors {
			fails = append(fails, "final state: "+e)
		}
	}
	switch s.Expect {
	case record.ExpectZeroDrops:
		fails = append(fails, analysis.DropReasons(s, known.explained)...)
		if len(fails) > 0 {
			fails = append(fails, known.notKnown...)
		}
		if s.Strict {
			fails = append(fails, knownLossReasons(known.seen)...)
		}
		var stalls []string
		stalls, blind = StallReasons(s)
		fails = append(fails, stalls...)
	case record.ExpectDrops:
		fails = append(fails, controlReasons(s)...)
	}
	if len(fails) > 0 {
		for _, b := range blind {
			fails = append(fails, "also: "+b)
		}
		return Verdict{record.VerdictFail, fails, blind}
	}
	if len(blind) > 0 {
		return Verdict{record.VerdictError, blind, blind}
	}
	return Verdict{record.VerdictPass, []string{}, nil}
}

// Tolerances of the load-coverage premises: the load may start this much
// of its steady window late, and end this much of the last audit early.
const coverageSlack = 0.1

func premiseReasons(s *record.Scenario) []string {
	if s.Error != "" {
		// What is missing from its record follows from it.
		return []string{"could not run: " + s.Error}
	}
	out := append([]string(nil), s.Problems...)
	switch s.Expect {
	case record.ExpectZeroDrops:
	case record.ExpectDrops:
		if s.ExpectDrops == nil {
			out = append(out, "expects drops but does not say where and what (meta.json expect_drops is empty)")
		}
	case "":
		if len(s.Problems) == 0 { // a missing meta.json says it already
			out = append(out, "no expectation (meta.json expect is empty)")
		}
	default:
		out = append(out, fmt.Sprintf("unknown expectation %q (want %q or %q)", s.Expect, record.ExpectZeroDrops, record.ExpectDrops))
	}
	if s.Requests.Total == 0 {
		out = append(out, "no results: the load sent no request")
	}
	for _, st := range s.Steps {
		switch {
		case st.Expected != record.ExpectFail && !st.Verified && nginxCause(st) == "":
			r := fmt.Sprintf("step %s not verified", words.StepLabel(st))
			if st.Error != "" {
				r += ": " + st.Error
			}
			out = append(out, r)
		case st.Expected == record.ExpectFail && !st.Verified:
			if r := causeReason(st); r != "" {
				out = append(out, r)
			}
		}
	}
	if s.Slow.Cancelled > 0 {
		out = append(out, fmt.Sprintf("%s cancelled by the harness before it ended: nothing can be said of it",
			words.Plural(s.Slow.Cancelled, "long download")))
	}
	if s.Requests.Total > 0 {
		out = append(out, CoverageReasons(s)...)
	}
	return append(out, analysis.DrainReasons(s)...)
}

// nginxCause is the error-log line that explains a failed step: the first
// [emerg], [alert] or [crit] line since it was sent, or "".
func nginxCause(st record.Step) string {
	for _, lvl := range []string{"[emerg]", "[alert]", "[crit]"} {
		for _, l := range st.LogLines {
			if strings.Contains(l, lvl) {
				return l
			}
		}
	}
	return ""
}

// causeReason checks that a step expected to fail failed for its expected
// cause: its error or the error log's lines since it was sent match
// ExpectedCause. A step that failed for another reason (the signal never
// delivered, a Docker call that failed) proves nothing.
func causeReason(st record.Step) string {
	if st.ExpectedCause == "" {
		return fmt.Sprintf("step %s failed as expected, but the scenario names no cause to check it against", words.StepLabel(st))
	}
	re, err := regexp.Compile(st.ExpectedCause)
	if err != nil {
		return fmt.Sprintf("step %s: expected cause %q is not a regular expression: %v", words.StepLabel(st), st.ExpectedCause, err)
	}
	if re.MatchString(st.Error) {
		return ""
	}
	for _, l := range st.LogLines {
		if re.MatchString(l) {
			return ""
		}
	}
	got := st.Error
	if got == "" {
		got = "no error"
	}
	return fmt.Sprintf("step %s failed, but not for the expected cause (/%s/ in its error or the error log): %s",
		words.StepLabel(st), st.ExpectedCause, got)
}

// CoverageReasons checks that the load covered the run: it started a
// steady window before the first step, went on past the last step's
// verification and audit, kept its rate in every phase of a second or more,
// and never fell silent for a window.
func CoverageReasons(s *record.Scenario) []string {
	var out []string
	for _, st := range s.Steps {
		if st.SentMs > s.LoadEndMs {
			out = append(out, fmt.Sprintf("the load stopped at %s, before step %s was sent at %s",
				words.FmtMs(s.LoadEndMs), st.Name, words.FmtMs(st.SentMs)))
		}
	}
	if len(s.Steps) > 0 {
		first := s.Steps[0]
		if lead := first.SentMs - s.LoadStartMs; lead < s.SteadyMs*(1-coverageSlack) || lead < 0 {
			out = append(out, fmt.Sprintf("the load started %s before step %s, short of its steady window of %s",
				words.FmtMs(lead), first.Name, words.FmtMs(s.SteadyMs)))
		}
		last := s.Steps[len(s.Steps)-1]
		audit := 0.0
		if len(s.PlannedSteps) == len(s.Steps) {
			audit = s.PlannedSteps[len(s.PlannedSteps)-1].AuditMs
		}
		done := last.VerifiedMs
		if !last.Verified {
			done = last.SentMs
		}
		interval := 0.0
		if s.Load.Rate > 0 {
			interval = 1000 / float64(s.Load.Rate)
		}
		if want := done + audit*(1-coverageSlack); s.LoadEndMs+interval < want {
			out = append(out, fmt.Sprintf("the load stopped at %s, before the end of step %s's audit window at %s",
				words.FmtMs(s.LoadEndMs), last.Name, words.FmtMs(done+audit)))
		}
	}
	if s.Load.Rate > 0 {
		want := float64(s.Load.Rate)
		for _, p := range s.Phases {
			if p.LoadMs >= MinRatePhaseMs && p.Rate < MinRateFraction*want {
				out = append(out, fmt.Sprintf("the load did not keep its rate in %s: %.0f req/s over %s, below %.0f%% of %d req/s",
					p.Name, p.Rate, words.FmtMs(p.LoadMs), MinRateFraction*100, s.Load.Rate))
			}
		}
	}
	if s.SilentCount > 0 {
		var where []string
		for _, w := range s.Silent {
			where = append(where, fmt.Sprintf("%s–%s in %s", words.FmtMs(w.StartMs), words.FmtMs(w.EndMs), w.Phase))
		}
		more := ""
		if s.SilentCount > len(s.Silent) {
			more = fmt.Sprintf(" and %d more", s.SilentCount-len(s.Silent))
		}
		out = append(out, fmt.Sprintf("the load sent nothing in %s while it should have: %s%s",
			words.Plural(s.SilentCount, "window"), strings.Join(where, ", "), more))
	}
	return out
}

// StallReasons fails a graceful path on which a client waited longer than
// the stall limit while the observer could see on both sides (nginx's
// stall); a stall that began before the first step was sent (the steady
// control: nothing was done to nginx yet), one the harness's side saw no
// more than the limit of, or
// during which nginx's container ran late outside a fault that stalls it,
// is blind: the machine's, an error (analysis.BlindStall). A fail says when
// nginx's side had no heartbeat to show (analysis.HeartbeatNote).
func StallReasons(s *record.Scenario) (fails, blind []string) {
	if s.MaxStallMs <= 0 {
		return nil, nil
	}
	for _, p := range s.Phases {
		if p.StallMs <= s.MaxStallMs {
			continue
		}
		if first, ok := firstStepSent(s); ok && p.StallEndMs > 0 && p.StallStartMs < first {
			blind = append(blind, fmt.Sprintf("stalled %s from %s, before the first step was sent at %s: nginx under this load on this machine stalls with no upgrade under way (the steady control), so the upgrade's stalls cannot be told from it",
				words.FmtMs(p.StallMs), words.FmtMs(p.StallStartMs), words.FmtMs(first)))
			continue
		}
		if why := analysis.BlindStall(s, p); len(why) > 0 {
			blind = append(blind, why...)
			continue
		}
		why := fmt.Sprintf("stalled %s in %s (longest request %s, longest gap without a response %s), above the limit of %s",
			words.FmtMs(p.StallMs), p.Name, words.FmtMs(p.MaxMs), words.FmtMs(p.GapMs), words.FmtMs(s.MaxStallMs))
		if note := analysis.HeartbeatNote(s, p.StallStartMs, p.StallEndMs); note != "" {
			why += "; " + note
		}
		fails = append(fails, why)
	}
	return fails, blind
}

// firstStepSent is when the run's first step was sent: before it is the
// steady control, the load against nginx with nothing done to it.
func firstStepSent(s *record.Scenario) (float64, bool) {
	first, ok := 0.0, false
	for _, st := range s.Steps {
		if st.SentMs > 0 && (!ok || st.SentMs < first) {
			first, ok = st.SentMs, true
		}
	}
	return first, ok
}

// controlReasons checks a positive control: drops in the phase its causing
// step opened, of server-side classes only, none anywhere else, and what
// the step's kind of drop promises (downloads kept, outage bounded, the
// drops being the connections that were held).
func controlReasons(s *record.Scenario) []string {
	spec := s.ExpectDrops
	var out []string
	var in *record.Phase
	var within []*record.Phase // the phases drops may fall in
	across := 0                // failed requests sent just before the causing step, in flight when it was sent
	for i := range s.Phases {
		p := &s.Phases[i]
		if p.Name == spec.Phase && in == nil {
			in = p
			within = append(within, p)
			continue
		}
		if in != nil && spec.AndAfter {
			within = append(within, p)
			continue
		}
		outside := p.Dropped
		if in == nil && i+1 < len(s.Phases) && s.Phases[i+1].Name == spec.Phase {
			// Sent before the causing step, still in flight when it was
			// sent: the step's to cut (a KILL takes what is in flight).
			across = min(p.FailedAcross, outside)
			outside -= across
		}
		if outside > 0 {
			out = append(out, fmt.Sprintf("%d dropped in %s, outside %s, the phase the causing step opened (%s)",
				outside, p.Name, spec.Phase, strings.Join(phaseDropWords(*p), ", ")))
		}
	}
	if in == nil {
		return append(out, fmt.Sprintf("no phase %s: the step that must cause the drops never ran", spec.Phase))
	}
	dropped := across
	for _, p := range within {
		dropped += p.Dropped
	}
	if dropped == 0 && !spec.Optional {
		out = append(out, fmt.Sprintf("positive control saw no drop in %s: the detector is broken", spec.Phase))
	}
	allowed := map[string]bool{}
	for _, c := range spec.Classes {
		allowed[c] = true
	}
	for _, p := range within {
		for _, c := range words.SortedClasses(p.ByClass) {
			if c != record.ClassCancelled && !allowed[c] {
				out = append(out, fmt.Sprintf("%d failed in %s with %s, not what the causing step does (want %s)",
					p.ByClass[c], p.Name, c, strings.Join(spec.Classes, ", ")))
			}
		}
	}
	if spec.MaxOutageMs > 0 && in.OutageMs > spec.MaxOutageMs {
		out = append(out, fmt.Sprintf("requests failed for %s in a row in %s, above the bound of %s",
			words.FmtMs(in.OutageMs), spec.Phase, words.FmtMs(spec.MaxOutageMs)))
	}
	out = append(out, witnessControlReasons(s, within)...)
	h := s.Held
	if spec.KeepDownloadsBefore != "" {
		switch {
		case h == nil || h.KeptDownloads == 0:
			out = append(out, fmt.Sprintf("no long download started before %s: nothing shows the other set kept its connections", spec.KeepDownloadsBefore))
		case h.KeptDownloadsDone < h.KeptDownloads:
			out = append(out, fmt.Sprintf("%d of %d long downloads started before %s were cut: the set the step did not touch lost connections",
				h.KeptDownloads-h.KeptDownloadsDone, h.KeptDownloads, spec.KeepDownloadsBefore))
		}
	}
	if spec.CutHeld {
		switch {
		case h == nil:
			out = append(out, "no record of what was in flight at the causing step")
		case h.Downloads == 0:
			out = append(out, fmt.Sprintf("no long download in flight at %s: nothing shows held connections being cut", h.Step))
		case h.DownloadsCut < h.Downloads:
			out = append(out, fmt.Sprintf("%d of %d long downloads in flight at %s were not cut: the step did not take the connections it held",
				h.Downloads-h.DownloadsCut, h.Downloads, h.Step))
		case dropped > h.Connections:
			out = append(out, fmt.Sprintf("%d dropped in %s, more than the %d connections open at %s: the drops are not only what the step held",
				dropped, spec.Phase, h.Connections, h.Step))
		}
	}
	return out
}

// witnessControlReasons holds an expectation of drops to the server's
// record: each drop in the phases is of a class the spec names and, with
// BySignalled, held by a process the causing step signalled.
func witnessControlReasons(s *record.Scenario, within []*record.Phase) []string {
	spec, w := s.ExpectDrops, s.Witness
	if len(spec.Witness) == 0 || w == nil || !w.Present {
		return nil
	}
	in := map[string]bool{}
	for _, p := range within {
		in[p.Name] = true
	}
	var signalled map[int]bool
	for _, st := range s.Steps {
		if st.Phase == spec.Phase {
			signalled = map[int]bool{}
			for _, pid := range append([]int{st.PID}, st.PIDs...) {
				signalled[pid] = true
			}
			break
		}
	}
	var out []string
	wrong, stranger := map[string]int{}, map[string]int{}
	for _, d := range w.Drops {
		if !in[d.Phase] {
			continue
		}
		if !slices.Contains(spec.Witness, d.Class) {
			wrong[d.Class]++
			continue
		}
		if spec.BySignalled {
			pids := d.Candidates
			if d.PID > 0 {
				pids = []int{d.PID}
			}
			held := len(pids) > 0
			for _, pid := range pids {
				held = held && signalled[pid]
			}
			if !held {
				stranger[fmt.Sprintf("%s by %v", d.Class, pids)]++
			}
		}
	}
	for _, c := range words.SortedClasses(wrong) {
		out = append(out, fmt.Sprintf("%d drops in %s reconciled as %s with nginx's log, not what the causing step does (want %s)",
			wrong[c], spec.Phase, c, strings.Join(spec.Witness, ", ")))
	}
	for _, c := range words.SortedClasses(stranger) {
		out = append(out, fmt.Sprintf("%d drops in %s %s, not a process the causing step signalled", stranger[c], spec.Phase, c))
	}
	return out
}

func phaseDropWords(p record.Phase) []string {
	var w []string
	if p.Failed > 0 {
		w = append(w, fmt.Sprintf("%s: %s", words.Plural(p.Failed, "failed request"), words.ClassSummary(p.ByClass)))
	}
	if p.Retried > 0 {
		w = append(w, words.Plural(p.Retried, "retried request"))
	}
	if p.SlowCut > 0 {
		w = append(w, words.Plural(p.SlowCut, "cut download"))
	}
	return append(w, analysis.TrafficDropWords(p)...)
}

// serverSideLosses are the drop reasons that stand whatever premise failed,
// and whatever error.txt says (a run that stopped half-way still saw what
// it saw): in a zero-drops scenario, what the server did to the client —
// refused, reset or closed connections, HTTP/2 streams reset and GOAWAYs,
// error statuses and wrong bodies, closes under a written request, cut
// downloads, WebSockets ended without a close, failed uploads, unsafe
// HTTP/2 replays. Timeouts and unclassified errors are left out: a starved
// client produces them on its own.
func serverSideLosses(s *record.Scenario, known map[string]bool) []string {
	if s.Expect != record.ExpectZeroDrops {
		return nil
	}
	var out []string
	for _, p := range s.Phases {
		if known[p.Name] {
			continue
		}
		server := map[string]int{}
		n := 0
		for c, k := range p.ByClass {
			if c != record.ClassTimeout && c != record.ClassOther && c != record.ClassCancelled && k > 0 {
				server[c] = k
				n += k
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s failed server-side in %s (%s)", words.Plural(n, "request"), p.Name, words.ClassSummary(server)))
		}
		out = append(out, analysis.CloseLosses(p)...)
	}
	return out
}

// DeathReasons name each process that died of something the plan did not
// do (analysis.Deaths): its pid, role, generation and master, the signal
// nginx's log says it died of, and the evidence. A crash is a finding
// whatever was lost: a build whose workers crash rarely enough to lose
// nothing still crashes.
func DeathReasons(s *record.Scenario) []string {
	var out []string
	for _, d := range s.Deaths {
		who := fmt.Sprintf("%s %d", d.Role, d.PID)
		var of []string
		if d.Generation != "" {
			of = append(of, d.Generation)
		}
		if d.Master > 0 {
			of = append(of, fmt.Sprintf("master %d", d.Master))
		}
		if len(of) > 0 {
			who += " (" + strings.Join(of, ", ") + ")"
		}
		if d.Signal > 0 {
			out = append(out, fmt.Sprintf("%s died of signal %d (%s), which the plan did not send, between %s and %s: nginx logged %q",
				who, d.Signal, analysis.SignalName(d.Signal), words.FmtMs(d.FromMs), words.FmtMs(d.ToMs), d.Evidence))
			continue
		}
		out = append(out, fmt.Sprintf("%s died between %s and %s before any step retired it, of a signal the error log quoted in the record does not name: %s",
			who, words.FmtMs(d.FromMs), words.FmtMs(d.ToMs), d.Evidence))
	}
	return out
}

// crashSignals are the signals a process raises on itself when it
// crashes (a fault of its own code), never sent by the environment.
var crashSignals = map[int]bool{4: true, 5: true, 6: true, 7: true, 8: true, 11: true, 31: true} // ILL TRAP ABRT BUS FPE SEGV SYS

// Deaths are s's death reasons (DeathReasons) parted into crashes — a
// signal the process raised itself, a finding whatever else failed — and
// the others, which beside a failed premise may be the environment's.
func Deaths(s *record.Scenario) (crashes, others []string) {
	return splitCrashes(s, DeathReasons(s))
}

// splitCrashes parts the death reasons (DeathReasons, in s.Deaths' order)
// into crashes and the others.
func splitCrashes(s *record.Scenario, reasons []string) (crashes, others []string) {
	for i, d := range s.Deaths {
		if crashSignals[d.Signal] {
			crashes = append(crashes, reasons[i])
		} else {
			others = append(others, reasons[i])
		}
	}
	return crashes, others
}

// StepAsExpected tells a step that did what the scenario expects of it:
// verified, or failed where it is expected to fail.
func StepAsExpected(st record.Step) bool { return st.Verified != (st.Expected == record.ExpectFail) }
