package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// compareRun is one procedure run of a hand-written compare record.
type compareRun struct {
	build string
	exit  int
	edit  func(*fixture) // from a clean upgrade that ended on the new binary
}

// writeCompare writes a compare run's records: compare.json and a
// directory per run, each a scenario's record plus procedure.json.
func writeCompare(t *testing.T, e *CompareExpect, repeat int, runs []compareRun) string {
	t.Helper()
	dir := t.TempDir()
	rec := CompareRecord{From: "a", To: "b", Broken: "c", Expect: e, Repeat: repeat}
	for i, r := range runs {
		f := upgradeFixture()
		if r.build == BuildBroken {
			f.final.ServingBinary, f.final.ExpectedBinary = "old", "old"
		}
		if r.edit != nil {
			r.edit(&f)
		}
		name := "script-up.sh-" + r.build + "-" + string(rune('a'+i))
		run := CompareRun{Dir: name, Procedure: "script-up.sh", Spec: "script:up.sh", Build: r.build}
		if repeat > 1 {
			run.Repeat = i%repeat + 1
		}
		rec.Runs = append(rec.Runs, run)
		sdir := writeFixture(t, dir, name, f)
		data, _ := json.Marshal(ProcedureRecord{Procedure: "script-up.sh", Spec: "script:up.sh", Build: r.build, ExitCode: r.exit,
			DurationMs: 100, Init: record.InitDocker, BinaryOnDisk: "new"})
		if err := os.WriteFile(filepath.Join(sdir, ProcedureFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, CompareFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCompareExpectations(t *testing.T) {
	lose := func(f *fixture) { f.results = append(f.results, failedWith(4500, 0, "EOF")) }
	down := func(f *fixture) { f.final.Masters, f.final.Serving, f.final.ServingBinary = 0, false, "none" }
	for _, tc := range []struct {
		name    string
		expect  string
		repeat  int
		runs    []compareRun
		verdict string
		want    []string // reasons of the summary rows (substrings)
	}{
		{"default: upgraded clean, kept-old with a non-zero exit: pass", "default", 1,
			[]compareRun{{BuildGood, 0, nil}, {BuildBroken, 1, nil}}, record.VerdictPass, nil},
		{"default: the good build lost a request: fail", "default", 1,
			[]compareRun{{BuildGood, 0, lose}, {BuildBroken, 1, nil}}, record.VerdictFail, []string{"1 request dropped (eof: 1)"}},
		{"default: a procedure that took nginx down: fail, the row named", "default", 1,
			[]compareRun{{BuildGood, 0, down}, {BuildBroken, 1, nil}}, record.VerdictFail, []string{"ended down, expected upgraded"}},
		{"default: a broken build the procedure called a success: fail", "default", 1,
			[]compareRun{{BuildGood, 0, nil}, {BuildBroken, 0, nil}}, record.VerdictFail, []string{"exited 0 with a build that cannot start"}},
		{"default: the load missed its rate and nothing else: error", "default", 1,
			[]compareRun{{BuildGood, 0, thinBothSets}, {BuildBroken, 1, nil}}, record.VerdictError, []string{missedRate}},
		{"a missed rate does not hide a miss: fail, the premise beside it", "default", 1,
			[]compareRun{{BuildGood, 0, func(f *fixture) { thinBothSets(f); down(f) }}, {BuildBroken, 1, nil}}, record.VerdictFail,
			[]string{"ended down", "also: " + missedRate}},
		{"a packager who accepts a restart and its drops", "good=upgraded|kept-old+drops", 1,
			[]compareRun{{BuildGood, 0, lose}, {BuildBroken, 1, nil}}, record.VerdictPass, nil},
		{"repeat: an outcome that varies is flaky", "default", 2,
			[]compareRun{{BuildGood, 0, nil}, {BuildGood, 0, down}, {BuildBroken, 1, nil}, {BuildBroken, 1, nil}}, record.VerdictFail,
			[]string{"flaky: down in 1 run (0 dropped), upgraded in 1 run (0 dropped)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseCompareExpect(tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			c, err := BuildCompare(writeCompare(t, e, tc.repeat, tc.runs))
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, s := range c.Summary {
				reasons = append(reasons, s.Reasons...)
			}
			if c.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s; reasons %q", c.Verdict, tc.verdict, reasons)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, w) }) {
					t.Errorf("reasons %q, want one containing %q", reasons, w)
				}
			}
			var md, junit strings.Builder
			if err := WriteCompareMarkdown(&md, c); err != nil {
				t.Fatal(err)
			}
			if err := WriteCompareJUnit(&junit, c); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(md.String(), map[string]string{record.VerdictPass: "✓ PASS", record.VerdictFail: "✗ FAIL", record.VerdictError: "⚠ ERROR"}[tc.verdict]) {
				t.Errorf("report.md does not open with the verdict:\n%s", md.String())
			}
			if !strings.Contains(md.String(), "expected: upgraded") && tc.expect == "default" {
				t.Errorf("report.md does not say what was expected:\n%s", md.String())
			}
			failures := strings.Count(junit.String(), "<failure")
			if (tc.verdict == record.VerdictFail) != (failures > 0) {
				t.Errorf("JUnit has %d failures for a %s:\n%s", failures, tc.verdict, junit.String())
			}
		})
	}
}

// Without --expect, compare is a measurement: no verdict, no summary.
func TestCompareWithoutExpectHasNoVerdict(t *testing.T) {
	c, err := BuildCompare(writeCompare(t, nil, 1, []compareRun{{BuildGood, 0, nil}, {BuildBroken, 0, nil}}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Verdict != "" || c.Counts != nil || len(c.Summary) != 0 || c.Procedures[0].Judged != "" {
		t.Errorf("a measurement judged: verdict %q, summary %+v", c.Verdict, c.Summary)
	}
}

func TestParseCompareExpect(t *testing.T) {
	e, err := ParseCompareExpect("good=restarted|upgraded+drops,broken=kept-old+exit0")
	if err != nil {
		t.Fatal(err)
	}
	if g := e.Builds[BuildGood]; !slices.Equal(g.Outcomes, []string{OutcomeRestarted, OutcomeUpgraded}) || !g.Drops || g.NonZeroExit {
		t.Errorf("good: %+v", g)
	}
	if b := e.Builds[BuildBroken]; b.NonZeroExit || b.Drops {
		t.Errorf("broken: %+v", b)
	}
	for spec, want := range map[string]string{
		"good":               "want default or BUILD=OUTCOME",
		"new=upgraded":       `unknown build "new"`,
		"good=fine":          `unknown outcome "fine"`,
		"good=upgraded+lots": "unknown modifier +lots",
	} {
		if _, err := ParseCompareExpect(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCompareExpect(%q) = %v, want %q", spec, err, want)
		}
	}
}
