package analysis

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// exitedOnSignal is nginx's line for a child that died of a signal, logged
// by its parent (ngx_process_get_status): "[alert] 44#44: worker process
// 239 exited on signal 11 (core dumped)". The process name is "worker
// process", "new binary process", "cache manager process"…
var exitedOnSignal = regexp.MustCompile(`\[(?:alert|crit|error|emerg)\] (\d+)#\d+: (?:\*\d+ )?([a-z ]+?) (\d+) exited on signal (\d+)`)

// faultSignal is what a fault's outcome says it sent and to whom: "KILL to
// worker 155 of the new master 154" (the first pid is the one signalled).
var faultSignal = regexp.MustCompile(`\b(KILL|TERM|QUIT|INT|SEGV|ABRT) to [^0-9]*(\d+)`)

// signalNumbers are the Linux numbers of the signals a step or fault names.
var signalNumbers = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "TERM": 15, "WINCH": 28}

// SignalName is a signal's name for people ("SIGSEGV"), or its number.
func SignalName(n int) string {
	for name, k := range signalNumbers {
		if k == n {
			return "SIG" + name
		}
	}
	return "signal " + strconv.Itoa(n)
}

// ReadSamples reads processes.jsonl, with final.json's table as the last
// sample: who was master and worker of which binary, moment by moment.
// A record without processes.jsonl (made before it) gives what final.json has.
func ReadSamples(dir string, s *record.Scenario, problem func(string, ...any)) []record.ProcessSample {
	samples, _ := readSamples(dir, s, problem)
	return samples
}

// readSamples is ReadSamples, and whether processes.jsonl is missing.
func readSamples(dir string, s *record.Scenario, problem func(string, ...any)) (samples []record.ProcessSample, missing bool) {
	// An empty table is one the runner never writes (a snapshot that
	// failed): it says nothing of who was alive.
	keep := func(p *record.ProcessSample) {
		if len(p.Procs) > 0 {
			samples = append(samples, *p)
		}
	}
	switch err := record.ReadJSONL(filepath.Join(dir, record.ProcessesFile), keep); {
	case errors.Is(err, record.ErrMissing):
		missing = true
	case err != nil:
		problem("%v", err)
	}
	if s.Final != nil && len(s.Final.Processes) > 0 {
		samples = append(samples, record.ProcessSample{Ms: runEnd(s), At: "final", Procs: s.Final.Processes})
	}
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].Ms < samples[j].Ms })
	return samples, missing
}

// runEnd is the last moment the record knows of: the last response or
// the last step's end.
func runEnd(s *record.Scenario) float64 {
	end := s.EndMs
	for _, st := range s.Steps {
		end = max(end, st.VerifiedMs, st.SentMs)
	}
	return end
}

// planned is what the steps and faults of a run did to processes on
// purpose: who they signalled, with what, when.
type planned struct {
	steps  []record.Step
	faults []faultHit
	endMs  float64
}

type faultHit struct {
	name   string
	signal string
	pid    int
	ms     float64
}

func newPlanned(s *record.Scenario) planned {
	p := planned{steps: s.Steps, endMs: runEnd(s)}
	for _, f := range s.Faults {
		for _, m := range faultSignal.FindAllStringSubmatch(f.Outcome, -1) {
			pid, _ := strconv.Atoi(m[2])
			p.faults = append(p.faults, faultHit{name: f.Name, signal: m[1], pid: pid, ms: f.InjectedMs})
		}
	}
	return p
}

// sentSignal tells whether a step or a fault sent signal (by number) to
// pid, at or before ms.
func (p planned) sentSignal(pid, signal int, ms float64) bool {
	for _, st := range p.steps {
		if st.SentMs <= ms && signalNumbers[st.Signal] == signal && signal != 0 && containsPID(st, pid) {
			return true
		}
	}
	for _, f := range p.faults {
		if f.ms <= ms && f.pid == pid && signalNumbers[f.signal] == signal {
			return true
		}
	}
	return false
}

func containsPID(st record.Step, pid int) bool {
	if st.PID == pid {
		return true
	}
	for _, q := range st.PIDs {
		if q == pid {
			return true
		}
	}
	return false
}

