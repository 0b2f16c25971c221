package analysis

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// The observer is healthy in a window (loadgen.ObserverRecord) when the
// load sent what it had scheduled at most ObserverMaxLateMs late, the Go
// runtime woke a sleeping goroutine at most ObserverMaxHiccupMs late, and
// the control probe — a responder of the harness's own on the host's
// 127.0.0.1, which neither nginx nor any fault touches — waited at most
// ObserverMaxProbeMs and missed no answer. Measured here on a machine whose
// two cores ran a load average of 11 (another harness's suite beside it),
// the worst window of 15 s at 500 req/s was 32, 46 and 32 ms: the limits
// are about twice that and a tenth of the default stall limit.
const (
	ObserverMaxLateMs   = 100.0
	ObserverMaxHiccupMs = 100.0
	ObserverMaxProbeMs  = 100.0
)

// NginxMaxLateMs is the most the heartbeat in nginx's container (it ticks
// every 20 ms, in nginx's cgroup) may run late in a window for nginx's side
// to count as healthy there: twice the harness side's limits, since the
// heartbeat competes for the CPU with nginx's own workers, which CFS may
// run ahead of it for a few ticks under load, and a fifth of the default
// stall limit. A container that was off the CPU that long left its accept
// queue unserved that long, and a connection dropped from a full queue
// waits for the client's SYN retransmit (1 s, then 3 s): a short
// starvation makes a long stall, so such a window anywhere in a stall's
// span makes the stall the machine's (ContainerLate). Measured in one
// upgrade at 500 req/s on two shared cores at a load average of 6–9: the
// worst window 122 ms late (docs/reports.md).
const NginxMaxLateMs = 200.0

// NginxMaxRunqMs and NginxBusyFraction tell when the machine held nginx's
// processes in a window (NginxHeld): one of them waited on a run queue for
// a CPU more than NginxMaxRunqMs in the window's 100 ms (summed over the
// heartbeat's ticks, the most-waiting process of each), while together
// they ran less than NginxBusyFraction of the CPU time their CPUs had in
// it — the CPUs were taken by other work, not by nginx's own. The
// heartbeat alone misses this: a sleeper woken by its timer is run ahead
// of busy processes, so it kept time while nginx's workers, runnable with
// an accept queue full of connections, waited their turn (measured beside
// a busy core: requests of 0.7–1.1 s for a second of both-sets, the
// heartbeat on time; docs/reports.md).
const (
	NginxMaxRunqMs    = 50.0
	NginxBusyFraction = 0.5
)

// NginxHeld tells whether the machine held nginx's processes in a window
// (NginxMaxRunqMs, NginxBusyFraction); false for a window without their
// reading (a record made before it, or no nginx process seen).
func NginxHeld(r *loadgen.ObserverRecord) bool {
	return r.NginxCPUs > 0 && r.NginxRunqMs > NginxMaxRunqMs && r.NginxCPUMs < NginxBusyFraction*float64(r.NginxCPUs)*(r.EndMs-r.StartMs)
}

func healthy(r *loadgen.ObserverRecord) bool {
	return r.LateMs <= ObserverMaxLateMs && r.HiccupMs <= ObserverMaxHiccupMs && r.ProbeMs <= ObserverMaxProbeMs && r.ProbeMissed == 0
}

