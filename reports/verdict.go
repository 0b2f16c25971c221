package reports

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// MinRateFraction is the share of the configured rate every phase of at
// least MinRatePhaseMs must achieve for a verdict to count: a load that
// stalled through a transition proves nothing about it.
const (
	MinRateFraction = 0.8
	MinRatePhaseMs  = 1000
)

// Judge gives a scenario's verdict and its reasons, from its record alone
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
func Judge(s *Scenario) (verdict string, reasons []string) {
	known := judgeKnownLosses(s)
	s.KnownLossSeen = known.seen
	if s.Strict {
		known.explained = nil
	}
	premises := premiseReasons(s)
	if len(premises) > 0 {
		if lost := serverSideLosses(s, known.explained); len(lost) > 0 {
			for _, p := range premises {
				lost = append(lost, "also: "+p)
			}
			return VerdictFail, lost
		}
		return VerdictError, premises
	}
	var fails, blind []string
	for _, st := range s.Steps {
		switch {
		case st.Expected == ExpectFail && st.Verified:
			fails = append(fails, fmt.Sprintf("step %s verified but the scenario expects it to fail", stepLabel(st)))
		case st.Expected != ExpectFail && !st.Verified:
			// Not verified, and nginx's error log says why: the path itself
			// failed (a finding about nginx), not the measurement.
			fails = append(fails, fmt.Sprintf("step %s failed: nginx logged %s", stepLabel(st), nginxCause(st)))
		}
	}
	if s.Final != nil {
		for _, e := range s.Final.CheckErrors {
			fails = append(fails, "final state: "+e)
		}
	}
	switch s.Expect {
	case ExpectZeroDrops:
		fails = append(fails, dropReasons(s, known.explained)...)
		if len(fails) > 0 {
			fails = append(fails, known.notKnown...)
		}
		if s.Strict {
			fails = append(fails, knownLossReasons(known.seen)...)
		}
		var stalls []string
		stalls, blind = stallReasons(s)
		fails = append(fails, stalls...)
	case ExpectDrops:
		fails = append(fails, controlReasons(s)...)
	}
	if len(fails) > 0 {
		for _, b := range blind {
			fails = append(fails, "also: "+b)
		}
		return VerdictFail, fails
	}
	if len(blind) > 0 {
		return VerdictError, blind
	}
	return VerdictPass, []string{}
}

// Tolerances of the load-coverage premises: the load may start this much
// of its steady window late, and end this much of the last audit early.
const coverageSlack = 0.1

func premiseReasons(s *Scenario) []string {
	if s.Error != "" {
		// What is missing from its record follows from it.
		return []string{"could not run: " + s.Error}
	}
	out := append([]string(nil), s.Problems...)
	switch s.Expect {
	case ExpectZeroDrops:
	case ExpectDrops:
		if s.ExpectDrops == nil {
			out = append(out, "expects drops but does not say where and what (meta.json expect_drops is empty)")
		}
	case "":
		if len(s.Problems) == 0 { // a missing meta.json says it already
			out = append(out, "no expectation (meta.json expect is empty)")
		}
	default:
		out = append(out, fmt.Sprintf("unknown expectation %q (want %q or %q)", s.Expect, ExpectZeroDrops, ExpectDrops))
	}
	if s.Requests.Total == 0 {
		out = append(out, "no results: the load sent no request")
	}
	for _, st := range s.Steps {
		switch {
		case st.Expected != ExpectFail && !st.Verified && nginxCause(st) == "":
			r := fmt.Sprintf("step %s not verified", stepLabel(st))
			if st.Error != "" {
				r += ": " + st.Error
			}
			out = append(out, r)
		case st.Expected == ExpectFail && !st.Verified:
			if r := causeReason(st); r != "" {
				out = append(out, r)
			}
		}
	}
	if s.Slow.Cancelled > 0 {
		out = append(out, fmt.Sprintf("%s cancelled by the harness before it ended: nothing can be said of it",
			plural(s.Slow.Cancelled, "long download")))
	}
	if s.Requests.Total > 0 {
		out = append(out, coverageReasons(s)...)
	}
	return append(out, drainReasons(s)...)
}