// retires tells whether the plan explains proc p's being gone at goneMs,
// having been seen last at lastMs and first at firstMs: a step that stops
// it (QUIT, TERM, INT or KILL to it; WINCH, QUIT, TERM, INT or HUP to the
// master of a worker it already had), a fault that killed it, a step that
// acts without a signal (a script, systemctl, a wait: what it does to
// processes is not recorded) running between the two samples, or a USR2
// that failed, whose new master never came up.
func (p planned) retires(proc record.FinalProcess, firstMs, lastMs, goneMs float64) bool {
	worker := proc.Role == "worker" || proc.Role == "worker-shutting-down"
	for _, st := range p.steps {
		// The table "before STEP" is stamped with the step's sending and
		// taken before it: a step sent at goneMs did nothing yet.
		if st.SentMs >= goneMs {
			continue
		}
		end := st.VerifiedMs
		if !st.Verified {
			end = math.Inf(1)
		}
		switch {
		case st.Signal == "":
			if end > lastMs {
				return true
			}
		case st.Signal == "USR2" && !st.Verified && firstMs >= st.SentMs:
			return true
		case containsPID(st, proc.PID) && (st.Signal == "QUIT" || st.Signal == "TERM" || st.Signal == "INT" || st.Signal == "KILL"):
			return true
		case worker && containsPID(st, proc.PPID) && firstMs <= st.SentMs &&
			(st.Signal == "WINCH" || st.Signal == "QUIT" || st.Signal == "TERM" || st.Signal == "INT" || st.Signal == "HUP"):
			return true
		}
	}
	for _, f := range p.faults {
		if f.pid == proc.PID && f.ms <= goneMs {
			return true
		}
	}
	return false
}

// logWindow is where on the run's clock a step's or a fault's quoted
// error-log lines were written: from the signal (or injection) to the
// moment they were read.
type logWindow struct {
	from, to float64
	lines    []string
	// failedUSR2: the window of a USR2 that did not verify, in which a
	// new binary that could not start may die (broken-build).
	failedUSR2 bool
}

func (p planned) logWindows(faults []record.FaultRecord) []logWindow {
	var out []logWindow
	for i, st := range p.steps {
		to := st.VerifiedMs
		if !st.Verified {
			to = p.endMs
			if i+1 < len(p.steps) {
				to = p.steps[i+1].SentMs
			}
		}
		out = append(out, logWindow{from: st.SentMs, to: max(to, st.SentMs), lines: st.LogLines, failedUSR2: st.Signal == "USR2" && !st.Verified})
	}
	for _, f := range faults {
		to := p.endMs
		if f.HealedMs != nil {
			to = *f.HealedMs
		}
		out = append(out, logWindow{from: f.InjectedMs, to: max(to, f.InjectedMs), lines: f.LogLines})
	}
	return out
}

// sampleLagMs is how much earlier than its stamp a process table may have
// been read: a "before STEP" table bears the moment the step was sent, and
// is read by an exec just before (0.1–0.3 s here).
const sampleLagMs = 500