// readObserver reads observer.jsonl into s.Observer. A record made before
// the observer (no plan in meta.json) gets a note and is judged as before;
// one whose plan names the file and lacks it, or has it unreadable, has a
// problem: its stalls cannot be judged.
func readObserver(dir string, s *record.Scenario, meta *record.Meta, problem, note func(string, ...any)) {
	if meta.Observer == nil {
		note("recorded before the observer's health was measured (no observer in %s): a stall above the limit is judged nginx's without it", record.MetaFile)
		return
	}
	name := meta.Observer.File
	if name == "" {
		name = loadgen.ObserverFile
	}
	// One record per window, merged: a supplement line adds to its window.
	byWindow := map[int64]*loadgen.ObserverRecord{}
	// The heartbeat's lines (nginx's side, appended at the end) are kept
	// apart: they say nothing of the harness's side, nor of its record's
	// extent.
	nginxByWindow := map[int64]*loadgen.ObserverRecord{}
	err := record.ReadJSONL(filepath.Join(dir, name), func(r *loadgen.ObserverRecord) {
		k := int64(math.Floor(r.StartMs/100 + 1e-9))
		if r.NginxTicks > 0 || r.NginxLateMs > 0 || r.NginxCPUs > 0 {
			m := nginxByWindow[k]
			if m == nil {
				m = &loadgen.ObserverRecord{StartMs: r.StartMs, EndMs: r.EndMs}
				nginxByWindow[k] = m
			}
			m.NginxLateMs, m.NginxTicks = max(m.NginxLateMs, r.NginxLateMs), m.NginxTicks+r.NginxTicks
			m.NginxRunqMs, m.NginxCPUMs, m.NginxCPUs = m.NginxRunqMs+r.NginxRunqMs, m.NginxCPUMs+r.NginxCPUMs, max(m.NginxCPUs, r.NginxCPUs)
			return
		}
		m := byWindow[k]
		if m == nil {
			c := *r
			c.Supplement = false
			byWindow[k] = &c
			return
		}
		m.LateMs, m.HiccupMs, m.ProbeMs = max(m.LateMs, r.LateMs), max(m.HiccupMs, r.HiccupMs), max(m.ProbeMs, r.ProbeMs)
		m.Hits, m.Probes, m.ProbeMissed = m.Hits+r.Hits, m.Probes+r.Probes, m.ProbeMissed+r.ProbeMissed
	})
	switch {
	case err == nil:
	case errors.Is(err, record.ErrMissing):
		problem("%s missing: the observer's health was not recorded, so no stall can be told from the machine's", name)
		return
	default:
		problem("%v: the observer's health is not wholly recorded", err)
	}
	if len(byWindow) == 0 && err == nil {
		problem("%s holds no window: the observer's health was not recorded, so no stall can be told from the machine's", name)
	}
	s.Observer = summariseObserver(byWindow)
	s.Observer.Heartbeat = readHeartbeat(dir, meta, nginxByWindow)
}

// readHeartbeat summarises nginx's side from the heartbeat's windows and
// heartbeat.json: nil for a record made before the heartbeat, Absent (why)
// when it did not run or could not be read back.
func readHeartbeat(dir string, meta *record.Meta, byWindow map[int64]*loadgen.ObserverRecord) *record.Heartbeat {
	if meta.Heartbeat == nil {
		return nil
	}
	if meta.Heartbeat.Absent != "" {
		return &record.Heartbeat{Absent: meta.Heartbeat.Absent, Late: []record.HeartbeatSpan{}}
	}
	var hr record.HeartbeatRead
	if err := record.ReadJSON(filepath.Join(dir, record.HeartbeatFile), &hr); err != nil {
		return &record.Heartbeat{Absent: fmt.Sprintf("%v", err), Late: []record.HeartbeatSpan{}}
	}
	switch {
	case hr.Absent != "":
		return &record.Heartbeat{Absent: hr.Absent, Late: []record.HeartbeatSpan{}}
	case hr.Error != "":
		return &record.Heartbeat{Absent: "its record could not be read back: " + hr.Error, Late: []record.HeartbeatSpan{}}
	}
	return summariseHeartbeat(byWindow)
}

// summariseHeartbeat folds the heartbeat's windows (those with a tick due
// or a lateness) into report.json's Heartbeat.
func summariseHeartbeat(byWindow map[int64]*loadgen.ObserverRecord) *record.Heartbeat {
	h := &record.Heartbeat{Late: []record.HeartbeatSpan{}}
	var ks []int64
	for k := range byWindow {
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		h.Absent = "its record holds no tick"
		return h
	}
	slices.Sort(ks)
	h.FromMs, h.ToMs = float64(ks[0])*100, float64(ks[len(ks)-1]+1)*100
	var cur *record.HeartbeatSpan
	var held *record.HeldSpan
	prev := ks[0] - 1
	measured := false
	for _, k := range ks {
		r := byWindow[k]
		h.Ticks += r.NginxTicks
		measured = measured || r.NginxCPUs > 0
		h.WorstLateMs = max(h.WorstLateMs, r.NginxLateMs)
		h.WorstRunqMs = max(h.WorstRunqMs, r.NginxRunqMs)
		isHeld := NginxHeld(r)
		if !isHeld || k != prev+1 {
			held = nil
		}
		if isHeld {
			if held == nil {
				h.Held = append(h.Held, record.HeldSpan{StartMs: float64(k) * 100, CPUs: r.NginxCPUs})
				held = &h.Held[len(h.Held)-1]
			}
			held.EndMs = float64(k+1) * 100
			held.RunqMs, held.CPUMs, held.CPUs = max(held.RunqMs, r.NginxRunqMs), max(held.CPUMs, r.NginxCPUMs), max(held.CPUs, r.NginxCPUs)
		}
		if r.NginxLateMs <= NginxMaxLateMs || k != prev+1 {
			cur = nil
		}
		prev = k
		if r.NginxLateMs <= NginxMaxLateMs {
			continue
		}
		if cur == nil {
			h.Late = append(h.Late, record.HeartbeatSpan{StartMs: float64(k) * 100})
			cur = &h.Late[len(h.Late)-1]
		}
		cur.EndMs = float64(k+1) * 100
		cur.LateMs = max(cur.LateMs, r.NginxLateMs)
	}
	h.RunqUnmeasured = h.Ticks > 0 && !measured
	return h
}

