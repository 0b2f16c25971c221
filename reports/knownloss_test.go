package reports

import (
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// queueReset is a known loss like reuseport's: resets in
// old-workers-draining, each never-reached-a-worker in nginx's log, at most 5.
var queueReset = record.KnownLoss{Name: "queue-reset", Phases: []string{"old-workers-draining"}, Classes: []string{record.ClassReset},
	Witness: []string{record.WitnessNever}, Max: 5, Why: "the queue of a socket nobody accepts on any more", Remedy: "tcp_migrate_req=1"}

const resetByPeer = "read: connection reset by peer"

// resetsAt replaces the requests at the given indices of the fixture's
// steady load (one every 10 ms) with resets.
func resetsAt(f *fixture, idx ...int) {
	for _, i := range idx {
		f.results[i] = failedWith(float64(i*10), 0, resetByPeer)
	}
}

// In old-workers-draining (4000–6000 ms): requests 400–599.
func TestKnownLosses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*fixture)
		witness bool // write nginx's log (a dropped request is never logged)
		verdict string
		seen    int      // requests the known loss reported seen
		want    []string // reasons that must be there (substrings)
	}{
		{"the known loss, of its class, in its phase: pass with it seen", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 450, 451, 452)
		}, false, record.VerdictPass, 3, nil},
		{"the same, reconciled by nginx's log as never reaching a worker: pass", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 450, 451, 452)
		}, true, record.VerdictPass, 3, nil},
		{"the same count in another phase: fail", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 250, 251, 252) // both-sets
		}, false, record.VerdictFail, 0, []string{"3 requests failed in both-sets (reset: 3)"}},
		{"the same count of another class: fail, saying why it is not the known loss", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			for _, i := range []int{450, 451, 452} {
				f.results[i] = failedWith(float64(i*10), 0, "EOF")
			}
		}, false, record.VerdictFail, 0, []string{"3 requests failed in old-workers-draining (eof: 3)", "not the known loss queue-reset: 3 failed with eof"}},
		{"a known class beside one it does not show: the whole phase fails", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 450, 451)
			f.results[452] = failedWith(4520, 0, "EOF")
		}, false, record.VerdictFail, 0, []string{"3 requests failed in old-workers-draining (reset: 2, eof: 1)"}},
		{"over the bound: fail", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 450, 451, 452, 453, 454, 455)
		}, false, record.VerdictFail, 0, []string{"6 requests failed in old-workers-draining", "above the bound of 5 of the known loss queue-reset"}},
		{"strict: the known loss fails", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			f.meta.Strict = true
			resetsAt(f, 450, 451, 452)
		}, false, record.VerdictFail, 3, []string{"3 requests failed in old-workers-draining (reset: 3)", "the known loss queue-reset, failed because the run is strict"}},
		{"a replay where the known loss has none: fail", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			f.retries = append(f.retries, record.RetryRecord{Ms: 4500, Written: true, OK: true})
		}, false, record.VerdictFail, 0, []string{"retried by the client", "it has none"}},
		{"a replay the close race allows: pass", func(f *fixture) {
			race := queueReset
			race.Name, race.Retried, race.Classes = "close-race", true, []string{record.ClassEOF, record.ClassReset}
			f.meta.KnownLosses = []record.KnownLoss{race}
			f.retries = append(f.retries, record.RetryRecord{Ms: 4500, Written: true, OK: true})
		}, false, record.VerdictPass, 1, nil},
		{"a cut download in the known loss's phase: fail", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			resetsAt(f, 450)
			f.downloads[1].Completed, f.downloads[1].Received, f.downloads[1].Error = false, 1000, "unexpected EOF"
			f.downloads[1].EndMs = 4600
		}, false, record.VerdictFail, 0, []string{"1 long download cut in old-workers-draining"}},
		{"no known loss declared: a reset fails as ever", func(f *fixture) {
			resetsAt(f, 450)
		}, false, record.VerdictFail, 0, []string{"1 request failed in old-workers-draining (reset: 1)"}},
		{"a known loss under a failed premise: error, not fail", func(f *fixture) {
			f.meta.KnownLosses = []record.KnownLoss{queueReset}
			thinBothSets(f)
			resetsAt(f, 450)
		}, false, record.VerdictError, 1, []string{missedRate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := upgradeFixture()
			tc.edit(&f)
			var s *record.Scenario
			if tc.witness {
				// A request that never reached a worker has no log line.
				skip := map[string]bool{}
				for i, r := range f.results {
					if r.Error != "" {
						skip[loadgen.RequestID("load", uint64(i))] = true
					}
				}
				s = witnessScenario(t, f, skip)
				if s.Witness == nil || !s.Witness.Present {
					t.Fatalf("witness not read: %+v", s.Witness)
				}
			} else {
				s = buildFixture(t, f)
			}
			if s.Verdict != tc.verdict {
				t.Fatalf("verdict = %s, want %s; reasons: %q", s.Verdict, tc.verdict, s.Reasons)
			}
			n := 0
			for _, k := range s.KnownLossSeen {
				n += k.Count
			}
			if n != tc.seen {
				t.Errorf("known loss seen %d (%+v), want %d", n, s.KnownLossSeen, tc.seen)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, w) }) {
					t.Errorf("reasons = %q, want one containing %q", s.Reasons, w)
				}
			}
			if j := judge.Scenario(s); j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
				t.Errorf("Judge again = %s %q: not recomputable from the record", j.Verdict, j.Reasons)
			}
		})
	}
}

