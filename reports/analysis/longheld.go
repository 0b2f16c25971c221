package analysis

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// NothingProvesDrain opens the premise failure of a run whose long
// connections did not span the drain: the old workers had nothing left to
// cut, so a clean result says nothing of how they treat held connections.
const NothingProvesDrain = "nothing proves the old workers drained held connections"

// drainOf finds the drain the plan marks among the steps that ran; ok is
// false when the plan marks none or either step never ran.
func drainOf(s *record.Scenario, meta *record.Meta) (d record.Drain, ok bool) {
	if meta == nil {
		return d, false
	}
	var start, end string
	for _, ps := range meta.PlannedSteps {
		switch ps.Drain {
		case record.DrainStart:
			start = ps.Name
		case record.DrainEnd:
			end = ps.Name
		}
	}
	if start == "" || end == "" {
		return d, false
	}
	var haveStart, haveEnd bool
	for _, st := range s.Steps {
		switch {
		case st.Name == start && !haveStart:
			d.StartStep, d.StartSignal, d.StartSentMs, haveStart = st.Name, st.Signal, st.SentMs, true
		case st.Name == end && haveStart && !haveEnd:
			d.EndStep, d.EndSignal, d.EndSentMs, haveEnd = st.Name, st.Signal, st.SentMs, true
			d.EndVerifiedMs = st.VerifiedMs
			if !st.Verified {
				d.EndVerifiedMs = st.SentMs
			}
		}
	}
	return d, haveStart && haveEnd
}

// readLongConnections lists the long downloads and WebSockets against the
// drain the plan marks (nil when it marks none, or the run never got to
// both of its steps: the incomplete record is a premise failure of its own).
func readLongConnections(dir string, s *record.Scenario, meta *record.Meta, phases *phaseSet, problem func(string, ...any)) *record.LongConnections {
	d, ok := drainOf(s, meta)
	if !ok {
		return nil
	}
	lc := &record.LongConnections{Drain: d, Connections: []record.LongConnection{}}
	add := func(c record.LongConnection, cut bool) {
		c.Phase = phases.at(MsToDuration(c.EndMs)).name
		c.Held = c.StartMs <= d.StartSentMs && c.EndMs > d.StartSentMs
		// A cut before the drain ended is a drop, which the verdict names;
		// an end in good order before it proves nothing of the drain.
		c.Spans = c.Held && (c.EndMs >= d.EndSentMs || cut)
		lc.Connections = append(lc.Connections, c)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	if err := record.ReadJSONL(path(loadgen.DownloadsFile), func(r *loadgen.DownloadRecord) {
		expected := r.Expected
		if expected == 0 {
			expected = meta.SlowBytes
		}
		outcome := "cut"
		switch {
		case r.Completed && r.Received >= expected:
			outcome = "completed"
		case r.Error == loadgen.DownloadCancelled:
			outcome = "cancelled"
		}
		add(record.LongConnection{Kind: "download", ID: r.ID, StartMs: r.StartMs, EndMs: r.EndMs, Outcome: outcome, HeldMs: r.HeldMs}, outcome == "cut")
	}); err != nil && !errors.Is(err, record.ErrMissing) {
		problem("%v", err)
	}
	if err := record.ReadJSONL(path(loadgen.WebSocketsFile), func(r *loadgen.WebSocketRecord) {
		add(record.LongConnection{Kind: "websocket", ID: r.ID, StartMs: r.StartMs, EndMs: r.EndMs, Outcome: r.Ended},
			loadgen.WebSocketDrop(r.Ended, r.Code))
	}); err != nil && !errors.Is(err, record.ErrMissing) {
		problem("%v", err)
	}
	if len(lc.Connections) == 0 && meta.Load.Slow == 0 {
		return nil // none planned: nothing to size, nothing to check
	}
	return lc
}

// DrainReasons is the premise that the long connections spanned the
// drain: at least one was in flight when the drain-starting step was sent,
// and every one that was is still in flight when the drain-ending step is
// sent (or was cut before: a drop, judged as one).
func DrainReasons(s *record.Scenario) []string {
	lc := s.LongConnections
	if lc == nil {
		return nil
	}
	d := lc.Drain
	startWords := fmt.Sprintf("%s was sent at %s", words.StepLabel(record.Step{Name: d.StartStep, Signal: d.StartSignal}), words.FmtMs(d.StartSentMs))
	var held int
	var short []string
	for _, c := range lc.Connections {
		if c.StartMs > d.StartSentMs {
			continue // opened on the workers that took over: not the drained set's
		}
		if c.Outcome == "cancelled" || c.Outcome == loadgen.WSEndedCancelled {
			continue // a premise failure of its own (cancelled by the harness)
		}
		if c.Held {
			held++
		}
		if !c.Spans {
			w := fmt.Sprintf("%s %d %s at %s", c.Kind, c.ID, c.Outcome, words.FmtMs(c.EndMs))
			if c.NginxEndMs > 0 && c.NginxEndMs < d.EndSentMs && c.EndMs >= d.EndSentMs {
				w += fmt.Sprintf(" (nginx had written its last byte at %s: the rest was in the sockets' buffers)", words.FmtMs(c.NginxEndMs))
			}
			short = append(short, w)
		}
	}
	var out []string
	if held == 0 && len(short) == 0 {
		return []string{fmt.Sprintf("%s: no long connection was in flight when %s", NothingProvesDrain, startWords)}
	}
	if len(short) > 0 {
		out = append(out, fmt.Sprintf("%s: %s opened before %s ended before %s was sent at %s: %s",
			NothingProvesDrain, words.Plural(len(short), "long connection"), startWords,
			words.StepLabel(record.Step{Name: d.EndStep, Signal: d.EndSignal}), words.FmtMs(d.EndSentMs), strings.Join(short, ", ")))
	}
	return out
}

// nginxEnds sets when nginx logged each long download done and takes
// Spans from a completed download that nginx ended before the
// drain-ending step was sent: what the client read after that came from
// the sockets' buffers, not from the workers being drained. startMs is the
// run clock's zero in Unix milliseconds.
func nginxEnds(lc *record.LongConnections, server []record.ServerEntry, startMs float64) {
	if lc == nil {
		return
	}
	end := map[string]float64{}
	for _, e := range server {
		if strings.HasPrefix(e.ID, "slow/") {
			end[e.ID] = e.Msec*1000 - startMs
		}
	}
	for i := range lc.Connections {
		c := &lc.Connections[i]
		if c.Kind != "download" {
			continue
		}
		ms, ok := end["slow/"+strconv.Itoa(c.ID)]
		if !ok {
			continue
		}
		c.NginxEndMs = ms
		if c.Spans && c.Outcome == "completed" && ms < lc.Drain.EndSentMs {
			c.Spans = false
		}
	}
}
