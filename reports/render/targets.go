package render

import (
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// MaxTargetRows bounds the targets report.md and report.html list one by
// one (report.json has them all): those that dropped first, then the
// others in file order.
const MaxTargetRows = 50

// targetTable is the targets as the reports list them.
type targetTable struct {
	Rows []record.TargetRow
	More int // targets left out (none of them dropped)
}

// ShownTargets orders the rows for people: those that dropped first; nil
// without targets.
func ShownTargets(all []record.TargetRow) *targetTable {
	if len(all) == 0 {
		return nil
	}
	rows := make([]record.TargetRow, 0, len(all))
	for _, r := range all {
		if r.Dropped > 0 {
			rows = append(rows, r)
		}
	}
	for _, r := range all {
		if r.Dropped == 0 {
			rows = append(rows, r)
		}
	}
	t := &targetTable{Rows: rows}
	if len(rows) > MaxTargetRows && rows[MaxTargetRows].Dropped == 0 {
		t.Rows, t.More = rows[:MaxTargetRows], len(rows)-MaxTargetRows
	}
	return t
}

func classesOrDash(byClass map[string]int) string {
	if c := words.ClassSummary(byClass); c != "" {
		return c
	}
	return "—"
}

func writeMarkdownTargets(mw *MdWriter, s *record.Scenario) {
	t := ShownTargets(s.Targets)
	if t == nil {
		return
	}
	mw.Printf("| target | line | requests | ok | dropped | failed by class | p50 (ms) | p99 (ms) |\n| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
	for _, r := range t.Rows {
		mw.Printf("| %s | %d | %d | %d | %d | %s | %s | %s |\n", MdCell(r.Target), r.Line, r.Requests, r.OK, r.Dropped,
			MdCell(classesOrDash(r.ByClass)), msNum(r.P50Ms, r.Requests), msNum(r.P99Ms, r.Requests))
	}
	if t.More > 0 {
		mw.Printf("\n%d more targets in report.json (none of them dropped a request).\n", t.More)
	}
	mw.Printf("\n")
}
