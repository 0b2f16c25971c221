package reports

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
	"github.com/tsenart/vegeta/v12/lib"
)

// The stall rule: a stall above the limit is nginx's (fail) only when the
// observer was healthy across more than the limit of it; otherwise the
// machine's (error), with the evidence named. Each case is a hand-written
// record: the upgrade fixture, a stall in old-workers-draining (4.0–6.0 s),
// and the observer's windows.

// healthyWindows is a quiet observer's record over the fixture's 8 s.
func healthyWindows() []loadgen.ObserverRecord {
	var out []loadgen.ObserverRecord
	for k := 0; k < 82; k++ {
		out = append(out, loadgen.ObserverRecord{StartMs: float64(k) * 100, EndMs: float64(k+1) * 100,
			LateMs: 2.1, Hits: 10, HiccupMs: 1.2, ProbeMs: 0.9, Probes: 5})
	}
	return out
}

// blindFrom makes the observer unhealthy over [fromMs, toMs): the machine
// held the load 640 ms and the control probe 580 ms.
func blindFrom(recs []loadgen.ObserverRecord, fromMs, toMs float64) []loadgen.ObserverRecord {
	for i := range recs {
		if recs[i].StartMs >= fromMs && recs[i].EndMs <= toMs {
			recs[i].LateMs, recs[i].ProbeMs, recs[i].HiccupMs = 640, 580, 35
		}
	}
	return recs
}

// heldFrom makes nginx hold every request sent in [fromMs, toMs) until toMs:
// a gap without responses, and a longest request, of toMs − fromMs.
func heldFrom(f *fixture, fromMs, toMs float64) {
	for i := range f.results {
		ms := analysis.DurationToMs(f.results[i].Timestamp.Sub(testStart))
		if ms >= fromMs && ms < toMs {
			f.results[i].Latency = analysis.MsToDuration(toMs - ms)
		}
	}
}

// slowEvery makes one request in ten sent in [fromMs, toMs) wait latency,
// the others answered at once: long requests, no gap.
func slowEvery(f *fixture, fromMs, toMs float64, latency time.Duration) {
	for i := range f.results {
		ms := analysis.DurationToMs(f.results[i].Timestamp.Sub(testStart))
		if ms >= fromMs && ms < toMs && int(ms)%100 == 0 {
			f.results[i].Latency = latency
		}
	}
}

type observed struct {
	fixture
	observer []loadgen.ObserverRecord // nil: no observer.jsonl
	plan     bool                     // meta.json names the observer
	faults   []record.FaultRecord
}

