package render

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// writeMarkdownWitness is the second witness's section of report.md.
func writeMarkdownWitness(mw *MdWriter, s *record.Scenario) {
	w := s.Witness
	if w == nil {
		return
	}
	if !w.Present {
		mw.Printf("Second witness: absent. %s\n\n", MdCell(w.Note))
		return
	}
	state := "complete: every request the client recorded is in nginx's log, and every id in the log is the client's"
	if !w.Complete {
		state = fmt.Sprintf("**incomplete**: %d ok on the client and absent from the log, %d logged and unknown to the client", w.UnloggedCount, w.UnknownCount)
	}
	mw.Printf("Second witness (nginx's own log, %d lines, %d of them the harness's probes): %d client records reconciled, %s. Classes: %s.\n\n",
		w.Logged, w.Unidentified, w.Requests, state, MdCell(words.ClassSummary(w.Classes)))
	if len(w.Generations) > 0 {
		mw.Printf("| generation | binary | master | workers | answered | after its master was gone | by phase |\n")
		mw.Printf("| --- | --- | ---: | --- | ---: | ---: | --- |\n")
		for _, g := range w.Generations {
			mw.Printf("| %s | %s | %s | %s | %d | %d | %s |\n", MdCell(g.Name), MdCell(g.Binary), pidCell(g.Master),
				MdCell(strings.Trim(fmt.Sprint(g.Workers), "[]")), g.Answered, g.Orphaned, MdCell(phaseCounts(s, g.ByPhase)))
		}
		mw.Printf("\n")
	}
	if w.DropsCount > 0 {
		mw.Printf("| drop | kind | phase | at (ms) | reconciled | pid | generation | logged status |\n")
		mw.Printf("| --- | --- | --- | ---: | --- | --- | --- | ---: |\n")
		for i, d := range w.Drops {
			if i == 50 {
				mw.Printf("\n%d more in report.json (witness.drops).\n", w.DropsCount-i)
				break
			}
			pid := pidCell(d.PID)
			if d.PID == 0 && len(d.Candidates) > 0 {
				pid = "one of " + strings.Trim(fmt.Sprint(d.Candidates), "[]")
			}
			gen := d.Generation
			if d.Orphan {
				gen += " (orphaned)"
			}
			status := "—"
			if d.Status > 0 {
				status = strconv.Itoa(d.Status)
			}
			mw.Printf("| %s | %s | %s | %.0f | %s | %s | %s | %s |\n", MdCell(d.ID), d.Kind, MdCell(d.Phase), d.Ms, d.Class, pid, MdCell(gen), status)
		}
		mw.Printf("\n")
	}
}

// phaseCounts writes "steady: 798, both-sets: 613" in the phases' order.
func phaseCounts(s *record.Scenario, by map[string]int) string {
	var parts []string
	for _, p := range s.Phases {
		if n := by[p.Name]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", p.Name, n))
		}
	}
	if n := by[""]; n > 0 {
		parts = append(parts, fmt.Sprintf("?: %d", n))
	}
	return strings.Join(parts, ", ")
}
