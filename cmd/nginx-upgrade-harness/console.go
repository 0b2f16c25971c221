package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// printSummary writes the closing table of a run: a row per scenario run,
// aligned whatever the names' lengths, each followed by its reasons.
func printSummary(w io.Writer, r *record.Report) {
	runs := append(append([]record.Scenario{}, r.Scenarios...), baselineRuns(r)...)
	rows := [][]string{{"SCENARIO", "EXPECT", "VERDICT", "DROPPED", "REQUESTS", "FAILED", "SLOW CUT", "STEPS"}}
	var notes [][]string
	for _, s := range runs {
		ok := 0 // steps whose outcome is what the scenario expects of them
		for _, st := range s.Steps {
			if st.Verified == (st.Expected != "fail") {
				ok++
			}
		}
		name := s.Name
		if s.Repeat > 0 {
			name = fmt.Sprintf("%s #%d", s.Name, s.Repeat)
			if s.Pair == record.PairBaseline {
				name = "base " + name
			}
		}
		verdict := strings.ToUpper(s.Verdict)
		if s.PassWithKnownLoss() {
			verdict += " (known loss)"
		}
		rows = append(rows, []string{name, s.Expect, verdict, fmt.Sprint(s.Dropped),
			fmt.Sprint(s.Requests.Total), fmt.Sprint(s.Requests.Failed), fmt.Sprint(s.Slow.Cut),
			fmt.Sprintf("%d/%d as expected", ok, len(s.Steps))})
		var n []string
		if r.Gate != record.GateBaseline {
			n = s.Reasons
		}
		n = append(append([]string(nil), n...), words.KnownLossLines(&s)...)
		notes = append(notes, n)
	}
	printRows(w, rows, notes)
	if r.Repeat > 1 || r.Baseline != nil {
		rows := [][]string{{"SCENARIO", "PAIR", "RUNS", "REQUESTS", "DROPPED", "PER 10k [95% CI]", "STALL ms min/med/max"}}
		for _, a := range r.Aggregates {
			rate, stall := "—", "—"
			if a.DropsPer10k != nil {
				rate = fmt.Sprintf("%.2f [%.2f, %.2f]", *a.DropsPer10k, a.CI95.Low, a.CI95.High)
			}
			if a.StallMs != nil {
				stall = fmt.Sprintf("%.0f/%.0f/%.0f", a.StallMs.Min, a.StallMs.Median, a.StallMs.Max)
			}
			rows = append(rows, []string{a.Scenario, a.Pair, fmt.Sprintf("%d/%d", a.Runs, a.Planned),
				fmt.Sprint(a.Requests), fmt.Sprint(a.Dropped), rate, stall})
		}
		printRows(w, rows, nil)
	}
	for _, c := range r.Comparisons {
		fmt.Fprintf(w, "\n%s against the baseline: %s\n", c.Scenario, strings.ToUpper(c.Verdict))
		for _, reason := range c.Reasons {
			fmt.Fprintf(w, "    - %s\n", reason)
		}
	}
	fmt.Fprintf(w, "\nverdict: %s (%d pass%s, %d fail, %d error; gate: %s)\n", strings.ToUpper(r.Verdict), r.Counts.Pass, words.KnownLossNote(r), r.Counts.Fail, r.Counts.Error, r.Gate)
}

// printRows prints a table after a blank line: a heading row, then each
// row with its notes, if any, under it ("    - note").
func printRows(w io.Writer, rows [][]string, notes [][]string) {
	fmt.Fprintln(w)
	for i, line := range table(rows) {
		fmt.Fprintln(w, line)
		if i > 0 && i-1 < len(notes) {
			for _, n := range notes[i-1] {
				fmt.Fprintf(w, "    - %s\n", n)
			}
		}
	}
}

// table lays rows out in columns two spaces apart, a string per row. The
// rows go through tabwriter on their own so that lines printed between
// them (a scenario's reasons) do not split the table into blocks that
// align each on its own.
func table(rows [][]string) []string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return lines
}

func baselineRuns(r *record.Report) []record.Scenario {
	if r.Baseline == nil {
		return nil
	}
	return r.Baseline.Scenarios
}

// console prints progress on stderr: a time-stamped line per step, phase and
// load summary — plain lines, the same in a terminal and in a CI log — and,
// on a terminal only, the running scenario's status line (its phase,
// requests and failures so far, how long it has run) redrawn in place.
type console struct {
	mu       sync.Mutex
	w        io.Writer
	start    time.Time
	terminal bool
	width    int  // the terminal's columns; a status line longer would wrap and could not be redrawn
	drawn    bool // a status line is on screen
	// started is when each scenario's trial began (its container started),
	// by name: the status line's elapsed time.
	started map[string]time.Time
}

func newConsole(w io.Writer) *console {
	c := &console{w: w, start: time.Now(), started: map[string]time.Time{}}
	c.terminal, c.width = isTerminal(w)
	return c
}

// isTerminal tells whether w is a terminal a person watches, and its width.
// CI=true (what CI services set) counts as no terminal: a CI log that
// allocates a pseudo-terminal keeps every redraw of a status line.
func isTerminal(w io.Writer) (bool, int) {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("CI") == "true" || os.Getenv("TERM") == "dumb" {
		return false, 0
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false, 0
	}
	width := 100
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	return true, width
}

// Line prints one progress line (it replaces the status line, if any).
func (c *console) Line(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drawn {
		fmt.Fprint(c.w, "\r\033[K")
		c.drawn = false
	}
	line := fmt.Sprintf(format, args...)
	// The runner says "NAME: starting nginx …" as each trial begins: the
	// scenario's clock starts there (a repeat of the same name restarts it).
	if name, rest, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(rest, "starting nginx") {
		c.started[name] = time.Now()
	}
	fmt.Fprintf(c.w, "[%6.1fs] %s\n", time.Since(c.start).Seconds(), line)
}

// Live redraws the status line of the running scenario; nil when stderr is
// not a terminal (the plain lines say everything a log needs).
func (c *console) Live() func(string) {
	if !c.terminal {
		return nil
	}
	return func(line string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		name, rest, _ := strings.Cut(line, " ")
		t0, ok := c.started[name]
		if !ok {
			t0 = time.Now()
			c.started[name] = t0
		}
		s := fmt.Sprintf("[%6.1fs] %s %s %s", time.Since(c.start).Seconds(), name, time.Since(t0).Round(100*time.Millisecond), rest)
		fmt.Fprintf(c.w, "\r\033[K%s", fit(s, c.width-1))
		c.drawn = true
	}
}

// fit cuts s to n characters, an ellipsis marking the cut.
func fit(s string, n int) string {
	if n <= 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// openCommand is the command that opens a file in a browser here.
func openCommand(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	opener := "xdg-open"
	if runtime.GOOS == "darwin" {
		opener = "open"
	}
	return opener + " " + path
}

// printReportPath ends a run's console: where the report is, and the
// command that opens its page.
func printReportPath(w io.Writer, dir, also string) {
	if also != "" {
		also = " (" + also + ")"
	}
	fmt.Fprintf(w, "report: %s%s\nopen it: %s\n", filepath.Join(dir, "report.md"), also, openCommand(filepath.Join(dir, "report.html")))
}