// nginxCause is the error-log line that explains a failed step: the first
// [emerg], [alert] or [crit] line since it was sent, or "".
func nginxCause(st Step) string {
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
func causeReason(st Step) string {
	if st.ExpectedCause == "" {
		return fmt.Sprintf("step %s failed as expected, but the scenario names no cause to check it against", stepLabel(st))
	}
	re, err := regexp.Compile(st.ExpectedCause)
	if err != nil {
		return fmt.Sprintf("step %s: expected cause %q is not a regular expression: %v", stepLabel(st), st.ExpectedCause, err)
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
		stepLabel(st), st.ExpectedCause, got)
}

// coverageReasons checks that the load covered the run: it started a
// steady window before the first step, went on past the last step's
// verification and audit, kept its rate in every phase of a second or more,
// and never fell silent for a window.
func coverageReasons(s *Scenario) []string {
	var out []string
	for _, st := range s.Steps {
		if st.SentMs > s.LoadEndMs {
			out = append(out, fmt.Sprintf("the load stopped at %s, before step %s was sent at %s",
				fmtMs(s.LoadEndMs), st.Name, fmtMs(st.SentMs)))
		}
	}
	if len(s.Steps) > 0 {
		first := s.Steps[0]
		if lead := first.SentMs - s.LoadStartMs; lead < s.SteadyMs*(1-coverageSlack) || lead < 0 {
			out = append(out, fmt.Sprintf("the load started %s before step %s, short of its steady window of %s",
				fmtMs(lead), first.Name, fmtMs(s.SteadyMs)))
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
				fmtMs(s.LoadEndMs), last.Name, fmtMs(done+audit)))
		}
	}
	if s.Load.Rate > 0 {
		want := float64(s.Load.Rate)
		for _, p := range s.Phases {
			if p.LoadMs >= MinRatePhaseMs && p.Rate < MinRateFraction*want {
				out = append(out, fmt.Sprintf("the load did not keep its rate in %s: %.0f req/s over %s, below %.0f%% of %d req/s",
					p.Name, p.Rate, fmtMs(p.LoadMs), MinRateFraction*100, s.Load.Rate))
			}
		}
	}
	if s.SilentCount > 0 {
		var where []string
		for _, w := range s.Silent {
			where = append(where, fmt.Sprintf("%s–%s in %s", fmtMs(w.StartMs), fmtMs(w.EndMs), w.Phase))
		}
		more := ""
		if s.SilentCount > len(s.Silent) {
			more = fmt.Sprintf(" and %d more", s.SilentCount-len(s.Silent))
		}
		out = append(out, fmt.Sprintf("the load sent nothing in %s while it should have: %s%s",
			plural(s.SilentCount, "window"), strings.Join(where, ", "), more))
	}
	return out
}

// stallReasons fails a graceful path on which a client waited longer than
// the stall limit while the observer could see (nginx's stall); a stall the
// observer saw no more than the limit of is blind: the machine's, an error
// (observerStallReason).
func stallReasons(s *Scenario) (fails, blind []string) {
	if s.MaxStallMs <= 0 {
		return nil, nil
	}
	for _, p := range s.Phases {
		if p.StallMs <= s.MaxStallMs {
			continue
		}
		if why := blindStall(s, p); len(why) > 0 {
			blind = append(blind, why...)
			continue
		}
		fails = append(fails, fmt.Sprintf("stalled %s in %s (longest request %s, longest gap without a response %s), above the limit of %s",
			fmtMs(p.StallMs), p.Name, fmtMs(p.MaxMs), fmtMs(p.GapMs), fmtMs(s.MaxStallMs)))
	}
	return fails, blind
}

