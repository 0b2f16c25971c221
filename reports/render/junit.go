package render

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

// WriteJUnit writes the report as JUnit XML, for pipelines that do not run
// Go: one test case per scenario run (named "upgrade", or "upgrade #2" with
// repeats; baseline runs in their own suite) and, with a baseline, one per
// comparison. A fail is a <failure> and an error an <error>, each with the
// reasons as message. With a baseline the comparisons are the gate: a run's
// own verdict is in its output, and only an invalid run is an <error>.
func WriteJUnit(w io.Writer, r *record.Report) error {
	type failure = JUnitFailure
	type testcase = JUnitCase
	type property struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	type testsuite struct {
		Name       string     `xml:"name,attr"`
		Properties []property `xml:"properties>property,omitempty"`
		Tests      int        `xml:"tests,attr"`
		Failures   int        `xml:"failures,attr"`
		Errors     int        `xml:"errors,attr"`
		Cases      []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName xml.Name    `xml:"testsuites"`
		Name    string      `xml:"name,attr"`
		Suites  []testsuite `xml:"testsuite"`
	}
	gateOnRuns := r.Gate != record.GateBaseline
	suite := func(name string, runs []record.Scenario) testsuite {
		ts := testsuite{Name: name}
		for _, s := range runs {
			tc := testcase{Name: s.Name, Classname: name, Time: s.EndMs / 1000}
			if s.Repeat > 0 {
				tc.Name = fmt.Sprintf("%s #%d", s.Name, s.Repeat)
			}
			tc.SystemOut = fmt.Sprintf("%s → %s: verdict %s, %d requests, %d dropped", s.From, s.To, s.Verdict, s.Requests.Total, s.Dropped)
			if s.PassWithKnownLoss() {
				tc.SystemOut += " — a pass with a known loss (run --strict fails it): " + strings.Join(words.KnownLossLines(&s), "; ")
			}
			msg := strings.Join(s.Reasons, "; ")
			switch {
			case s.Verdict == record.VerdictError:
				tc.Error = &failure{Message: msg, Type: "invalid-measurement", Text: strings.Join(s.Reasons, "\n")}
				ts.Errors++
			case s.Verdict == record.VerdictFail && gateOnRuns:
				tc.Failure = &failure{Message: msg, Type: s.Expect, Text: strings.Join(s.Reasons, "\n")}
				ts.Failures++
			case s.Verdict == record.VerdictFail:
				tc.SystemOut += "; judged against the baseline, not on its own: " + msg
			}
			ts.Cases = append(ts.Cases, tc)
		}
		ts.Tests = len(ts.Cases)
		return ts
	}
	doc := testsuites{Name: "nginx-upgrade-harness " + r.From + " → " + r.To}
	main := suite(fmt.Sprintf("%s → %s", r.From, r.To), r.Scenarios)
	// What the specs resolved to, so that a CI archive names the binaries.
	for _, b := range []struct {
		side string
		ref  *record.BuildRef
	}{{"from", r.FromBuild}, {"to", r.ToBuild}} {
		if b.ref == nil {
			continue
		}
		main.Properties = append(main.Properties, property{b.side, b.ref.Spec}, property{b.side + ".exact", b.ref.Exact})
		if b.ref.SHA256 != "" {
			main.Properties = append(main.Properties, property{b.side + ".sha256", b.ref.SHA256})
		}
	}
	doc.Suites = append(doc.Suites, main)
	if r.Baseline != nil {
		doc.Suites = append(doc.Suites, suite(fmt.Sprintf("baseline %s → %s", r.Baseline.From, r.Baseline.To), r.Baseline.Scenarios))
		ts := testsuite{Name: "candidate against baseline"}
		for _, c := range r.Comparisons {
			tc := testcase{Name: c.Scenario + " no worse than baseline", Classname: ts.Name, SystemOut: c.Test}
			msg := strings.Join(c.Reasons, "; ")
			switch c.Verdict {
			case record.VerdictFail:
				tc.Failure = &failure{Message: msg, Type: "worse-than-baseline", Text: strings.Join(c.Reasons, "\n")}
				ts.Failures++
			case record.VerdictError:
				tc.Error = &failure{Message: msg, Type: "invalid-measurement", Text: strings.Join(c.Reasons, "\n")}
				ts.Errors++
			default:
				tc.SystemOut += ": " + msg
			}
			ts.Cases = append(ts.Cases, tc)
		}
		ts.Tests = len(ts.Cases)
		doc.Suites = append(doc.Suites, ts)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// JUnitFailure is a JUnit <failure> or <error>, what a run's and a
// compare's JUnit files share with JUnitCase.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnitCase is a JUnit <testcase>.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	Error     *JUnitFailure `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}