func buildObserved(t *testing.T, o observed) *record.Scenario {
	t.Helper()
	if o.plan {
		o.meta.Observer = record.NewObserverPlan()
	}
	dir := writeFixture(t, t.TempDir(), "scenario", o.fixture)
	if o.observer != nil {
		writeJSONLFile(t, filepath.Join(dir, loadgen.ObserverFile), o.observer)
	}
	if o.faults != nil {
		writeJSONLFile(t, filepath.Join(dir, record.FaultsFile), o.faults)
	}
	s, _, err := BuildScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStallIsNginxsOnlyWhenTheObserverSaw(t *testing.T) {
	const stalled = "stalled 1500 ms in old-workers-draining"
	for _, tc := range []struct {
		name    string
		edit    func(*observed)
		verdict string
		want    []string
		notWant []string
	}{
		{"a stall the observer saw whole is nginx's: fail", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"a stall the observer was blind to is the machine's: error, the evidence named", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.observer = blindFrom(o.observer, 4200, 5700)
		}, record.VerdictError, []string{"the load ran 640 ms late and the control probe waited 580 ms: the machine, not nginx",
			"the longest request of 1500 ms in old-workers-draining (4200 ms–5700 ms)",
			"the longest gap without a response of 1500 ms"}, []string{stalled}},
		{"blind for 400 ms of a 1.5 s stall: 1.1 s seen, above the limit: fail", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.observer = blindFrom(o.observer, 4200, 4600)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"blind for 600 ms of a 1.5 s stall: 900 ms seen, not above the limit: error", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.observer = blindFrom(o.observer, 4600, 5200)
		}, record.VerdictError, []string{"healthy for only 900 ms of it"}, []string{stalled}},
		{"a loss stays a fail beside a blind stall, the stall kept as also", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.observer = blindFrom(o.observer, 4200, 5700)
			o.results = append(o.results, failedWith(6500, 0, "EOF"))
		}, record.VerdictFail, []string{"1 request failed in after-quit (eof: 1)", "also: the longest request of 1500 ms"}, []string{stalled}},
		{"a silent window stays a premise (error) whatever the observer says", func(o *observed) {
			o.results = slices.DeleteFunc(o.results, func(r vegeta.Result) bool {
				ms := analysis.DurationToMs(r.Timestamp.Sub(testStart))
				return ms >= 500 && ms < 700
			})
		}, record.VerdictError, []string{"the load sent nothing in 2 windows"}, nil},
		{"the control probe missed answers: blind", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			for i := range o.observer {
				if o.observer[i].StartMs >= 4200 && o.observer[i].EndMs <= 5700 {
					o.observer[i].ProbeMissed, o.observer[i].Probes = 1, 0
				}
			}
		}, record.VerdictError, []string{"15 control probes went unanswered"}, []string{stalled}},
		{"the observer's record stops before the stall: blind, said so", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.observer = o.observer[:40]
		}, record.VerdictError, []string{"the observer's record has nothing for 1500 ms of it"}, []string{stalled}},
		{"a stall the observer saw late through a supplement line is blind", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			for k := 42; k < 57; k++ {
				o.observer = append(o.observer, loadgen.ObserverRecord{StartMs: float64(k) * 100, EndMs: float64(k+1) * 100,
					LateMs: 900, Hits: 1, Supplement: true})
			}
		}, record.VerdictError, []string{"the load ran 900 ms late: the machine"}, []string{stalled}},
		{"a stall that began in steady, before the first step: the control stalled, not the upgrade: error", func(o *observed) {
			heldFrom(&o.fixture, 600, 2100)
		}, record.VerdictError, []string{"stalled 1500 ms from 600 ms, before the first step was sent at 2000 ms"}, []string{"stalled 1500 ms in steady ("}},
		{"the same stall begun just after the first step: nginx's, fail", func(o *observed) {
			heldFrom(&o.fixture, 2050, 3550)
		}, record.VerdictFail, []string{"stalled 1500 ms in both-sets"}, []string{"before the first step"}},
		{"a record made before the observer: the stall fails as before, with a note", func(o *observed) {
			heldFrom(&o.fixture, 4200, 5700)
			o.plan, o.observer = false, nil
		}, record.VerdictFail, []string{stalled}, nil},
		{"an observer planned and not recorded: error, never a silent skip", func(o *observed) {
			o.observer = nil
		}, record.VerdictError, []string{"observer.jsonl missing"}, nil},
		{"an observer file with no window: error", func(o *observed) {
			o.observer = []loadgen.ObserverRecord{}
		}, record.VerdictError, []string{"observer.jsonl holds no window"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := observed{fixture: upgradeFixture(), observer: healthyWindows(), plan: true}
			tc.edit(&o)
			s := buildObserved(t, o)
			checkVerdict(t, s, tc.verdict, tc.want, tc.notWant)
			if !o.plan && !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "before the observer") }) {
				t.Errorf("notes = %q, want one saying the record was made before the observer", s.Notes)
			}
		})
	}
}

