package reports

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// targetsFixture is the upgrade fixture sent as three targets round-robin
// (http1 and http2), with a few failures and hidden drops placed on them.
func targetsFixture() fixture {
	f := upgradeFixture()
	f.meta.Traffic = []record.TrafficPlan{{Kind: "http1", Profile: "http1", Rate: 70}, {Kind: "http2", Profile: "http2", Rate: 30}}
	f.meta.Targets = []record.TargetPlan{
		{Index: 3, Method: "GET", URL: "https://never.test:8443/", Line: 8, Profiles: []string{"http1", "http2"}},
		{Index: 0, Method: "GET", URL: "http://a.test:8080/", Line: 1, Profiles: []string{"http1"}},
		{Index: 1, Method: "POST", URL: "http://b.test:8080/post", Line: 3, BodyBytes: 5, Profiles: []string{"http1"}},
		{Index: 2, Method: "GET", URL: "https://site.test:8443/", Line: 6, Profiles: []string{"http1", "http2"}},
	}
	urls := []string{"http://a.test:8080/#nuh-target-0", "http://b.test:8080/post#nuh-target-1", "https://site.test:8443/#nuh-target-2"}
	for i := range f.results {
		f.results[i].URL = urls[i%3]
		f.results[i].Attack = "http1"
		if i%3 == 2 && i%2 == 0 {
			f.results[i].Attack = "http2"
		}
		f.results[i].Latency = time.Duration(1+i%3) * time.Millisecond
	}
	// Target 1: two failures in the drain (a reset, a 502); target 2: one
	// unsafe HTTP/2 replay that succeeded; target 0: one HTTP/1.1 replay
	// after a close under the request, one after an idle close (no drop).
	f.results[403] = failedWith(4030, 0, "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")
	f.results[403].URL, f.results[403].Attack = urls[1], "http1"
	f.results[406] = failedWith(4060, 502, "502 Bad Gateway")
	f.results[406].URL, f.results[406].Attack = urls[1], "http1"
	f.retries = []record.RetryRecord{
		{Ms: 4100, EndMs: 4110, Profile: "http1", Method: "GET", URL: urls[0], Attempts: 2, Written: true, OK: true},
		{Ms: 4200, EndMs: 4210, Profile: "http1", Method: "GET", URL: urls[0], Attempts: 2, Written: false, OK: true},
	}
	f.streams = []loadgen.StreamRecord{
		{Ms: 4300, EndMs: 4310, Profile: "http2", Method: "GET", URL: urls[2], Conns: []uint64{1, 2}, Retries: []string{loadgen.RetryUnexplained}, Status: 200, Outcome: loadgen.StreamOK},
		{Ms: 4400, EndMs: 4410, Profile: "http2", Method: "GET", URL: urls[2], Conns: []uint64{1, 2}, Retries: []string{loadgen.RetryGoAway}, Status: 200, Outcome: loadgen.StreamOK},
	}
	return f
}

func TestTargetRows(t *testing.T) {
	s := buildFixture(t, targetsFixture())
	if len(s.Targets) != 4 {
		t.Fatalf("rows %+v, want 4", s.Targets)
	}
	var requests, dropped int
	for _, r := range s.Targets {
		requests += r.Requests
		dropped += r.Dropped
	}
	// Every result is some target's; every drop is some target's.
	if requests != s.Requests.Total || dropped != s.Dropped || dropped != 4 {
		t.Errorf("targets add up to %d requests, %d dropped; the scenario has %d, %d (want 4 dropped)", requests, dropped, s.Requests.Total, s.Dropped)
	}
	never, a, b, site := s.Targets[0], s.Targets[1], s.Targets[2], s.Targets[3]
	if a.Target != "GET http://a.test:8080/" || a.Requests != 267 || a.Dropped != 1 || a.Failed != 0 || a.P50Ms < 0.9 || a.P50Ms > 1.1 {
		t.Errorf("target 0: %+v", a)
	}
	if b.Line != 3 || b.Requests != 267 || b.Failed != 2 || b.Dropped != 2 ||
		!reflect.DeepEqual(b.ByClass, map[string]int{record.ClassReset: 1, record.ClassStatus5xx: 1}) {
		t.Errorf("target 1: %+v", b)
	}
	if site.Requests != 266 || site.Failed != 0 || site.Dropped != 1 || site.P99Ms < 2.9 || site.P99Ms > 3.1 {
		t.Errorf("target 2: %+v", site)
	}
	if never.Requests != 0 || never.P50Ms != 0 {
		t.Errorf("target 3: %+v", never)
	}
	var md bytes.Buffer
	if err := render.WriteMarkdown(&md, &record.Report{Schema: record.Schema, Scenarios: []record.Scenario{*s}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| POST http://b.test:8080/post | 3 | 267 | 265 | 2 | reset: 1, status-5xx: 1 |",
		"| GET https://never.test:8443/ | 8 | 0 | 0 | 0 | — | — | — |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md.String())
		}
	}
	var page bytes.Buffer
	if err := render.WriteHTML(&page, &record.Report{Schema: record.Schema, Scenarios: []record.Scenario{*s}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "<td>POST http://b.test:8080/post</td><td class=\"n\">3</td><td class=\"n\">267</td>") {
		t.Errorf("report.html has no row for target 1")
	}
	// The targets that dropped first.
	if strings.Index(md.String(), "never.test") < strings.Index(md.String(), "site.test") {
		t.Error("report.md does not list the targets that dropped first")
	}
}

func TestTargetRowsAbsentWithoutTargets(t *testing.T) {
	s := buildFixture(t, upgradeFixture())
	if s.Targets != nil {
		t.Errorf("targets %+v without a targets file", s.Targets)
	}
}

func TestShownTargetsBounded(t *testing.T) {
	rows := make([]record.TargetRow, 60)
	for i := range rows {
		rows[i] = record.TargetRow{Index: i}
	}
	rows[55].Dropped = 1
	tt := render.ShownTargets(rows)
	if len(tt.Rows) != render.MaxTargetRows || tt.More != 10 || tt.Rows[0].Index != 55 {
		t.Errorf("shown %d (first %d), more %d", len(tt.Rows), tt.Rows[0].Index, tt.More)
	}
	for i := range rows {
		rows[i].Dropped = 1
	}
	if tt := render.ShownTargets(rows); len(tt.Rows) != 60 || tt.More != 0 {
		t.Errorf("every target that dropped is shown: %d, more %d", len(tt.Rows), tt.More)
	}
}
