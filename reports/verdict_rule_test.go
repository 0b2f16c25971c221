package reports

import (
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/tsenart/vegeta/v12/lib"
)

// The verdict rule when a premise failed: a premise gates a pass, it cannot
// un-see a loss. Each case is a hand-written record of one combination of
// expectation, premise and losses.

// thinBothSets makes the load miss its rate in both-sets (one request in
// four: 25 req/s of 100), a premise failure of the measurement.
func thinBothSets(f *fixture) {
	f.results = slices.DeleteFunc(f.results, func(r vegeta.Result) bool {
		ms := analysis.DurationToMs(r.Timestamp.Sub(testStart))
		return ms >= 2000 && ms < 4000 && int(ms)%40 != 0
	})
}

const missedRate = "the load did not keep its rate in both-sets"

func TestLossesOutrankFailedPremises(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*fixture)
		verdict string
		want    []string // reasons that must be there (substrings)
		notWant []string // reasons that must not
	}{
		{"zero-drops: server-side drops and a missed rate fail, the premise kept beside them", func(f *fixture) {
			thinBothSets(f)
			f.results = append(f.results, failedWith(4500, 0, "EOF"), failedWith(4510, 0, "EOF"),
				failedWith(4520, 0, "read: connection reset by peer"))
		}, record.VerdictFail, []string{
			"3 requests failed server-side in old-workers-draining (eof: 2, reset: 1)",
			"also: " + missedRate,
		}, nil},
		{"zero-drops: a cut download and a silent load fail", func(f *fixture) {
			thinBothSets(f)
			f.downloads[1].Completed, f.downloads[1].Received, f.downloads[1].Error = false, 1000, "unexpected EOF"
			f.downloads[1].EndMs = 4600
		}, record.VerdictFail, []string{"1 long download cut in old-workers-draining", "also: " + missedRate}, nil},
		{"zero-drops: a close under a written request and an unverified step fail", func(f *fixture) {
			f.events[0].Verified, f.events[0].Error = false, "no second master after 5s"
			f.retries = append(f.retries, record.RetryRecord{Ms: 4500, Written: true, OK: true})
		}, record.VerdictFail, []string{
			"1 request retried by the client after the server closed the connection under them in old-workers-draining",
			"also: step spawn-new-master (USR2 to 9) not verified",
		}, nil},
		{"zero-drops: a missed rate and no loss is an error", thinBothSets, record.VerdictError, []string{missedRate}, []string{"also:"}},
		{"zero-drops: only client timeouts under a missed rate is an error", func(f *fixture) {
			thinBothSets(f)
			f.results = append(f.results, failedWith(4500, 0, "Get \"http://127.0.0.1/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
		}, record.VerdictError, []string{missedRate}, []string{"server-side"}},
		{"zero-drops: a run that could not run fails on what the server lost before it stopped", func(f *fixture) {
			f.errorTxt = "the container exited (OOM killed)"
			f.results = append(f.results, failedWith(4500, 0, "EOF"))
		}, record.VerdictFail, []string{"1 request failed server-side in old-workers-draining (eof: 1)", "also: could not run: the container exited"}, nil},
		{"zero-drops: a run that could not run and lost only to client timeouts is an error", func(f *fixture) {
			f.errorTxt = "the container exited (OOM killed)"
			f.results = append(f.results, failedWith(4500, 0, "Get \"http://127.0.0.1/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
		}, record.VerdictError, []string{"could not run: the container exited"}, []string{"server-side"}},
		{"drops: a positive control with a failed premise stays an error, drops or not", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
			thinBothSets(f)
			f.results = append(f.results, failedWith(4500, 0, "read: connection reset by peer"))
		}, record.VerdictError, []string{missedRate}, []string{"also:"}},
		{"drops: a positive control with its premises holding passes on its drops", func(f *fixture) {
			f.meta.Expect = record.ExpectDrops
			f.meta.ExpectDrops = &record.DropSpec{Phase: "old-workers-draining", Classes: analysis.ServerSide}
			f.results = append(f.results, failedWith(4500, 0, "read: connection reset by peer"))
		}, record.VerdictPass, nil, nil},
		{"zero-drops: drops with every premise holding fail, nothing beside", func(f *fixture) {
			f.results = append(f.results, failedWith(4500, 0, "EOF"))
		}, record.VerdictFail, []string{"1 request failed in old-workers-draining (eof: 1)"}, []string{"also:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := upgradeFixture()
			tc.edit(&f)
			s := buildFixture(t, f)
			if s.Verdict != tc.verdict {
				t.Fatalf("verdict = %s, want %s; reasons: %q", s.Verdict, tc.verdict, s.Reasons)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, w) }) {
					t.Errorf("reasons = %q, want one containing %q", s.Reasons, w)
				}
			}
			for _, w := range tc.notWant {
				if slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, w) }) {
					t.Errorf("reasons = %q, want none containing %q", s.Reasons, w)
				}
			}
			if j := judge.Scenario(s); j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
				t.Errorf("Judge again = %s %q: not recomputable from the record", j.Verdict, j.Reasons)
			}
		})
	}
}
