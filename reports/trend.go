package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// Trend is runs of one matrix side by side, cell by cell, in the order
// given: for spotting a regression that crept in over successive builds.
type Trend struct {
	Runs []TrendRun `json:"runs"`
	Rows []TrendRow `json:"rows"`
	// Worse counts the cells the last run made worse than the run before.
	Worse int `json:"worse"`
}

// TrendRun is one run of the matrix.
type TrendRun struct {
	Dir     string `json:"dir"`
	Verdict string `json:"verdict"`
	Builds  string `json:"builds"` // the to builds of its cells, in order
}

// TrendRow is one cell (by its key) across the runs; a run without the
// cell has a null entry.
type TrendRow struct {
	Key   string       `json:"key"`
	Cells []*TrendCell `json:"cells"`
}

// TrendCell is a cell in one run, and whether it got worse than in the
// run before.
type TrendCell struct {
	ID        string   `json:"id"`
	To        string   `json:"to"`
	Verdict   string   `json:"verdict"`
	Dropped   int      `json:"dropped"`
	StallMs   *float64 `json:"stall_ms"`
	DurationS *float64 `json:"duration_s"`
	Worse     []string `json:"worse,omitempty"` // what got worse: "dropped", "stall", "verdict"
}

// Stall growth that counts as worse: both more than stallWorseMs and more
// than stallWorseFraction of the earlier stall, so that the run-to-run
// scatter of a few tens of milliseconds is not flagged.
const (
	stallWorseMs       = 100
	stallWorseFraction = 0.25
)

// BuildTrend lines up matrix reports (rebuilt from their records by the
// caller) cell by cell.
func BuildTrend(dirs []string, runs []*MatrixReport) (*Trend, error) {
	if len(runs) < 2 {
		return nil, fmt.Errorf("report trend: want two or more matrix run directories")
	}
	t := &Trend{}
	var order []string
	rows := map[string]*TrendRow{}
	for i, r := range runs {
		var tos []string
		seen := map[string]bool{}
		for _, c := range r.Cells {
			if !seen[c.To] {
				seen[c.To] = true
				tos = append(tos, c.To)
			}
		}
		t.Runs = append(t.Runs, TrendRun{Dir: dirs[i], Verdict: r.Verdict, Builds: strings.Join(tos, ", ")})
		for _, c := range r.Cells {
			row, ok := rows[c.Key]
			if !ok {
				row = &TrendRow{Key: c.Key, Cells: make([]*TrendCell, len(runs))}
				rows[c.Key] = row
				order = append(order, c.Key)
			}
			row.Cells[i] = &TrendCell{ID: c.ID, To: c.To, Verdict: c.Verdict, Dropped: c.Dropped, StallMs: c.StallMs, DurationS: c.DurationS}
		}
	}
	shared := 0
	for _, k := range order {
		row := rows[k]
		n := 0
		for i, c := range row.Cells {
			if c == nil {
				continue
			}
			n++
			if i > 0 && row.Cells[i-1] != nil {
				c.Worse = worseThan(row.Cells[i-1], c)
				if len(c.Worse) > 0 && i == len(runs)-1 {
					t.Worse++
				}
			}
		}
		if n > 1 {
			shared++
		}
		t.Rows = append(t.Rows, *row)
	}
	if shared == 0 {
		return nil, fmt.Errorf("report trend: the runs share no cell: are they runs of the same matrix file?")
	}
	return t, nil
}

func worseThan(before, now *TrendCell) []string {
	var w []string
	if now.Dropped > before.Dropped {
		w = append(w, "dropped")
	}
	if now.StallMs != nil && before.StallMs != nil {
		grow := *now.StallMs - *before.StallMs
		if grow > stallWorseMs && grow > stallWorseFraction**before.StallMs {
			w = append(w, "stall")
		}
	}
	if rank(now.Verdict) > rank(before.Verdict) {
		w = append(w, "verdict")
	}
	return w
}

func rank(v string) int {
	switch v {
	case record.VerdictPass:
		return 0
	case record.VerdictError:
		return 1
	}
	return 2
}

// WriteTrendMarkdown writes the trend as a Markdown table: a row per cell, a
// column per run, "▲" where the cell got worse than in the run before.
func WriteTrendMarkdown(w io.Writer, t *Trend) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# Matrix trend over %d runs\n\n", len(t.Runs))
	for i, r := range t.Runs {
		fmt.Fprintf(b, "%d. `%s`: %s (to: %s)\n", i+1, r.Dir, strings.ToUpper(r.Verdict), render.MdCell(r.Builds))
	}
	fmt.Fprintf(b, "\nEach entry: verdict, dropped, stall ms, duration; ▲ marks what got worse than in the run before")
	fmt.Fprintf(b, " (drops: any more; stall: more than %d ms and %.0f%% longer; verdict: pass → error → fail).\n\n", stallWorseMs, stallWorseFraction*100)
	fmt.Fprintf(b, "| cell |")
	for i := range t.Runs {
		fmt.Fprintf(b, " run %d |", i+1)
	}
	fmt.Fprintf(b, "\n|---|")
	for range t.Runs {
		fmt.Fprintf(b, "---|")
	}
	fmt.Fprintln(b)
	for _, row := range t.Rows {
		fmt.Fprintf(b, "| %s |", render.MdCell(row.Key))
		for _, c := range row.Cells {
			fmt.Fprintf(b, " %s |", trendEntry(c))
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintf(b, "\n%d cell(s) got worse in the last run.\n", t.Worse)
	_, err := io.WriteString(w, b.String())
	return err
}

func trendEntry(c *TrendCell) string {
	if c == nil {
		return "—"
	}
	mark := func(what string) string {
		for _, x := range c.Worse {
			if x == what {
				return " ▲"
			}
		}
		return ""
	}
	return fmt.Sprintf("%s%s, %d%s, %s%s, %s", strings.ToUpper(c.Verdict), mark("verdict"), c.Dropped, mark("dropped"),
		StallCell(c.StallMs), mark("stall"), DurationCell(c.DurationS))
}
