package render

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// Geometry of a scenario's plot, in SVG user units. It is drawn for a page
// 800 px wide, where one unit is about one pixel: on a wider page the SVG
// scales up, and its 12-unit text is never below 11 px.
const (
	plotWidth   = 760.0
	plotLeft    = 58.0  // room for the y axes' labels
	plotRight   = 12.0  //
	plotTop     = 162.0 // room for the steps' rotated labels
	labelRow    = 15.0  // one row of phase labels
	labelRows   = 3
	latHeight   = 220.0 // latency panel (log scale)
	panelGap    = 28.0
	reqHeight   = 60.0 // requests sent per bucket
	dropHeight  = 90.0 // drops per bucket
	axisHeight  = 30.0 // x axis labels
	legendRow   = 18.0
	plotInnerW  = plotWidth - plotLeft - plotRight
	labelTop    = plotTop
	latTop      = labelTop + labelRows*labelRow + 4
	reqTop      = latTop + latHeight + panelGap
	dropTop     = reqTop + reqHeight + panelGap
	legendTop   = dropTop + dropHeight + axisHeight
	minLatMs    = 0.01
	stepLabelCh = 22  // longest step label drawn in full (the <title> has it all): 22 × charWidth < plotTop
	charWidth   = 6.8 // of 12-unit text, to place labels without overlap
)

// classColours colour each kind of loss, in the plot's points and legend.
var classColours = map[string]string{
	record.ClassRefused: "#d93025", record.ClassReset: "#12a4b8", record.ClassEOF: "#e37400", record.ClassTimeout: "#5f6368",
	record.ClassStatus5xx: "#8c1007", record.ClassStatus3xx: "#e52592", record.ClassStatusOther: "#795548", record.ClassWrongBody: "#00897b",
	record.ClassStreamReset: "#3949ab", record.ClassGoAway: "#7cb342",
	record.ClassOther: "#202124", record.CauseRetried: "#f9ab00", record.CauseSlowCut: "#8e24aa",
}

func classColour(c string) string {
	if col, ok := classColours[c]; ok {
		return col
	}
	return "#202124"
}

// plotView is a scenario's plot, computed in Go so that the template only
// places numbers and escaped text.
type plotView struct {
	Width, Height                      float64
	Left, Right, InnerW                float64
	LabelTop                           float64
	LatTop, LatBottom                  float64
	ReqTop, ReqBottom                  float64
	DropTop, DropBottom                float64
	Phases                             []plotBand
	Steps                              []plotStep
	Faults                             []plotFault
	P50Path, P99Path, MaxPath, ReqPath string
	TargetY                            float64 // the target rate on the requests lane
	TargetLabel                        string
	LatTicks, ReqTicks, DropTick       []plotTick
	XTicks                             []plotTick
	Bars                               []plotBar
	Points                             []plotPoint
	PointsNote                         string
	Legend                             []plotLegend
	BucketMs                           float64
	Empty                              bool
	// Gens are the server's log's bands, one per generation of workers:
	// each bucket's cell as dark as the share of that bucket's answers the
	// generation gave.
	Gens    []plotGen
	GensTop float64
	// Observer is the observer's band (nil: a record made before it).
	Observer *plotObserver
}

type plotGen struct {
	Y      float64
	Label  string
	Colour string
	Cells  []plotBar
}

// genRow is the height of one generation's band.
const genRow = 16.0

// genColours tell the generations apart: the old binary's in blues, the
// new one's in greens, others in greys.
func genColour(name string, i int) string {
	switch {
	case strings.HasSuffix(name, record.OrphanBand):
		return "#d93025"
	case strings.HasPrefix(name, "old"):
		return []string{"#1f5fbf", "#5e8fd6", "#0b3a80"}[i%3]
	case strings.HasPrefix(name, "new"):
		return []string{"#188038", "#52a866", "#0b5323"}[i%3]
	}
	return "#5f6368"
}

type plotBand struct {
	X, W, LabelX, LabelY float64
	Name, Class          string
}

