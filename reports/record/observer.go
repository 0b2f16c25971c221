package record

import (
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
)

// ObserverPlan is meta.json's word that the run recorded the observer's
// health (loadgen.ObserverFile); a record without it was made before the
// observer, and its stalls are judged as they were then.
type ObserverPlan struct {
	File            string  `json:"file"`
	WindowMs        float64 `json:"window_ms"`
	ProbeIntervalMs float64 `json:"probe_interval_ms"`
	HiccupSleepMs   float64 `json:"hiccup_sleep_ms"`
}

// NewObserverPlan is the plan of loadgen's observer.
func NewObserverPlan() *ObserverPlan {
	return &ObserverPlan{File: loadgen.ObserverFile, WindowMs: float64(loadgen.ObserverWindow.Milliseconds()),
		ProbeIntervalMs: float64(loadgen.ProbeInterval.Milliseconds()), HiccupSleepMs: float64(loadgen.HiccupInterval.Milliseconds())}
}

// Observer is the observer's health over the run, as report.json gives it:
// what the record covers, the worst of each measure, and the spans of
// windows in which the observer was not healthy (what the stall rule
// subtracts from a stall).
type Observer struct {
	Windows   int     `json:"windows"`
	FromMs    float64 `json:"from_ms"` // the record covers [FromMs, ToMs)
	ToMs      float64 `json:"to_ms"`
	Unhealthy int     `json:"unhealthy_windows"`
	// The worst window's measures (loadgen.ObserverRecord).
	WorstLateMs   float64 `json:"worst_late_ms"`
	WorstHiccupMs float64 `json:"worst_hiccup_ms"`
	WorstProbeMs  float64 `json:"worst_probe_ms"`
	ProbeMissed   int     `json:"probe_missed"`
	// Blind are the runs of consecutive unhealthy windows, each with its
	// worst measures.
	Blind []ObserverSpan `json:"blind"`
	// Heartbeat is nginx's side: the heartbeat in nginx's container (nil:
	// a record made before it).
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
}

// ObserverSpan is a run of windows in which the observer was not healthy.
type ObserverSpan struct {
	StartMs     float64 `json:"start_ms"`
	EndMs       float64 `json:"end_ms"`
	LateMs      float64 `json:"late_ms"`
	HiccupMs    float64 `json:"hiccup_ms"`
	ProbeMs     float64 `json:"probe_ms"`
	ProbeMissed int     `json:"probe_missed"`
}

// ObserverLimits are the limits of a healthy window, as report.json states
// them beside the stall limit.
type ObserverLimits struct {
	WindowMs    float64 `json:"window_ms"`
	MaxLateMs   float64 `json:"max_late_ms"`
	MaxHiccupMs float64 `json:"max_hiccup_ms"`
	MaxProbeMs  float64 `json:"max_probe_ms"`
	// MaxNginxLateMs is the heartbeat's limit in nginx's container (absent:
	// a record made before it).
	MaxNginxLateMs float64 `json:"max_nginx_late_ms,omitempty"`
	// MaxNginxRunqMs and NginxBusyFraction are the limits on nginx's
	// processes' run-queue wait (analysis.NginxMaxRunqMs,
	// analysis.NginxBusyFraction; absent: a record made before them).
	MaxNginxRunqMs    float64 `json:"max_nginx_runq_ms,omitempty"`
	NginxBusyFraction float64 `json:"nginx_busy_fraction,omitempty"`
}

// HeartbeatFile is what the harness says of the heartbeat in nginx's
// container (HeartbeatRead), written at the end of the run; the heartbeat's
// windows are in the observer's file (loadgen.ObserverRecord.NginxLateMs).
const HeartbeatFile = "heartbeat.json"

// HeartbeatPlan is meta.json's word on the heartbeat in nginx's container
// (loadgen.HeartbeatMain): planned at IntervalMs, or Absent with why (no
// static build of the CLI to run in the container). Nil in a record made
// before the heartbeat: its stalls are judged on the harness's side alone.
type HeartbeatPlan struct {
	IntervalMs float64 `json:"interval_ms"`
	Absent     string  `json:"absent,omitempty"`
}

// HeartbeatRead is HeartbeatFile: how many ticks the harness read back and
// the span they cover on the run's clock, or why there are none (Absent:
// it did not start; Error: it could not be read back).
type HeartbeatRead struct {
	Ticks  int     `json:"ticks"`
	FromMs float64 `json:"from_ms"`
	ToMs   float64 `json:"to_ms"`
	Absent string  `json:"absent,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Heartbeat is nginx's side of the observer over the run, as report.json
// gives it: what the heartbeat covers, its worst lateness, and the spans of
// windows in which it ran later than the limit, each naming the fault that
// stalls the container in whose window it falls, if one does. Absent says
// why there was no heartbeat: its stalls are then judged on the harness's
// side alone.
type Heartbeat struct {
	Absent      string          `json:"absent,omitempty"`
	Ticks       int             `json:"ticks"`
	FromMs      float64         `json:"from_ms"`
	ToMs        float64         `json:"to_ms"`
	WorstLateMs float64         `json:"worst_late_ms"`
	Late        []HeartbeatSpan `json:"late"`
	// WorstRunqMs is the longest nginx's processes waited on a run queue in
	// a window (loadgen.ObserverRecord.NginxRunqMs); Held the spans of
	// windows in which they were held by other work on the machine
	// (analysis.NginxHeld). Absent in a record made before them.
	WorstRunqMs float64    `json:"worst_runq_ms,omitempty"`
	Held        []HeldSpan `json:"held,omitempty"`
	// RunqUnmeasured: the heartbeat ticked, but never read nginx's
	// processes' scheduler counters (a kernel without
	// /proc/PID/schedstat): no span can be found held.
	RunqUnmeasured bool `json:"runq_unmeasured,omitempty"`
}

// HeldSpan is a run of windows in which nginx's processes waited on a run
// queue past the limit while they ran under the share of their CPUs that
// would make the wait their own: RunqMs is the worst window's wait, CPUMs
// the most they ran in one of its windows, CPUs the CPUs they had.
type HeldSpan struct {
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	RunqMs  float64 `json:"runq_ms"`
	CPUMs   float64 `json:"cpu_ms"`
	CPUs    int     `json:"cpus"`
}

// HeartbeatSpan is a run of windows in which nginx's container ran later
// than the limit.
type HeartbeatSpan struct {
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	LateMs  float64 `json:"late_ms"`
}