// Deaths are the nginx processes the record shows dying of something the
// plan did not do: nginx's error log (as the steps and faults quote it)
// saying one exited on a signal no step or fault sent it, and a master or
// worker gone from one process table to the next with no step or fault
// that retires it. Graceful exits (after WINCH, QUIT, HUP, TERM) and what
// a KILL step or a killing fault took, a new binary that dies as its USR2
// fails are the plan's (or the step's failure).
func Deaths(s *record.Scenario, samples []record.ProcessSample, gens *Generations, errLog ErrorLog) []record.Death {
	p := newPlanned(s)
	byPID := map[int]int{}
	var out []record.Death

	// Every pid's first and last sighting, to bound a death in time.
	firstSeen, lastSeen, goneAt := map[int]float64{}, map[int]float64{}, map[int]float64{}
	for _, smp := range samples {
		for _, q := range smp.Procs {
			if _, ok := firstSeen[q.PID]; !ok {
				firstSeen[q.PID] = smp.Ms
			}
			lastSeen[q.PID] = smp.Ms
		}
	}
	for i := 1; i < len(samples); i++ {
		alive := map[int]bool{}
		for _, q := range samples[i].Procs {
			alive[q.PID] = true
		}
		for _, q := range samples[i-1].Procs {
			if !alive[q.PID] {
				if _, ok := goneAt[q.PID]; !ok {
					goneAt[q.PID] = samples[i].Ms
				}
			}
		}
	}

	whole := errLog.windows(p.endMs)
	for i := range whole {
		// A line of the whole log within a USR2 that failed may be its
		// new binary's end, as the step's own lines would.
		for _, st := range p.steps {
			end := p.endMs
			if st.Verified {
				end = st.VerifiedMs
			}
			if st.Signal == "USR2" && !st.Verified && st.SentMs <= whole[i].to && end >= whole[i].from {
				whole[i].failedUSR2 = true
			}
		}
	}
	// The whole log first: a line's own timestamp places a death within a
	// second; a step quotes the lines written from its first read of the
	// log, which is taken before the step is sent (by an exec's time), so
	// a worker that died just before the step would be placed inside it.
	for _, w := range append(whole, p.logWindows(s.Faults)...) {
		for _, l := range w.lines {
			m := exitedOnSignal.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			parent, _ := strconv.Atoi(m[1])
			pid, _ := strconv.Atoi(m[3])
			sig, _ := strconv.Atoi(m[4])
			if _, seen := byPID[pid]; seen || p.sentSignal(pid, sig, w.to) {
				continue
			}
			if w.failedUSR2 && m[2] == "new binary process" {
				continue // a new binary that could not start: the step's failure says so
			}
			d := record.Death{PID: pid, Role: m[2], Master: parent, Signal: sig, FromMs: w.from, ToMs: w.to, Evidence: l}
			// A table bears its step's moment, taken up to an exec
			// before it: seen alive in it bounds the death that much less.
			if last, ok := lastSeen[pid]; ok && last-sampleLagMs > d.FromMs && last <= d.ToMs {
				d.FromMs = last - sampleLagMs
			}
			if gone, ok := goneAt[pid]; ok && gone < d.ToMs && gone >= d.FromMs {
				d.ToMs = gone
			}
			if gens != nil {
				if g, _ := gens.Of(pid, d.FromMs); g != "unknown" {
					d.Generation = g
				} else {
					d.Generation = gens.OfMaster(parent, d.FromMs)
				}
			}
			byPID[pid] = len(out)
			out = append(out, d)
		}
	}

	for i := 1; i < len(samples); i++ {
		prev, cur := samples[i-1], samples[i]
		alive := map[int]bool{}
		for _, q := range cur.Procs {
			alive[q.PID] = true
		}
		for _, q := range prev.Procs {
			if alive[q.PID] || q.Role != "master" && q.Role != "worker" && q.Role != "worker-shutting-down" {
				continue
			}
			if _, said := byPID[q.PID]; said {
				continue
			}
			if p.retires(q, firstSeen[q.PID], prev.Ms, cur.Ms) {
				continue
			}
			d := record.Death{PID: q.PID, Role: q.Role, FromMs: prev.Ms, ToMs: cur.Ms,
				Evidence: fmt.Sprintf("in %s at %s (%s), gone from it at %s (%s), and no step or fault retired it",
					record.ProcessesFile, words.FmtMs(prev.Ms), prev.At, words.FmtMs(cur.Ms), cur.At)}
			if q.Role != "master" {
				d.Master = q.PPID
			}
			if gens != nil {
				if g, _ := gens.Of(q.PID, prev.Ms); g != "unknown" {
					d.Generation = g
				} else if q.Role == "master" {
					d.Generation = gens.OfMaster(q.PID, prev.Ms)
				}
			}
			byPID[q.PID] = len(out)
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FromMs < out[j].FromMs })
	return out
}

// ErrorLog is the error log's failure lines the run kept whole
// (error-log.txt), and the run's clock, to place each line by nginx's own
// timestamp. The zero value: none kept.
type ErrorLog struct {
	Lines []string
	Start time.Time
}

// nginxTime is an error-log line's timestamp (nginx writes local time, UTC
// in the harness's containers, to the second).
var nginxTime = regexp.MustCompile(`^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) `)

// windows places each line on the run's clock: in the second its
// timestamp names when that falls in the run, else anywhere in it.
func (l ErrorLog) windows(endMs float64) []logWindow {
	var out []logWindow
	for _, line := range l.Lines {
		w := logWindow{from: 0, to: endMs, lines: []string{line}}
		if m := nginxTime.FindStringSubmatch(line); m != nil && !l.Start.IsZero() {
			if at, err := time.Parse("2006/01/02 15:04:05", m[1]); err == nil {
				ms := float64(at.Sub(l.Start.Truncate(time.Second))) / float64(time.Millisecond)
				if ms >= 0 && ms <= endMs+1000 {
					w.from, w.to = max(ms-1000, 0), min(ms+1000, endMs)
				}
			}
		}
		out = append(out, w)
	}
	return out
}

// ReadErrorLog reads error-log.txt (none: a record made before it was
// kept, or a run that kept none).
func ReadErrorLog(dir string, start time.Time) ErrorLog {
	data, err := os.ReadFile(filepath.Join(dir, record.ErrorLogFile))
	if err != nil {
		return ErrorLog{}
	}
	l := ErrorLog{Start: start}
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			l.Lines = append(l.Lines, line)
		}
	}
	return l
}

// CrashWindows are the deaths as spans in which a request in flight may
// have been held by the process that died.
func CrashWindows(deaths []record.Death) []Kill {
	var out []Kill
	for _, d := range deaths {
		out = append(out, Kill{PIDs: []int{d.PID}, FromMs: d.FromMs, ToMs: d.ToMs, Crash: true})
	}
	return out
}