// controlReasons checks a positive control: drops in the phase its causing
// step opened, of server-side classes only, none anywhere else, and what
// the step's kind of drop promises (downloads kept, outage bounded, the
// drops being the connections that were held).
func controlReasons(s *Scenario) []string {
	spec := s.ExpectDrops
	var out []string
	var in *Phase
	var within []*Phase // the phases drops may fall in
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
		if p.Dropped > 0 {
			out = append(out, fmt.Sprintf("%d dropped in %s, outside %s, the phase the causing step opened (%s)",
				p.Dropped, p.Name, spec.Phase, strings.Join(phaseDropWords(*p), ", ")))
		}
	}
	if in == nil {
		return append(out, fmt.Sprintf("no phase %s: the step that must cause the drops never ran", spec.Phase))
	}
	dropped := 0
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
		for _, c := range sortedClasses(p.ByClass) {
			if c != ClassCancelled && !allowed[c] {
				out = append(out, fmt.Sprintf("%d failed in %s with %s, not what the causing step does (want %s)",
					p.ByClass[c], p.Name, c, strings.Join(spec.Classes, ", ")))
			}
		}
	}
	if spec.MaxOutageMs > 0 && in.OutageMs > spec.MaxOutageMs {
		out = append(out, fmt.Sprintf("requests failed for %s in a row in %s, above the bound of %s",
			fmtMs(in.OutageMs), spec.Phase, fmtMs(spec.MaxOutageMs)))
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
func witnessControlReasons(s *Scenario, within []*Phase) []string {
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
	for _, c := range sortedClasses(wrong) {
		out = append(out, fmt.Sprintf("%d drops in %s reconciled as %s with nginx's log, not what the causing step does (want %s)",
			wrong[c], spec.Phase, c, strings.Join(spec.Witness, ", ")))
	}
	for _, c := range sortedClasses(stranger) {
		out = append(out, fmt.Sprintf("%d drops in %s %s, not a process the causing step signalled", stranger[c], spec.Phase, c))
	}
	return out
}

func phaseDropWords(p Phase) []string {
	var w []string
	if p.Failed > 0 {
		w = append(w, fmt.Sprintf("%s: %s", plural(p.Failed, "failed request"), classSummary(p.ByClass)))
	}
	if p.Retried > 0 {
		w = append(w, plural(p.Retried, "retried request"))
	}
	if p.SlowCut > 0 {
		w = append(w, plural(p.SlowCut, "cut download"))
	}
	return append(w, trafficDropWords(p)...)
}

// serverSideLosses are the drop reasons that stand whatever premise failed,
// and whatever error.txt says (a run that stopped half-way still saw what
// it saw): in a zero-drops scenario, what the server did to the client —
// refused, reset or closed connections, HTTP/2 streams reset and GOAWAYs,
// error statuses and wrong bodies, closes under a written request, cut
// downloads, WebSockets ended without a close, failed uploads, unsafe
// HTTP/2 replays. Timeouts and unclassified errors are left out: a starved
// client produces them on its own.
func serverSideLosses(s *Scenario, known map[string]bool) []string {
	if s.Expect != ExpectZeroDrops {
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
			if c != ClassTimeout && c != ClassOther && c != ClassCancelled && k > 0 {
				server[c] = k
				n += k
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s failed server-side in %s (%s)", plural(n, "request"), p.Name, classSummary(server)))
		}
		out = append(out, closeLosses(p)...)
	}
	return out
}

// dropReasons says what was lost, phase by phase, but for the phases whose
// every loss is a known one.
func dropReasons(s *Scenario, known map[string]bool) []string {
	out := []string{}
	for _, p := range s.Phases {
		if known[p.Name] {
			continue
		}
		if p.Failed > 0 {
			out = append(out, fmt.Sprintf("%s failed in %s (%s)", plural(p.Failed, "request"), p.Name, classSummary(p.ByClass)))
		}
		out = append(out, closeLosses(p)...)
	}
	return out
}

// closeLosses says what a phase lost besides failed requests: requests
// replayed after a server close, cut downloads, the other kinds' drops.
func closeLosses(p Phase) []string {
	var out []string
	if p.Retried > 0 {
		out = append(out, fmt.Sprintf("%s retried by the client after the server closed the connection under them in %s",
			plural(p.Retried, "request"), p.Name))
	}
	if p.SlowCut > 0 {
		out = append(out, fmt.Sprintf("%s cut in %s", plural(p.SlowCut, "long download"), p.Name))
	}
	for _, w := range trafficDropWords(p) {
		out = append(out, w+" in "+p.Name)
	}
	return out
}

// classSummary writes "eof: 3, reset: 1", the largest first; client
// cancellations are not failures and are left out.
func classSummary(byClass map[string]int) string {
	var parts []string
	for _, c := range sortedClasses(byClass) {
		if c != ClassCancelled {
			parts = append(parts, fmt.Sprintf("%s: %d", c, byClass[c]))
		}
	}
	return strings.Join(parts, ", ")
}

// sortedClasses orders classes by count, the largest first.
func sortedClasses(byClass map[string]int) []string {
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		if byClass[classes[i]] != byClass[classes[j]] {
			return byClass[classes[i]] > byClass[classes[j]]
		}
		return classes[i] < classes[j]
	})
	return classes
}

func stepLabel(st Step) string {
	switch {
	case st.Signal != "" && st.PID != 0:
		return fmt.Sprintf("%s (%s to %d)", st.Name, st.Signal, st.PID)
	case st.Signal != "":
		return fmt.Sprintf("%s (%s)", st.Name, st.Signal)
	}
	return st.Name
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtMs writes a run-clock offset for people: "2001 ms", "12.5 s".
func fmtMs(ms float64) string {
	if ms >= 10000 || ms <= -10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
