package render

import (
	"fmt"
	"math"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// plotObserver is the observer's band under the plot: green where the
// record covers the run and the observer was healthy, red where it was
// blind (each blind span titled with what it saw), blank where nothing was
// recorded.
type plotObserver struct {
	Y       float64
	Covered plotBar
	Blind   []plotBar
	Caption string
}

func observerBand(o *record.Observer, top float64, x func(float64) float64) *plotObserver {
	b := &plotObserver{Y: top, Caption: fmt.Sprintf("observer: green could see, red blind (load over %s late, runtime or probe over %s)",
		words.FmtMs(analysis.ObserverMaxLateMs), words.FmtMs(analysis.ObserverMaxProbeMs))}
	if o.ToMs > o.FromMs {
		b.Covered = plotBar{X: x(o.FromMs), Y: top, W: math.Max(1, x(o.ToMs)-x(o.FromMs)), H: genRow - 3,
			Title: fmt.Sprintf("observer recorded %s–%s: %d windows, %d blind", words.FmtMs(o.FromMs), words.FmtMs(o.ToMs), o.Windows, o.Unhealthy)}
	}
	for _, sp := range o.Blind {
		_, saw := analysis.ObserverSaw(&record.Observer{FromMs: o.FromMs, ToMs: o.ToMs, Blind: []record.ObserverSpan{sp}}, sp.StartMs, sp.EndMs)
		b.Blind = append(b.Blind, plotBar{X: x(sp.StartMs), Y: top, W: math.Max(1.5, x(sp.EndMs)-x(sp.StartMs)), H: genRow - 3,
			Title: fmt.Sprintf("%s–%s: %s", words.FmtMs(sp.StartMs), words.FmtMs(sp.EndMs), saw)})
	}
	return b
}

// observerLine sums the observer up for report.md ("" without a record).
func observerLine(o *record.Observer) string {
	if o == nil {
		return ""
	}
	return fmt.Sprintf("Observer: %d windows of 100 ms recorded, %d blind (worst: the load %s late, the runtime %s, the control probe %s; %d control probes missed).",
		o.Windows, o.Unhealthy, words.FmtMs(o.WorstLateMs), words.FmtMs(o.WorstHiccupMs), words.FmtMs(o.WorstProbeMs), o.ProbeMissed)
}