// summariseObserver folds the windows into the report's summary.
func summariseObserver(byWindow map[int64]*loadgen.ObserverRecord) *record.Observer {
	o := &record.Observer{Blind: []record.ObserverSpan{}}
	if len(byWindow) == 0 {
		return o
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for k := range byWindow {
		lo, hi = min(lo, k), max(hi, k)
	}
	o.FromMs, o.ToMs = float64(lo)*100, float64(hi+1)*100
	var cur *record.ObserverSpan
	for k := lo; k <= hi; k++ {
		r := byWindow[k]
		if r == nil {
			// A hole in the grid: nothing says the observer could see.
			r = &loadgen.ObserverRecord{StartMs: float64(k) * 100, EndMs: float64(k+1) * 100, ProbeMissed: 1}
		} else {
			o.Windows++
		}
		o.WorstLateMs, o.WorstHiccupMs, o.WorstProbeMs = max(o.WorstLateMs, r.LateMs), max(o.WorstHiccupMs, r.HiccupMs), max(o.WorstProbeMs, r.ProbeMs)
		o.ProbeMissed += r.ProbeMissed
		if healthy(r) {
			cur = nil
			continue
		}
		o.Unhealthy++
		if cur == nil {
			o.Blind = append(o.Blind, record.ObserverSpan{StartMs: r.StartMs})
			cur = &o.Blind[len(o.Blind)-1]
		}
		cur.EndMs = float64(k+1) * 100
		cur.LateMs, cur.HiccupMs, cur.ProbeMs = max(cur.LateMs, r.LateMs), max(cur.HiccupMs, r.HiccupMs), max(cur.ProbeMs, r.ProbeMs)
		cur.ProbeMissed += r.ProbeMissed
	}
	return o
}

// ObserverSaw judges a stalled span [from, to] against the observer: seen
// is the part of it in windows where the observer was healthy (the record
// covers it and no measure was past its limit); evidence, when the rest is
// not empty, says what the observer saw there in words.
func ObserverSaw(o *record.Observer, from, to float64) (seenMs float64, evidence string) {
	span := to - from
	if span <= 0 {
		return 0, ""
	}
	unseen := 0.0
	// Outside the record: nothing says the observer could see.
	uncovered := math.Max(0, math.Min(to, o.FromMs)-from) + math.Max(0, to-math.Max(from, o.ToMs))
	if o.ToMs <= o.FromMs {
		uncovered = span
	}
	unseen += math.Min(span, uncovered)
	var worst record.ObserverSpan
	for _, b := range o.Blind {
		ov := math.Min(to, b.EndMs) - math.Max(from, b.StartMs)
		if ov <= 0 {
			continue
		}
		unseen += ov
		worst.LateMs, worst.HiccupMs, worst.ProbeMs = max(worst.LateMs, b.LateMs), max(worst.HiccupMs, b.HiccupMs), max(worst.ProbeMs, b.ProbeMs)
		worst.ProbeMissed += b.ProbeMissed
	}
	unseen = math.Min(unseen, span)
	if unseen == 0 {
		return span, ""
	}
	var saw []string
	if worst.LateMs > ObserverMaxLateMs {
		saw = append(saw, fmt.Sprintf("the load ran %s late", words.FmtMs(worst.LateMs)))
	}
	if worst.HiccupMs > ObserverMaxHiccupMs {
		saw = append(saw, fmt.Sprintf("the Go runtime woke %s late", words.FmtMs(worst.HiccupMs)))
	}
	if worst.ProbeMs > ObserverMaxProbeMs {
		saw = append(saw, fmt.Sprintf("the control probe waited %s", words.FmtMs(worst.ProbeMs)))
	}
	if worst.ProbeMissed > 0 {
		saw = append(saw, fmt.Sprintf("%s went unanswered", words.Plural(worst.ProbeMissed, "control probe")))
	}
	if uncovered > 0 {
		saw = append(saw, fmt.Sprintf("the observer's record has nothing for %s of it", words.FmtMs(math.Min(span, uncovered))))
	}
	return span - unseen, words.JoinAnd(saw)
}

// observerStallReason judges one stall above the limit: "" when the
// observer saw more than the limit of it healthy (nginx's stall, a fail),
// else why it is the machine's (an error).
func observerStallReason(s *record.Scenario, p record.Phase, what string, ms, from float64) string {
	if s.Observer == nil {
		return ""
	}
	seen, evidence := ObserverSaw(s.Observer, from, from+ms)
	if seen > s.MaxStallMs {
		return ""
	}
	return fmt.Sprintf("%s of %s in %s (%s–%s), but %s: the machine, not nginx — the observer was healthy for only %s of it, not above the limit of %s",
		what, words.FmtMs(ms), p.Name, words.FmtMs(from), words.FmtMs(from+ms), evidence, words.FmtMs(seen), words.FmtMs(s.MaxStallMs))
}

// BlindStall says why a phase's stall above the limit is the machine's:
// each of its long request and its long gap that is above the limit was
// seen healthy for no more than the limit on the harness's side, or
// overlaps a window in which nginx's container ran late outside a fault
// that stalls it (ContainerLate). Nil when either was seen by both sides
// (nginx's stall), or without an observer's record (judged as before).
func BlindStall(s *record.Scenario, p record.Phase) []string {
	if s.Observer == nil {
		return nil
	}
	var why []string
	for _, c := range []struct {
		what      string
		ms, start float64
	}{{"the longest request", p.MaxMs, p.MaxStartMs}, {"the longest gap without a response", p.GapMs, p.GapStartMs}} {
		if c.ms <= s.MaxStallMs {
			continue
		}
		r := observerStallReason(s, p, c.what, c.ms, c.start)
		if r == "" {
			r = containerStallReason(s, p, c.what, c.ms, c.start)
		}
		if r == "" {
			return nil
		}
		why = append(why, r)
	}
	return why
}

// faultMarginMs widens a fault's window by one observer window on each
// side: its record stamps the injection once the injection returned and the
// heal once the heal returned, and the heartbeat's lateness is on the
// 100 ms grid.
const faultMarginMs = 100.0

// stalledByFault tells whether the window [start, end) falls in the window
// of a fault that stalls the whole container (record.FaultRecord's
// StallsContainer): the heartbeat's lateness there is the fault's doing.
func stalledByFault(s *record.Scenario, start, end float64) (string, bool) {
	for _, f := range s.Faults {
		// A fault that was never injected stalled nothing; one whose heal
		// failed was injected.
		if !f.StallsContainer || f.Error != "" && !strings.HasPrefix(f.Error, "heal") {
			continue
		}
		to := math.Inf(1) // never healed: to the end of the run
		if f.HealedMs != nil {
			to = *f.HealedMs
		}
		if start < to+faultMarginMs && end > f.InjectedMs-faultMarginMs {
			return f.Name, true
		}
	}
	return "", false
}

// ContainerLate says in words where, in the stalled span [from, to], the
// heartbeat in nginx's container ran later than NginxMaxLateMs, or the
// machine held nginx's processes (NginxHeld), outside the window of a
// fault that stalls the container: "" when neither happened, or without a
// heartbeat. Any such window in the span makes the stall the machine's,
// not only its own length of it (NginxMaxLateMs: a full accept queue
// turns a short starvation into a SYN retransmit's wait).
func ContainerLate(s *record.Scenario, from, to float64) string {
	h := heartbeatOf(s)
	if h == nil || h.Absent != "" || to <= from {
		return ""
	}
	// inStall is the part of [start, end) in the stall and outside every
	// such fault's window, window by window (ok false: none).
	inStall := func(start, end float64) (lo, hi float64, ok bool) {
		lo, hi = math.Inf(1), math.Inf(-1)
		for w := start; w < end; w += 100 {
			if w+100 <= from || w >= to {
				continue
			}
			if _, f := stalledByFault(s, w, w+100); f {
				continue
			}
			lo, hi, ok = math.Min(lo, w), math.Max(hi, w+100), true
		}
		return lo, hi, ok
	}
	var saw []string
	var late []string
	for _, sp := range h.Late {
		if lo, hi, ok := inStall(sp.StartMs, sp.EndMs); ok {
			late = append(late, fmt.Sprintf("%s late in %s", words.FmtMs(sp.LateMs), fmtSpanS(lo, hi)))
		}
	}
	if len(late) > 0 {
		saw = append(saw, "nginx's container ran "+words.JoinAnd(late))
	}
	for _, sp := range h.Held {
		if lo, hi, ok := inStall(sp.StartMs, sp.EndMs); ok {
			saw = append(saw, "nginx's processes "+HeldWords(sp, " in "+fmtSpanS(lo, hi)))
		}
	}
	return words.JoinAnd(saw)
}

func fmtSpanS(from, to float64) string { return fmt.Sprintf("%.1f–%.1f s", from/1000, to/1000) }

func heartbeatOf(s *record.Scenario) *record.Heartbeat {
	if s.Observer == nil {
		return nil
	}
	return s.Observer.Heartbeat
}

// containerStallReason judges one stall above the limit on nginx's side:
// "" when its container's heartbeat kept time across the span (or there is
// none), else why the stall is the machine's (an error).
func containerStallReason(s *record.Scenario, p record.Phase, what string, ms, from float64) string {
	evidence := ContainerLate(s, from, from+ms)
	if evidence == "" {
		return ""
	}
	return fmt.Sprintf("%s of %s in %s (%s–%s), but %s: the machine, not nginx — nginx's side was held while the client waited (its heartbeat more than %s late, or a process of it waiting more than %s a window for a CPU while they ran under %s of their CPUs)",
		what, words.FmtMs(ms), p.Name, words.FmtMs(from), words.FmtMs(from+ms), evidence, words.FmtMs(NginxMaxLateMs), words.FmtMs(NginxMaxRunqMs), fmtPercent(NginxBusyFraction))
}

// HeartbeatNote says, for a stall judged nginx's, what nginx's side could
// not show: no heartbeat in the container (a record made before it, or
// why it was absent), a stalled span [from, to] partly outside what the
// heartbeat covers, or a heartbeat that could not read nginx's processes'
// wait for a CPU. "" when the heartbeat covered the span, and for a
// record made before the observer (which has its own note).
func HeartbeatNote(s *record.Scenario, from, to float64) string {
	if s.Observer == nil {
		return ""
	}
	h := s.Observer.Heartbeat
	switch {
	case h == nil:
		return "nginx's container had no heartbeat (recorded before it): judged on the harness's side alone"
	case h.Absent != "":
		return fmt.Sprintf("nginx's container had no heartbeat (%s): judged on the harness's side alone", h.Absent)
	case from < h.FromMs || to > h.ToMs:
		return fmt.Sprintf("nginx's container's heartbeat covers %s, not all of the stall: judged on the harness's side alone outside it", fmtSpanS(h.FromMs, h.ToMs))
	case h.RunqUnmeasured:
		return "nginx's processes' wait for a CPU was not measured (no /proc/PID/schedstat in nginx's container): judged on the heartbeat's lateness alone"
	}
	return ""
}

// HeldWords says what nginx's processes did in a held span: "waited up
// to … a window for a CPU<where>, running at most … of the … their N CPUs
// had" (where: a place in the span's words, or "").
func HeldWords(sp record.HeldSpan, where string) string {
	return fmt.Sprintf("waited up to %s a window for a CPU%s, running at most %s of the %s their %s had",
		words.FmtMs(sp.RunqMs), where, words.FmtMs(sp.CPUMs), words.FmtMs(float64(sp.CPUs)*100), words.Plural(sp.CPUs, "CPU"))
}

func fmtPercent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