// A drop that nginx's log shows a worker read is not the queue's reset.
func TestKnownLossNeedsTheWitnessClass(t *testing.T) {
	f := upgradeFixture()
	f.meta.KnownLosses = []record.KnownLoss{queueReset}
	resetsAt(&f, 450)
	s := witnessScenario(t, f, nil) // logged: answered-but-lost
	if s.Verdict != record.VerdictFail {
		t.Fatalf("verdict = %s, want fail; reasons %q", s.Verdict, s.Reasons)
	}
	if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, "as answered-but-lost") }) {
		t.Errorf("reasons %q do not name the log's class", s.Reasons)
	}
}

// A pass with a known loss is shown apart from a clean pass in every
// renderer, with the loss's count, class, phase, why and remedy.
func TestKnownLossRendered(t *testing.T) {
	f := upgradeFixture()
	f.meta.KnownLosses = []record.KnownLoss{queueReset}
	resetsAt(&f, 450, 451)
	run := t.TempDir()
	writeFixture(t, run, "upgrade", f)
	r, err := BuildRun(run)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != record.VerdictPass || !r.Scenarios[0].PassWithKnownLoss() {
		t.Fatalf("verdict %s, known loss %+v", r.Verdict, r.Scenarios[0].KnownLossSeen)
	}
	want := "known loss: 2 in old-workers-draining (reset: 2), queue-reset — the queue of a socket nobody accepts on any more; remedy: tcp_migrate_req=1"
	for _, tc := range []struct {
		name  string
		write func(*strings.Builder) error
		also  []string
	}{
		{"markdown", func(b *strings.Builder) error { return render.WriteMarkdown(b, r) }, []string{"✓ pass, known loss", "1 pass (1 with a known loss)", "run --strict fails them"}},
		{"junit", func(b *strings.Builder) error { return render.WriteJUnit(b, r) }, []string{"a pass with a known loss (run --strict fails it)"}},
		{"html", func(b *strings.Builder) error { return render.WriteHTML(b, r) }, []string{"pass</span>, known loss"}},
	} {
		var b strings.Builder
		if err := tc.write(&b); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		line := want
		if tc.name == "markdown" {
			line = render.MdCell(want)
		}
		for _, w := range append([]string{line}, tc.also...) {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s lacks %q", tc.name, w)
			}
		}
	}
	// A clean pass says none of it.
	var b strings.Builder
	clean := t.TempDir()
	writeFixture(t, clean, "upgrade", upgradeFixture())
	rc, err := BuildRun(clean)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.WriteMarkdown(&b, rc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "known loss") {
		t.Errorf("a clean pass mentions a known loss")
	}
}
