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
}
