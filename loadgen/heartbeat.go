package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// The heartbeat is the observer's eye on nginx's side: a process inside
// nginx's container (so in nginx's cgroup, starved when nginx is) that
// ticks every HeartbeatInterval and writes when each tick was due and when
// it ran. The harness reads it back at the end and adds its lateness to
// the observer's windows (ObserverRecord.NginxLateMs): a stall while nginx's
// container could not run is the machine's, not nginx's (reports: the stall
// rule). It is the tool's own static binary run as a hidden subcommand, as
// the reaper is.

// HeartbeatCommand is the hidden subcommand of the CLI that runs the
// heartbeat.
const HeartbeatCommand = "heartbeat"

// HeartbeatInterval is how often the heartbeat ticks: the control probe's
// interval, five ticks a window.
const HeartbeatInterval = 20 * time.Millisecond

// HeartbeatTick is one line of the heartbeat's file: when the tick was due
// and when it ran, wall clock in Unix nanoseconds (the container shares the
// host's clock; the run's clock is anchored on the wall clock too). Slots
// that passed while a tick was late are not ticked: its lateness covers
// them.
//
// RunqUs and CPUUs are what nginx's processes (every process of the
// container named nginx, read from /proc/PID/schedstat) did since the
// previous tick: the most any one of them waited on a run queue for a
// CPU, and the CPU time they ran, all together, in microseconds. CPUs is
// how many CPUs the heartbeat may run on (nginx's container's share). A
// process that waits for a CPU while nginx's processes together ran well
// under the CPUs they had was held by other work on the machine, not by
// nginx's own (analysis.NginxHeld).
type HeartbeatTick struct {
	DueNs  int64 `json:"due"`
	RanNs  int64 `json:"ran"`
	RunqUs int64 `json:"rq,omitempty"`
	CPUUs  int64 `json:"cpu,omitempty"`
	CPUs   int   `json:"cpus,omitempty"`
}

// HeartbeatMain is the heartbeat itself (the hidden subcommand): it writes
// one HeartbeatTick a line to --out until --for has passed or it is
// killed (with its container). It returns the exit code.
func HeartbeatMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(HeartbeatCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the file to write the ticks to")
	every := fs.Duration("interval", HeartbeatInterval, "tick this often")
	bound := fs.Duration("for", 6*time.Hour, "stop after this long (the container's removal ends it first)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || *every <= 0 {
		fmt.Fprintln(stderr, "heartbeat: --out and a positive --interval are required")
		return 2
	}
	// One thread: it shares nginx's CPU and must not compete with it.
	runtime.GOMAXPROCS(1)
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "heartbeat: %v\n", err)
		return 1
	}
	defer f.Close()
	start := time.Now()
	startWall := start.Round(0).UnixNano()
	sched := newSchedReader(os.Getpid(), "nginx")
	sched.read() // the first reading is the baseline
	cpus := runtime.NumCPU()
	var line []byte
	for i := int64(0); ; {
		due := start.Add(time.Duration(i) * *every)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		ran := time.Now()
		line = line[:0]
		line = append(line, `{"due":`...)
		line = strconv.AppendInt(line, startWall+int64(due.Sub(start)), 10)
		line = append(line, `,"ran":`...)
		line = strconv.AppendInt(line, startWall+int64(ran.Sub(start)), 10)
		if rq, cpu, ok := sched.read(); ok {
			line = append(line, `,"rq":`...)
			line = strconv.AppendInt(line, rq/1000, 10)
			line = append(line, `,"cpu":`...)
			line = strconv.AppendInt(line, cpu/1000, 10)
			line = append(line, `,"cpus":`...)
			line = strconv.AppendInt(line, int64(cpus), 10)
		}
		line = append(line, "}\n"...)
		// One write a tick: what is in the file is what ran, whenever the
		// harness reads it. A write that fails (the file system full) is
		// a tick lost, not the end of the heartbeat.
		f.Write(line)
		if ran.Sub(start) >= *bound {
			return 0
		}
		// The next slot not yet passed.
		i = int64(ran.Sub(start)/(*every)) + 1
	}
}

// schedReader reads, for every process of a name (nginx; not self), the
// scheduler's counters in /proc/PID/schedstat: time on a CPU and time
// waiting on a run queue, in nanoseconds. They are world-readable, so the
// heartbeat reads them as nobody.
type schedReader struct {
	self int
	name string
	last map[int][2]int64 // pid: on-CPU, run-queue wait
	seen map[int]bool
	// other are the processes of another name: a tick reads the counters
	// of the name's processes only, and a process's name again every
	// otherEvery reads (an exec may give it the name).
	other map[int]bool
	// present are the pids of the last read (kept to spare an allocation
	// a tick).
	present map[int]bool
	reads   int
	buf     []byte
}

// otherEvery is how many reads a process of another name is left unread:
// a second at the heartbeat's interval.
const otherEvery = 50

func newSchedReader(self int, name string) *schedReader {
	return &schedReader{self: self, name: name, last: map[int][2]int64{}, seen: map[int]bool{}, other: map[int]bool{}, present: map[int]bool{}, buf: make([]byte, 128)}
}

