package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// TestSummaryAlignedForEveryScenarioName prints the closing table for a
// run of the whole catalogue, and for faulted and repeated names longer
// still: every column must start where its heading does.
func TestSummaryAlignedForEveryScenarioName(t *testing.T) {
	r := &record.Report{Verdict: record.VerdictPass, Gate: "scenarios"}
	for _, sc := range scenarios.Catalogue() {
		r.Scenarios = append(r.Scenarios, record.Scenario{Name: sc.Name, Expect: sc.Expect, Verdict: record.VerdictPass,
			Dropped: 12345, Requests: record.Requests{Total: 1234567, Failed: 3}})
	}
	r.Scenarios = append(r.Scenarios,
		record.Scenario{Name: "upgrade+kill-old-master@stop-old-workers", Expect: "drops", Verdict: record.VerdictFail,
			Reasons: []string{"a reason line, printed under its row"}},
		record.Scenario{Name: "reload-broken-config", Expect: "zero-drops", Verdict: record.VerdictError, Repeat: 12,
			Pair: record.PairBaseline})
	var b bytes.Buffer
	printSummary(&b, r)
	rows := checkAligned(t, b.String(), []string{"EXPECT", "VERDICT", "DROPPED", "REQUESTS", "FAILED", "SLOW CUT", "STEPS"})
	if want := len(r.Scenarios); rows != want {
		t.Errorf("got %d rows, want %d:\n%s", rows, want, b.String())
	}
	if !strings.Contains(b.String(), "upgrade+kill-old-master@stop-old-workers  drops") {
		t.Errorf("the longest name is not followed by its row:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "\n    - a reason line, printed under its row\n") {
		t.Errorf("the reason is not under its row:\n%s", b.String())
	}
}

// TestCompareAndMatrixTablesAligned: the same for compare's table and the
// matrix's, whose names (a user's script, a cell's slug) have no bound.
func TestCompareAndMatrixTablesAligned(t *testing.T) {
	var b bytes.Buffer
	printCompare(&b, &reports.CompareReport{Procedures: []reports.Procedure{
		{Name: "manual", Build: "good", Init: "docker-init", Outcome: "upgraded"},
		{Name: "script:/home/someone/bin/upgrade-nginx-the-long-way.sh", Build: "broken", Init: "docker-init", Outcome: "kept-old",
			Error: "exit 1"},
	}})
	if rows := checkAligned(t, b.String(), []string{"BUILD", "INIT", "OUTCOME", "DROPPED", "EXIT", "FINAL"}); rows != 2 {
		t.Errorf("compare: got %d rows, want 2:\n%s", rows, b.String())
	}
	b.Reset()
	r := &reports.MatrixReport{Verdict: record.VerdictPass}
	for _, id := range []string{"a", "debian-bookworm-security_one-worker_http1-keepalive-http2_kill-old-master-stop-old-workers_upgrade"} {
		c := reports.CellResult{Verdict: record.VerdictFail, Reasons: []string{"why"}, Engine: "unix:///var/run/docker.sock"}
		c.ID = id
		r.Cells = append(r.Cells, c)
	}
	printMatrixSummary(&b, r)
	if rows := checkAligned(t, b.String(), []string{"VERDICT", "DROPPED", "STALL ms", "DURATION", "ENGINE"}); rows != 2 {
		t.Errorf("matrix: got %d rows, want 2:\n%s", rows, b.String())
	}
}

// checkAligned checks that in every row of the table out prints, each of
// cols starts where its heading does, and returns how many rows it read.
func checkAligned(t *testing.T, out string, cols []string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := lines[0]
	rows := 0
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "    - ") || l == "" {
			continue
		}
		if strings.HasPrefix(l, "verdict:") {
			break
		}
		rows++
		row := []rune(l) // columns are counted in characters, as a terminal shows them
		for _, c := range cols {
			at := utf8.RuneCountInString(header[:strings.Index(header, c)])
			if at <= 0 || at >= len(row) || row[at-1] != ' ' || row[at] == ' ' {
				t.Errorf("column %s starts at %d in the heading, not in the row:\n%s\n%s", c, at, header, l)
				break
			}
		}
	}
	return rows
}

// TestLiveLineOnATerminalOnly gives the console a real terminal (a
// pseudo-terminal): it draws a status line there, and not under CI=true,
// nor on a pipe.
func TestLiveLineOnATerminalOnly(t *testing.T) {
	tty := openPTY(t)
	t.Setenv("TERM", "xterm")
	t.Setenv("CI", "")
	if newConsole(tty).Live() == nil {
		t.Error("no status line on a terminal")
	}
	t.Setenv("CI", "true")
	if newConsole(tty).Live() != nil {
		t.Error("a status line is drawn under CI=true")
	}
	t.Setenv("CI", "")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if newConsole(w).Live() != nil {
		t.Error("a status line is drawn on a pipe")
	}
}

// openPTY opens a pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

func TestFitCutsToTheWidth(t *testing.T) {
	if got := fit("upgrade [both-sets] 1234 requests", 12); got != "upgrade [bo…" {
		t.Errorf("fit: got %q", got)
	}
	if got := fit("short", 80); got != "short" {
		t.Errorf("fit: got %q", got)
	}
}

// A pass with a known loss reads apart from a clean pass in the closing
// table: its verdict cell, the loss under its row, the count at the end.
func TestSummaryShowsAKnownLoss(t *testing.T) {
	r := &record.Report{Verdict: record.VerdictPass, Gate: "scenarios", Counts: record.Counts{Pass: 2}}
	r.Scenarios = []record.Scenario{
		{Name: "upgrade", Expect: "zero-drops", Verdict: record.VerdictPass},
		{Name: "reuseport", Expect: "zero-drops", Verdict: record.VerdictPass, Dropped: 5,
			KnownLossSeen: []record.KnownLossSeen{{Name: scenarios.KnownLossQueueReset, Phase: "one-worker", Count: 5,
				ByClass: map[string]int{"reset": 5}, Witness: map[string]int{"never-reached-a-worker": 5}, Why: "queued", Remedy: "migrate"}}},
	}
	var b bytes.Buffer
	printSummary(&b, r)
	out := b.String()
	for _, want := range []string{
		"reuseport  zero-drops  PASS (known loss)",
		"    - known loss: 5 in one-worker (reset: 5; nginx's log: never-reached-a-worker: 5), reuseport-queue-reset — queued; remedy: migrate\n",
		"verdict: PASS (2 pass (1 with a known loss), 0 fail, 0 error; gate: scenarios)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "known loss") != 3 {
		t.Errorf("the clean pass mentions a known loss:\n%s", out)
	}
}