type plotStep struct {
	X, XVerified  float64
	Label, Title  string
	Class         string
	ShowVerified  bool
	LabelY        float64
	VerifiedWidth float64
}

// plotFault is a fault's span on the time axis, from its injection to its
// heal (or the end of the run).
type plotFault struct {
	X, W, LabelY float64
	Label, Title string
}

type plotTick struct {
	X, Y  float64
	Label string
}

type plotBar struct {
	X, Y, W, H   float64
	Class, Title string
}

type plotPoint struct {
	X, Y          float64
	Colour, Title string
}

// plotLegend is one entry of the legend: a swatch drawn as Kind ("line",
// "dash", "box", "dot", "step", "step-expected", "step-bad") in Colour.
type plotLegend struct {
	X, Y         float64
	Kind, Colour string
	Label        string
}

func newPlotView(s *record.Scenario) *plotView {
	v := &plotView{
		Width: plotWidth, Left: plotLeft, Right: plotWidth - plotRight, InnerW: plotInnerW, LabelTop: labelTop,
		LatTop: latTop, LatBottom: latTop + latHeight, ReqTop: reqTop, ReqBottom: reqTop + reqHeight,
		DropTop: dropTop, DropBottom: dropTop + dropHeight,
	}
	tl := s.Timeline
	if tl == nil || len(tl.Requests) == 0 {
		v.Empty = true
		tl = &record.Timeline{BucketMs: float64(analysis.BucketWidth.Milliseconds())}
	}
	v.BucketMs = tl.BucketMs

	xMax := s.EndMs
	xMax = math.Max(xMax, tl.StartMs+float64(len(tl.Requests))*tl.BucketMs)
	for _, st := range s.Steps {
		xMax = math.Max(xMax, math.Max(st.SentMs, st.VerifiedMs))
	}
	if xMax <= 0 {
		xMax = 1000
	}
	x := func(ms float64) float64 { return plotLeft + plotInnerW*math.Max(0, math.Min(ms, xMax))/xMax }
	tickMs := niceStep(xMax / 7)
	for t := 0.0; t <= xMax+tickMs/1e6; t += tickMs {
		v.XTicks = append(v.XTicks, plotTick{X: x(t), Label: tickLabel(t, tickMs)})
	}

	// Phase labels never vanish: each goes in the first of three rows where
	// it does not run into the previous label, or else the row whose label
	// ends first.
	rowEnd := make([]float64, labelRows)
	for i, p := range s.Phases {
		b := plotBand{X: x(p.StartMs), Name: p.Name, Class: fmt.Sprintf("band%d", i%2)}
		b.W = math.Max(0, x(p.EndMs)-b.X)
		if i == len(s.Phases)-1 {
			b.W = math.Max(b.W, v.Right-b.X)
		}
		b.LabelX = b.X + 2
		row := 0
		for r := range rowEnd {
			if rowEnd[r] <= b.LabelX {
				row = r
				break
			}
			if rowEnd[r] < rowEnd[row] {
				row = r
			}
		}
		w := float64(len(p.Name)) * charWidth
		if b.LabelX+w > v.Right { // keep it on the canvas
			b.LabelX = math.Max(plotLeft, v.Right-w)
		}
		rowEnd[row] = b.LabelX + w + 6
		b.LabelY = labelTop + float64(row+1)*labelRow - 3
		v.Phases = append(v.Phases, b)
	}
	for _, st := range s.Steps {
		label := strings.TrimSpace(st.Signal + " " + st.Name)
		title := fmt.Sprintf("%s: sent at %s, %s", words.StepLabel(st), words.FmtMs(st.SentMs), words.StepOutcome(st))
		if st.Verified {
			title += " at " + words.FmtMs(st.VerifiedMs)
		}
		if st.Error != "" {
			title += ": " + st.Error
		}
		if len([]rune(label)) > stepLabelCh {
			label = string([]rune(label)[:stepLabelCh-1]) + "…"
		}
		class := "step"
		switch {
		case !judge.StepAsExpected(st):
			class = "step bad"
		case st.Expected == record.ExpectFail:
			class = "step expected-fail"
		}
		ps := plotStep{X: x(st.SentMs), Label: label, Title: title, Class: class, LabelY: plotTop - 6}
		if st.Verified && st.VerifiedMs > st.SentMs {
			ps.ShowVerified = true
			ps.XVerified = x(st.VerifiedMs)
			ps.VerifiedWidth = math.Max(1, ps.XVerified-ps.X)
		}
		v.Steps = append(v.Steps, ps)
	}

	for _, f := range s.Faults {
		end := xMax
		healed := "not healed"
		if f.HealedMs != nil {
			end, healed = *f.HealedMs, "healed at "+words.FmtMs(*f.HealedMs)
		}
		pf := plotFault{X: x(f.InjectedMs), Label: "fault " + f.Name, LabelY: v.DropTop + 11,
			Title: fmt.Sprintf("fault %s after %s: injected at %s, %s — %s", f.Name, f.Step, words.FmtMs(f.InjectedMs), healed, f.Outcome)}
		pf.W = math.Max(2, x(end)-pf.X)
		v.Faults = append(v.Faults, pf)
	}

	// Latency on a log scale: a stall of seconds and a steady millisecond both show.
	lo, hi := math.Inf(1), 0.0
	for i, n := range tl.Requests {
		if n > 0 {
			p50 := 0.0
			if i < len(tl.P50Ms) {
				p50 = tl.P50Ms[i]
			}
			lo = math.Min(lo, math.Max(math.Min(p50, tl.P99Ms[i]), minLatMs))
			hi = math.Max(hi, math.Max(tl.MaxMs[i], tl.P99Ms[i]))
		}
	}
	for _, pt := range tl.Points {
		if pt.LatencyMs > 0 {
			lo, hi = math.Min(lo, math.Max(pt.LatencyMs, minLatMs)), math.Max(hi, pt.LatencyMs)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	// A margin, so that a flat line does not run along the frame.
	logLo := math.Floor(math.Log10(lo / 1.5))
	logHi := math.Ceil(math.Log10(math.Max(hi*1.5, minLatMs)))
	if logHi <= logLo {
		logHi = logLo + 1
	}
	yLat := func(ms float64) float64 {
		l := math.Log10(math.Max(ms, minLatMs))
		f := (l - logLo) / (logHi - logLo)
		return latTop + latHeight*(1-math.Max(0, math.Min(1, f)))
	}
	for e := logLo; e <= logHi; e++ {
		ms := math.Pow(10, e)
		v.LatTicks = append(v.LatTicks, plotTick{Y: yLat(ms), Label: latencyTickLabel(ms)})
	}

	target := float64(s.Load.Rate) * tl.BucketMs / 1000
	maxReq, maxDrop := int(math.Ceil(target*1.1)), 0
	for i, n := range tl.Requests {
		maxReq = max(maxReq, n)
		maxDrop = max(maxDrop, tl.Failed[i]+tl.Retried[i]+tl.SlowCut[i])
	}
	maxReq = max(maxReq, 1)
	maxDrop = max(maxDrop, 1)
	v.ReqTicks = []plotTick{{Y: reqTop, Label: strconv.Itoa(maxReq)}, {Y: reqTop + reqHeight, Label: "0"}}
	v.DropTick = []plotTick{{Y: dropTop, Label: strconv.Itoa(maxDrop)}, {Y: dropTop + dropHeight, Label: "0"}}
	if target > 0 {
		v.TargetY = reqTop + reqHeight*(1-target/float64(maxReq))
		v.TargetLabel = fmt.Sprintf("target %d req/s", s.Load.Rate)
	}

	var p50, p99, mx, req strings.Builder
	pen := false
	barW := math.Max(1, plotInnerW*tl.BucketMs/xMax-0.5)
	for i, n := range tl.Requests {
		from := tl.StartMs + float64(i)*tl.BucketMs
		mid := x(from + tl.BucketMs/2)
		reqY := reqTop + reqHeight*(1-float64(n)/float64(maxReq))
		if i == 0 {
			fmt.Fprintf(&req, "M%.1f %.1f", x(from), reqY)
		}
		fmt.Fprintf(&req, " L%.1f %.1f", mid, reqY)
		if n == 0 {
			pen = false // a gap in the load is a gap in the line
		} else {
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			if i < len(tl.P50Ms) {
				fmt.Fprintf(&p50, "%s%.1f %.1f ", cmd, mid, yLat(tl.P50Ms[i]))
			}
			fmt.Fprintf(&p99, "%s%.1f %.1f ", cmd, mid, yLat(tl.P99Ms[i]))
			fmt.Fprintf(&mx, "%s%.1f %.1f ", cmd, mid, yLat(tl.MaxMs[i]))
			pen = true
		}
		base := dropTop + dropHeight
		for _, part := range []struct {
			n            int
			class, label string
		}{
			{tl.Failed[i], "failed", "failed"},
			{tl.Retried[i], "retried", "retried"},
			{tl.SlowCut[i], "cut", "long downloads cut"},
		} {
			if part.n == 0 {
				continue
			}
			h := dropHeight * float64(part.n) / float64(maxDrop)
			base -= h
			v.Bars = append(v.Bars, plotBar{
				X: x(from), Y: base, W: barW, H: h, Class: part.class,
				Title: fmt.Sprintf("%s–%s: %d %s of %d sent", words.FmtMs(from), words.FmtMs(from+tl.BucketMs), part.n, part.label, n),
			})
		}
	}
	v.P50Path, v.P99Path, v.MaxPath, v.ReqPath = p50.String(), p99.String(), mx.String(), req.String()

	// Every loss at its exact time, coloured by class (as Jepsen plots
	// operations): a failed request at the latency the client saw, a retry
	// or a cut download on the drops lane.
	seen := map[string]bool{}
	var classes []string
	for _, pt := range tl.Points {
		y := yLat(pt.LatencyMs)
		what := fmt.Sprintf("%s at %s", pt.Class, words.FmtMs(pt.Ms))
		switch pt.Class {
		case record.CauseRetried:
			y, what = dropTop+dropHeight*0.2, "request retried after a server close at "+words.FmtMs(pt.Ms)
		case record.CauseSlowCut:
			y, what = dropTop+dropHeight*0.4, "long download cut at "+words.FmtMs(pt.Ms)
		default:
			what = fmt.Sprintf("failed request (%s) sent at %s, after %s", pt.Class, words.FmtMs(pt.Ms), msCell(pt.LatencyMs))
		}
		v.Points = append(v.Points, plotPoint{X: x(pt.Ms), Y: y, Colour: classColour(pt.Class), Title: what})
		if !seen[pt.Class] {
			seen[pt.Class] = true
			classes = append(classes, pt.Class)
		}
	}
	if tl.NPoints > len(tl.Points) {
		v.PointsNote = fmt.Sprintf("the first %d of %d losses are drawn one by one; the bars count them all", len(tl.Points), tl.NPoints)
	}

	// The legend, in rows, under the x axis.
	items := []plotLegend{
		{Kind: "line", Colour: "#1f5fbf", Label: "p99 latency"},
		{Kind: "line-thin", Colour: "#34a853", Label: "p50 latency"},
		{Kind: "dash", Colour: "#1f5fbf", Label: "max latency"},
		{Kind: "line-thin", Colour: "#777", Label: "requests sent"},
		{Kind: "dash", Colour: "#222", Label: "target rate"},
		{Kind: "box", Colour: "#d93025", Label: "failed"},
		{Kind: "box", Colour: "#f29900", Label: "retried"},
		{Kind: "box", Colour: "#8e24aa", Label: "downloads cut"},
		{Kind: "step", Colour: "#333", Label: "step verified"},
		{Kind: "step-expected", Colour: "#a15c00", Label: "step failed as expected"},
		{Kind: "step-bad", Colour: "#d93025", Label: "step not as expected"},
		{Kind: "box", Colour: "#bbb", Label: "until verified"},
	}
	if len(s.Faults) > 0 {
		items = append(items, plotLegend{Kind: "box", Colour: "#f6c7c0", Label: "fault, injected to healed"})
	}
	for _, c := range classes {
		items = append(items, plotLegend{Kind: "dot", Colour: classColour(c), Label: c})
	}
	lx, ly := plotLeft, legendTop
	for _, it := range items {
		w := 24 + float64(len([]rune(it.Label)))*charWidth + 14
		if lx+w > v.Right && lx > plotLeft {
			lx, ly = plotLeft, ly+legendRow
		}
		it.X, it.Y = lx, ly
		v.Legend = append(v.Legend, it)
		lx += w
	}
	v.Height = ly + legendRow + 6
	if len(tl.Generations) > 0 {
		v.GensTop = v.Height + 22
		total := make([]int, len(tl.Requests))
		for _, g := range tl.Generations {
			for i, n := range g.Answered {
				if i < len(total) {
					total[i] += n
				}
			}
		}
		perBinary := map[string]int{}
		for gi, g := range tl.Generations {
			b := strings.SplitN(g.Name, "-", 2)[0]
			pg := plotGen{Y: v.GensTop + float64(gi)*genRow, Label: g.Name, Colour: genColour(g.Name, perBinary[b])}
			perBinary[b]++
			for i, n := range g.Answered {
				if n == 0 || total[i] == 0 {
					continue
				}
				from := tl.StartMs + float64(i)*tl.BucketMs
				share := float64(n) / float64(total[i])
				pg.Cells = append(pg.Cells, plotBar{X: x(from), Y: pg.Y, W: barW, H: genRow - 3, Class: fmt.Sprintf("%.2f", 0.15+0.85*share),
					Title: fmt.Sprintf("%s–%s: %s answered %d of the %d requests nginx logged", words.FmtMs(from), words.FmtMs(from+tl.BucketMs), g.Name, n, total[i])})
			}
			v.Gens = append(v.Gens, pg)
		}
		v.Height = v.GensTop + float64(len(tl.Generations))*genRow + 6
	}
	if s.Observer != nil {
		v.Observer = observerBand(s.Observer, v.Height+22, x)
		v.Height = v.Observer.Y + genRow + 6
	}
	return v
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

func tickLabel(ms, step float64) string {
	if step >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', -1, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

func latencyTickLabel(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', -1, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

// plotObserver is the observer's band under the plot: green where the
// record covers the run and the observer was healthy, red where it was
// blind (each blind span titled with what it saw), blank where nothing was
// recorded.
type plotObserver struct {
	Y       float64
	Covered plotBar
	Blind   []plotBar
	// NginxLate are the spans in which nginx's container ran later than
	// its limit (its heartbeat), drawn over the band.
	NginxLate []plotBar
	Caption   string
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
	if h := o.Heartbeat; h != nil {
		if h.Absent != "" {
			b.Caption += "; nginx's container: no heartbeat"
		} else {
			b.Caption += fmt.Sprintf("; orange: nginx's container over %s late, or its processes waiting over %s a window for a CPU the machine's other work held",
				words.FmtMs(analysis.NginxMaxLateMs), words.FmtMs(analysis.NginxMaxRunqMs))
		}
		for _, sp := range h.Held {
			b.NginxLate = append(b.NginxLate, plotBar{X: x(sp.StartMs), Y: top, W: math.Max(1.5, x(sp.EndMs)-x(sp.StartMs)), H: genRow - 3,
				Title: fmt.Sprintf("%s–%s: nginx's processes %s", words.FmtMs(sp.StartMs), words.FmtMs(sp.EndMs), analysis.HeldWords(sp, ""))})
		}
		for _, sp := range h.Late {
			b.NginxLate = append(b.NginxLate, plotBar{X: x(sp.StartMs), Y: top, W: math.Max(1.5, x(sp.EndMs)-x(sp.StartMs)), H: genRow - 3,
				Title: fmt.Sprintf("%s–%s: nginx's container ran %s late", words.FmtMs(sp.StartMs), words.FmtMs(sp.EndMs), words.FmtMs(sp.LateMs))})
		}
	}
	return b
}