// Faults that make nginx itself stall strike nginx's container, not the
// harness's process: the control probe on the host's 127.0.0.1, the pacer and
// the runtime are unaffected, so their stalls stay nginx's — a fail. Each
// record holds the fault and the stall it makes, as measured in chaos runs.
func TestFaultsThatStallNginxStayFails(t *testing.T) {
	for _, tc := range []struct {
		fault   string
		pattern func(*fixture)
		want    string
	}{
		// docker pause of nginx's container: nothing answers until the thaw.
		{"freeze", func(f *fixture) { heldFrom(f, 4300, 5800) }, "stalled 1500 ms in old-workers-draining"},
		// SIGSTOP of the old master: its workers' accept queue waits.
		{"stop-old-master", func(f *fixture) { heldFrom(f, 4500, 5700) }, "stalled 1200 ms in old-workers-draining"},
		// slow clients hold the workers' connections: some requests wait.
		{"slow-clients", func(f *fixture) { slowEvery(f, 4100, 5500, 1300*time.Millisecond) }, "stalled 1300 ms in old-workers-draining"},
		// netem on the container's loopback: every request delayed.
		{"netem", func(f *fixture) { slowEvery(f, 4100, 5800, 1100*time.Millisecond) }, "stalled 1100 ms in old-workers-draining"},
		// the container's CPU quota cut: nginx answers late.
		{"cpu-starve", func(f *fixture) { heldFrom(f, 4400, 5650) }, "stalled 1250 ms in old-workers-draining"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			o := observed{fixture: upgradeFixture(), observer: healthyWindows(), plan: true}
			tc.pattern(&o.fixture)
			healed := 5900.0
			o.faults = []record.FaultRecord{{Name: tc.fault, Step: "stop-old-workers", InjectedMs: 4050, HealedMs: &healed, Outcome: "injected and healed"}}
			s := buildObserved(t, o)
			checkVerdict(t, s, record.VerdictFail, []string{tc.want}, []string{"the machine"})
			if len(s.Faults) != 1 || s.Faults[0].Name != tc.fault {
				t.Errorf("faults = %+v, want the %s record", s.Faults, tc.fault)
			}
		})
	}
}

// The stall's span is in the phase, and the observer's summary in the
// scenario, so that report.json alone re-judges it.
func TestStallSpanAndObserverInTheReport(t *testing.T) {
	o := observed{fixture: upgradeFixture(), observer: blindFrom(healthyWindows(), 4200, 5700), plan: true}
	heldFrom(&o.fixture, 4200, 5700)
	s := buildObserved(t, o)
	p := phaseNamed(t, s, "old-workers-draining")
	if p.StallStartMs != 4200 || p.StallEndMs != 5700 || p.MaxStartMs != 4200 || p.GapStartMs != 4200 {
		t.Errorf("stall span %v–%v (longest request from %v, gap from %v), want 4200–5700", p.StallStartMs, p.StallEndMs, p.MaxStartMs, p.GapStartMs)
	}
	if s.Observer == nil || len(s.Observer.Blind) != 1 || s.Observer.Blind[0].StartMs != 4200 || s.Observer.Blind[0].EndMs != 5700 {
		t.Fatalf("observer = %+v, want one blind span 4200–5700", s.Observer)
	}
	if s.Thresholds.Observer == nil || s.Thresholds.Observer.MaxLateMs != analysis.ObserverMaxLateMs {
		t.Errorf("thresholds.observer = %+v, want the limits stated", s.Thresholds.Observer)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back record.Scenario
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if j := judge.Scenario(&back); j.Verdict != record.VerdictError || !slices.Equal(j.Reasons, s.Reasons) {
		t.Errorf("re-judged from report.json: %s %q, want %s %q", j.Verdict, j.Reasons, s.Verdict, s.Reasons)
	}
}

func checkVerdict(t *testing.T, s *record.Scenario, verdict string, want, notWant []string) {
	t.Helper()
	if s.Verdict != verdict {
		t.Fatalf("verdict = %s, want %s; reasons: %q", s.Verdict, verdict, s.Reasons)
	}
	for _, w := range want {
		if !slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, w) }) {
			t.Errorf("reasons = %q, want one containing %q", s.Reasons, w)
		}
	}
	for _, w := range notWant {
		if slices.ContainsFunc(s.Reasons, func(r string) bool { return strings.Contains(r, w) }) {
			t.Errorf("reasons = %q, want none containing %q", s.Reasons, w)
		}
	}
	if j := judge.Scenario(s); j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
		t.Errorf("Judge again = %s %q: not recomputable from the record", j.Verdict, j.Reasons)
	}
}

// report.html draws the observer as a band: its blind span red, titled with
// what the observer saw there.
func TestReportHTMLDrawsTheObserver(t *testing.T) {
	o := observed{fixture: upgradeFixture(), observer: blindFrom(healthyWindows(), 4200, 5700), plan: true}
	heldFrom(&o.fixture, 4200, 5700)
	s := buildObserved(t, o)
	var b strings.Builder
	if err := render.WriteHTML(&b, &record.Report{Schema: record.Schema, Scenarios: []record.Scenario{*s}}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`<g class="observer">`, `fill="#d93025"><title>4200 ms–5700 ms: the load ran 640 ms late and the control probe waited 580 ms</title>`,
		"observer: green could see, red blind"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html has no %q", want)
		}
	}
}
