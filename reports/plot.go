package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Geometry of a scenario's plot, in SVG user units.
const (
	plotWidth   = 1100.0
	plotLeft    = 70.0  // room for the y axes' labels
	plotRight   = 20.0  //
	plotTop     = 150.0 // room for the title and the steps' rotated labels
	latHeight   = 220.0 // latency panel (log scale)
	panelGap    = 26.0
	reqHeight   = 60.0 // requests sent per bucket
	dropHeight  = 90.0 // drops per bucket
	plotBottom  = 34.0 // x axis labels
	plotInnerW  = plotWidth - plotLeft - plotRight
	latTop      = plotTop
	reqTop      = latTop + latHeight + panelGap
	dropTop     = reqTop + reqHeight + panelGap
	plotHeight  = dropTop + dropHeight + plotBottom
	minLatMs    = 0.01
	stepLabelCh = 22 // longest step label drawn in full (the <title> has it all)
)

// plotView is a scenario's plot, computed in Go so that the template only
// places numbers and escaped text.
type plotView struct {
	Width, Height                float64
	Left, Right, InnerW          float64
	LatTop, LatBottom            float64
	ReqTop, ReqBottom            float64
	DropTop, DropBottom          float64
	Phases                       []plotBand
	Steps                        []plotStep
	P99Path, MaxPath, ReqPath    string
	LatTicks, ReqTicks, DropTick []plotTick
	XTicks                       []plotTick
	Bars                         []plotBar
	BucketMs                     float64
	Empty                        bool
}

type plotBand struct {
	X, W, LabelX float64
	Name, Class  string
	ShowLabel    bool
}

type plotStep struct {
	X, XVerified  float64
	Label, Title  string
	Class         string
	ShowVerified  bool
	LabelY        float64
	VerifiedWidth float64
}

type plotTick struct {
	X, Y  float64
	Label string
}

type plotBar struct {
	X, Y, W, H   float64
	Class, Title string
}

func newPlotView(s *Scenario) *plotView {
	v := &plotView{
		Width: plotWidth, Height: plotHeight, Left: plotLeft, Right: plotWidth - plotRight, InnerW: plotInnerW,
		LatTop: latTop, LatBottom: latTop + latHeight, ReqTop: reqTop, ReqBottom: reqTop + reqHeight,
		DropTop: dropTop, DropBottom: dropTop + dropHeight,
	}
	tl := s.Timeline
	if tl == nil || len(tl.Requests) == 0 {
		v.Empty = true
		tl = &Timeline{BucketMs: float64(bucketWidth.Milliseconds())}
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
	tickMs := niceStep(xMax / 10)
	for t := 0.0; t <= xMax+tickMs/1e6; t += tickMs {
		v.XTicks = append(v.XTicks, plotTick{X: x(t), Label: tickLabel(t, tickMs)})
	}

	for i, p := range s.Phases {
		b := plotBand{X: x(p.StartMs), Name: p.Name, Class: fmt.Sprintf("band%d", i%2)}
		b.W = math.Max(0, x(p.EndMs)-b.X)
		if i == len(s.Phases)-1 {
			b.W = math.Max(b.W, v.Right-b.X)
		}
		b.LabelX = b.X + 3
		b.ShowLabel = float64(len(p.Name))*6 < b.W-4
		v.Phases = append(v.Phases, b)
	}
	for _, st := range s.Steps {
		label := strings.TrimSpace(st.Signal + " " + st.Name)
		title := fmt.Sprintf("%s: sent at %s, %s", stepLabel(st), fmtMs(st.SentMs), stepOutcome(st))
		if st.Verified {
			title += " at " + fmtMs(st.VerifiedMs)
		}
		if st.Error != "" {
			title += ": " + st.Error
		}
		if len([]rune(label)) > stepLabelCh {
			label = string([]rune(label)[:stepLabelCh-1]) + "…"
		}
		class := "step"
		if !stepAsExpected(st) {
			class = "step bad"
		}
		ps := plotStep{X: x(st.SentMs), Label: label, Title: title, Class: class, LabelY: plotTop - 6}
		if st.Verified && st.VerifiedMs > st.SentMs {
			ps.ShowVerified = true
			ps.XVerified = x(st.VerifiedMs)
			ps.VerifiedWidth = math.Max(1, ps.XVerified-ps.X)
		}
		v.Steps = append(v.Steps, ps)
	}

	// Latency on a log scale: a stall of seconds and a steady millisecond both show.
	lo, hi := math.Inf(1), 0.0
	for i, n := range tl.Requests {
		if n > 0 {
			lo = math.Min(lo, math.Max(tl.P99Ms[i], minLatMs))
			hi = math.Max(hi, math.Max(tl.MaxMs[i], tl.P99Ms[i]))
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

	maxReq, maxDrop := 0, 0
	for i, n := range tl.Requests {
		maxReq = max(maxReq, n)
		maxDrop = max(maxDrop, tl.Failed[i]+tl.Retried[i]+tl.SlowCut[i])
	}
	maxReq = max(maxReq, 1)
	maxDrop = max(maxDrop, 1)
	v.ReqTicks = []plotTick{{Y: reqTop, Label: strconv.Itoa(maxReq)}, {Y: reqTop + reqHeight, Label: "0"}}
	v.DropTick = []plotTick{{Y: dropTop, Label: strconv.Itoa(maxDrop)}, {Y: dropTop + dropHeight, Label: "0"}}

	var p99, mx, req strings.Builder
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
				Title: fmt.Sprintf("%s–%s: %d %s of %d sent", fmtMs(from), fmtMs(from+tl.BucketMs), part.n, part.label, n),
			})
		}
	}
	v.P99Path, v.MaxPath, v.ReqPath = p99.String(), mx.String(), req.String()
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