// read returns, since the previous read, the most any process of the name
// waited on a run queue and the CPU time they all ran (a process new since
// then counts from its start). ok is false when /proc cannot be read or
// holds no such process.
func (r *schedReader) read() (runq, cpu int64, found bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return 0, 0, false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, 0, false
	}
	clear(r.seen)
	if r.reads++; r.reads%otherEvery == 0 {
		clear(r.other)
	}
	present := r.present
	clear(present)
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == r.self {
			continue
		}
		present[pid] = true
		if r.other[pid] {
			continue
		}
		if _, known := r.last[pid]; !known {
			if comm, ok := r.readFile("/proc/" + n + "/comm"); !ok || string(bytes.TrimSpace(comm)) != r.name {
				r.other[pid] = true
				continue
			}
		}
		st, ok := r.readFile("/proc/" + n + "/schedstat")
		if !ok {
			continue
		}
		f := bytes.Fields(st)
		if len(f) < 2 {
			continue
		}
		on, err1 := strconv.ParseInt(string(f[0]), 10, 64)
		wait, err2 := strconv.ParseInt(string(f[1]), 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		prev := r.last[pid]
		r.last[pid], r.seen[pid] = [2]int64{on, wait}, true
		runq = max(runq, wait-prev[1])
		cpu += on - prev[0]
	}
	for pid := range r.last {
		if !r.seen[pid] {
			delete(r.last, pid)
		}
	}
	for pid := range r.other {
		if !present[pid] {
			delete(r.other, pid)
		}
	}
	return runq, cpu, len(r.seen) > 0
}

func (r *schedReader) readFile(path string) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	n, err := f.Read(r.buf)
	if err != nil && n == 0 {
		return nil, false
	}
	return r.buf[:n], true
}

// ReadHeartbeat reads a heartbeat's file. A last line cut short (read while
// it was written) is left out; any other line that is not a tick is an
// error.
func ReadHeartbeat(r io.Reader) ([]HeartbeatTick, error) {
	var ticks []HeartbeatTick
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	var bad error
	n := 0
	for sc.Scan() {
		n++
		if bad != nil {
			return ticks, bad
		}
		var t HeartbeatTick
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil || t.DueNs == 0 || t.RanNs == 0 {
			bad = fmt.Errorf("heartbeat: line %d is not a tick: %q", n, sc.Text())
			continue
		}
		ticks = append(ticks, t)
	}
	return ticks, sc.Err()
}

// HeartbeatWindows turns ticks into the observer's windows on clock (each
// a supplement line: the load's windows are written already): per window,
// the ticks due in it (NginxTicks), nginx's processes' run-queue wait and
// CPU time read by the ticks that ran in it (NginxRunqMs, NginxCPUMs), and the most the container had run late
// at any moment of it (NginxLateMs) — a late tick's wait counts, like the
// hiccup meter's, in every window it spans, as far as it had gone by each
// window's end.
func HeartbeatWindows(ticks []HeartbeatTick, clock Clock) []ObserverRecord {
	w := float64(ObserverWindow.Milliseconds())
	anchor := clock.Start().UnixNano()
	ms := func(ns int64) float64 { return float64(ns-anchor) / float64(time.Millisecond) }
	byWindow := map[int64]*ObserverRecord{}
	at := func(k int64) *ObserverRecord {
		r := byWindow[k]
		if r == nil {
			r = &ObserverRecord{StartMs: float64(k) * w, EndMs: float64(k+1) * w, Supplement: true}
			byWindow[k] = r
		}
		return r
	}
	for _, t := range ticks {
		due, ran := ms(t.DueNs), ms(t.RanNs)
		if due < 0 {
			continue // before the run's clock started
		}
		at(windowOf(due)).NginxTicks++
		if t.CPUs > 0 {
			r := at(windowOf(ran))
			r.NginxRunqMs = round3ms(r.NginxRunqMs + float64(t.RunqUs)/1000)
			r.NginxCPUMs = round3ms(r.NginxCPUMs + float64(t.CPUUs)/1000)
			r.NginxCPUs = t.CPUs
		}
		if ran-due < 1 {
			continue // below the sleep's own resolution
		}
		for k := windowOf(due); k <= windowOf(ran); k++ {
			if end := math.Min(ran, float64(k+1)*w); end > due {
				r := at(k)
				r.NginxLateMs = math.Max(r.NginxLateMs, round3ms(end-due))
			}
		}
	}
	out := make([]ObserverRecord, 0, len(byWindow))
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for k := range byWindow {
		lo, hi = min(lo, k), max(hi, k)
	}
	for k := lo; k <= hi && len(byWindow) > 0; k++ {
		if r := byWindow[k]; r != nil {
			out = append(out, *r)
		}
	}
	return out
}

// AppendHeartbeat adds the heartbeat's windows (HeartbeatWindows) to
// dir's ObserverFile, once the load has closed it.
func AppendHeartbeat(dir string, ticks []HeartbeatTick, clock Clock) error {
	f, err := os.OpenFile(filepath.Join(dir, ObserverFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("loadgen: the heartbeat's windows: %w", err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, r := range HeartbeatWindows(ticks, clock) {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return errors.Join(bw.Flush(), f.Close())
}
