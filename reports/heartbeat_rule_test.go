package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// nginx's side of the stall rule: the heartbeat in nginx's container. A
// stall above the limit is nginx's (fail) only when both sides were healthy
// across it; a window in it in which nginx's container ran later than
// analysis.NginxMaxLateMs, outside the window of a fault that stalls the
// container, makes it the machine's (error), the evidence named. Each case
// is a hand-written record: the upgrade fixture, a stall of 1.5 s in
// old-workers-draining (4.2–5.7 s), a healthy harness side, and the
// heartbeat's windows.

// heartbeatWindows are a heartbeat's supplement lines over [0, 8.2 s): five
// ticks a window, on time; nginx's processes wait 1 ms and run 10 ms a
// window on 2 CPUs.
func heartbeatWindows() []loadgen.ObserverRecord {
	var out []loadgen.ObserverRecord
	for k := 0; k < 82; k++ {
		out = append(out, loadgen.ObserverRecord{StartMs: float64(k) * 100, EndMs: float64(k+1) * 100, NginxLateMs: 1.5, NginxTicks: 5, Supplement: true,
			NginxRunqMs: 1, NginxCPUMs: 10, NginxCPUs: 2})
	}
	return out
}

// unmeasured drops the scheduler's counters from every window (a kernel
// without /proc/PID/schedstat).
func unmeasured(recs []loadgen.ObserverRecord) []loadgen.ObserverRecord {
	for i := range recs {
		recs[i].NginxRunqMs, recs[i].NginxCPUMs, recs[i].NginxCPUs = 0, 0, 0
	}
	return recs
}

// containerLate makes nginx's container run lateMs late over [fromMs, toMs).
func containerLate(recs []loadgen.ObserverRecord, fromMs, toMs, lateMs float64) []loadgen.ObserverRecord {
	for i := range recs {
		if recs[i].StartMs >= fromMs && recs[i].EndMs <= toMs {
			recs[i].NginxLateMs, recs[i].NginxTicks = lateMs, 1
		}
	}
	return recs
}

// processesWaited makes nginx's processes wait runqMs a window on a run
// queue over [fromMs, toMs) while running cpuMs on cpus CPUs; elsewhere
// they wait 1 ms and run 10 ms on 2.
func processesWaited(recs []loadgen.ObserverRecord, fromMs, toMs, runqMs, cpuMs float64, cpus int) []loadgen.ObserverRecord {
	for i := range recs {
		if recs[i].NginxCPUs == 0 {
			recs[i].NginxRunqMs, recs[i].NginxCPUMs, recs[i].NginxCPUs = 1, 10, 2
		}
		if recs[i].StartMs >= fromMs && recs[i].EndMs <= toMs {
			recs[i].NginxRunqMs, recs[i].NginxCPUMs, recs[i].NginxCPUs = runqMs, cpuMs, cpus
		}
	}
	return recs
}

type heartbeaten struct {
	observed
	plan      *record.HeartbeatPlan    // nil: a record made before the heartbeat
	read      *record.HeartbeatRead    // nil: no heartbeat.json
	heartbeat []loadgen.ObserverRecord // appended to observer.jsonl
}

func buildHeartbeaten(t *testing.T, h heartbeaten) *record.Scenario {
	t.Helper()
	h.meta.Observer = record.NewObserverPlan()
	h.meta.Heartbeat = h.plan
	dir := writeFixture(t, t.TempDir(), "scenario", h.fixture)
	writeJSONLFile(t, filepath.Join(dir, loadgen.ObserverFile), append(h.observer, h.heartbeat...))
	if h.faults != nil {
		writeJSONLFile(t, filepath.Join(dir, record.FaultsFile), h.faults)
	}
	if h.read != nil {
		writeJSONFile(t, filepath.Join(dir, record.HeartbeatFile), h.read)
	}
	s, _, err := BuildScenario(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func planned() *record.HeartbeatPlan { return &record.HeartbeatPlan{IntervalMs: 20} }

func readBack() *record.HeartbeatRead {
	return &record.HeartbeatRead{Ticks: 410, FromMs: 0, ToMs: 8200}
}

func withFault(name string, stallsContainer bool, from, to float64) []record.FaultRecord {
	return []record.FaultRecord{{Name: name, Step: "stop-old-workers", InjectedMs: from, HealedMs: &to, Outcome: "injected and healed",
		StallsContainer: stallsContainer}}
}

func TestStallIsNginxsOnlyWhenNginxsContainerRan(t *testing.T) {
	const stalled = "stalled 1500 ms in old-workers-draining"
	for _, tc := range []struct {
		name    string
		edit    func(*heartbeaten)
		verdict string
		want    []string
		notWant []string
	}{
		{"both sides healthy: nginx's stall, fail, no note", func(h *heartbeaten) {
		}, record.VerdictFail, []string{stalled}, []string{"the machine", "no heartbeat", "heartbeat covers"}},
		{"nginx's container ran late in the span: the machine's, error, the evidence named", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4500, 5400, 900)
		}, record.VerdictError, []string{"but nginx's container ran 900 ms late in 4.5–5.4 s: the machine, not nginx",
			"the longest request of 1500 ms in old-workers-draining (4200 ms–5700 ms)",
			"the longest gap without a response of 1500 ms"}, []string{stalled}},
		{"late for 300 ms of a 1.5 s stall: still the machine's (a SYN retransmit turns a short starvation into a long wait)", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4200, 4500, 300)
		}, record.VerdictError, []string{"nginx's container ran 300 ms late in 4.2–4.5 s"}, []string{stalled}},
		{"late at the limit (200 ms): healthy, fail", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4500, 5400, analysis.NginxMaxLateMs)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"late outside the stall's span: nginx's stall, fail", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 1000, 2000, 900)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"late inside a freeze's window: the fault's doing, nginx's stall, fail", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4200, 5700, 1500)
			h.faults = withFault("freeze", true, 4150, 5750)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"late inside a cpu-starve's window, never healed: the fault's doing, fail", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4200, 5700, 400)
			h.faults = []record.FaultRecord{{Name: "cpu-starve", Step: "install-new-binary", InjectedMs: 3000, StallsContainer: true}}
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"late inside a netem window (it does not touch the heartbeat): the machine's, error", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4500, 5400, 900)
			h.faults = withFault("netem", false, 4000, 6000)
		}, record.VerdictError, []string{"nginx's container ran 900 ms late in 4.5–5.4 s"}, []string{stalled}},
		{"late past a freeze's heal: the part outside the fault is the machine's, error", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4200, 5700, 900)
			h.faults = withFault("freeze", true, 4150, 4800)
		}, record.VerdictError, []string{"nginx's container ran 900 ms late in 4.9–5.7 s"}, []string{stalled}},
		{"a loss stays a fail whatever nginx's container did, the blind stall as also", func(h *heartbeaten) {
			h.heartbeat = containerLate(h.heartbeat, 4500, 5400, 900)
			h.results = append(h.results, failedWith(6500, 0, "EOF"))
		}, record.VerdictFail, []string{"1 request failed in after-quit (eof: 1)", "also: the longest request of 1500 ms"}, []string{stalled}},
		{"nginx's processes waited for a CPU while they ran little: the machine's, error, the evidence named", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, 320, 40, 2)
		}, record.VerdictError, []string{"but nginx's processes waited up to 320 ms a window for a CPU in 4.3–5.0 s, running at most 40 ms of the 200 ms their 2 CPUs had: the machine, not nginx",
			"the longest gap without a response of 1500 ms"}, []string{stalled}},
		{"waits at the limit (50 ms a window): healthy, fail", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, analysis.NginxMaxRunqMs, 40, 2)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"waits while nginx itself kept half its CPUs busy: its own contention, nginx's stall, fail", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, 320, 100, 2)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"waits on one CPU while nginx ran 45 ms of its 100: the machine's, error", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, 320, 45, 1)
		}, record.VerdictError, []string{"running at most 45 ms of the 100 ms their 1 CPU had"}, []string{stalled}},
		{"waits outside the stall's span: nginx's stall, fail", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 1000, 2000, 320, 40, 2)
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"waits inside a cpu-starve's window (the fault throttles nginx's processes): the fault's doing, fail", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4200, 5700, 320, 20, 2)
			h.faults = []record.FaultRecord{{Name: "cpu-starve", Step: "install-new-binary", InjectedMs: 3000, StallsContainer: true}}
		}, record.VerdictFail, []string{stalled}, []string{"the machine"}},
		{"waits inside a netem window (it does not touch the CPU): the machine's, error", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, 320, 40, 2)
			h.faults = withFault("netem", false, 4000, 6000)
		}, record.VerdictError, []string{"nginx's processes waited up to 320 ms a window for a CPU in 4.3–5.0 s"}, []string{stalled}},
		{"late and waited: both named", func(h *heartbeaten) {
			h.heartbeat = processesWaited(containerLate(h.heartbeat, 4500, 4700, 300), 4300, 5000, 320, 40, 2)
		}, record.VerdictError, []string{"but nginx's container ran 300 ms late in 4.5–4.7 s and nginx's processes waited up to 320 ms a window"}, []string{stalled}},
		{"a loss stays a fail whatever nginx's processes waited", func(h *heartbeaten) {
			h.heartbeat = processesWaited(h.heartbeat, 4300, 5000, 320, 40, 2)
			h.results = append(h.results, failedWith(6500, 0, "EOF"))
		}, record.VerdictFail, []string{"1 request failed in after-quit (eof: 1)"}, []string{stalled}},
		{"no static build to run as the heartbeat: the stall fails as before, the note says why", func(h *heartbeaten) {
			h.plan = &record.HeartbeatPlan{IntervalMs: 20, Absent: "no static build of the CLI to run in nginx's container"}
			h.read, h.heartbeat = nil, nil
		}, record.VerdictFail, []string{stalled + " (longest request 1500 ms, longest gap without a response 1500 ms), above the limit of 1000 ms; " +
			"nginx's container had no heartbeat (no static build of the CLI to run in nginx's container): judged on the harness's side alone"}, nil},
		{"the heartbeat did not start: fails as before, the note says why", func(h *heartbeaten) {
			h.read, h.heartbeat = &record.HeartbeatRead{Absent: "did not start in nginx's container: exec: no such file"}, nil
		}, record.VerdictFail, []string{"nginx's container had no heartbeat (did not start in nginx's container: exec: no such file)"}, nil},
		{"the heartbeat could not be read back: fails as before, the note says why", func(h *heartbeaten) {
			h.read, h.heartbeat = &record.HeartbeatRead{Error: "read /tmp/nuh-heartbeat.jsonl: exit 1"}, nil
		}, record.VerdictFail, []string{"no heartbeat (its record could not be read back: read /tmp/nuh-heartbeat.jsonl: exit 1)"}, nil},
		{"heartbeat.json missing: fails as before, the note names it", func(h *heartbeaten) {
			h.read = nil
		}, record.VerdictFail, []string{"no heartbeat (heartbeat.json missing)"}, nil},
		{"a record made before the heartbeat: fails as before, the note says so", func(h *heartbeaten) {
			h.plan, h.read, h.heartbeat = nil, nil, nil
		}, record.VerdictFail, []string{"nginx's container had no heartbeat (recorded before it): judged on the harness's side alone"}, nil},
		{"no scheduler's counters (a kernel without schedstat): fails as before, the note says the wait was not measured", func(h *heartbeaten) {
			h.heartbeat = unmeasured(h.heartbeat)
		}, record.VerdictFail, []string{stalled, "nginx's processes' wait for a CPU was not measured (no /proc/PID/schedstat in nginx's container): judged on the heartbeat's lateness alone"}, []string{"the machine"}},
		{"a heartbeat that stopped before the stall: fails, the note gives what it covers", func(h *heartbeaten) {
			h.heartbeat = h.heartbeat[:30]
		}, record.VerdictFail, []string{"nginx's container's heartbeat covers 0.0–3.0 s, not all of the stall"}, []string{"the machine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := heartbeaten{observed: observed{fixture: upgradeFixture(), observer: healthyWindows()}, plan: planned(), read: readBack(),
				heartbeat: heartbeatWindows()}
			heldFrom(&h.fixture, 4200, 5700)
			tc.edit(&h)
			s := buildHeartbeaten(t, h)
			checkVerdict(t, s, tc.verdict, tc.want, tc.notWant)
			// report.json alone re-judges it.
			data, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var back record.Scenario
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if j := judge.Scenario(&back); j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
				t.Errorf("re-judged from report.json: %s %q, want %s %q", j.Verdict, j.Reasons, s.Verdict, s.Reasons)
			}
		})
	}
}

// The harness's side is judged as before with a heartbeat beside it: its
// windows are not the harness's, and do not extend its record.
func TestHeartbeatLinesAreNotTheHarnesssSide(t *testing.T) {
	h := heartbeaten{observed: observed{fixture: upgradeFixture(), observer: healthyWindows()[:60]}, plan: planned(), read: readBack(),
		heartbeat: heartbeatWindows()}
	heldFrom(&h.fixture, 6200, 7700)
	s := buildHeartbeaten(t, h)
	if s.Observer.ToMs != 6000 || s.Observer.Windows != 60 {
		t.Errorf("observer covers to %v ms in %d windows, want 6000 in 60: the heartbeat's lines counted as the harness's", s.Observer.ToMs, s.Observer.Windows)
	}
	checkVerdict(t, s, record.VerdictError, []string{"the observer's record has nothing for 1500 ms of it"}, nil)
	hb := s.Observer.Heartbeat
	if hb == nil || hb.Ticks != 410 || hb.FromMs != 0 || hb.ToMs != 8200 || hb.WorstLateMs != 1.5 || len(hb.Late) != 0 {
		t.Errorf("heartbeat = %+v, want 410 ticks over 0–8200 ms, worst 1.5 ms, nothing late", hb)
	}
	if o := s.Thresholds.Observer; o == nil || o.MaxNginxLateMs != analysis.NginxMaxLateMs || o.MaxNginxRunqMs != analysis.NginxMaxRunqMs || o.NginxBusyFraction != analysis.NginxBusyFraction {
		t.Errorf("thresholds.observer = %+v, want max_nginx_late_ms, max_nginx_runq_ms and nginx_busy_fraction stated", s.Thresholds.Observer)
	}
}

func writeJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// report.html draws nginx's container's late spans on the observer's band,
// orange, titled with how late it ran; report.md sums the heartbeat up.
func TestReportsShowNginxsContainer(t *testing.T) {
	h := heartbeaten{observed: observed{fixture: upgradeFixture(), observer: healthyWindows()}, plan: planned(), read: readBack(),
		heartbeat: processesWaited(containerLate(heartbeatWindows(), 4500, 5400, 900), 6000, 6300, 120, 30, 2)}
	heldFrom(&h.fixture, 4200, 5700)
	s := buildHeartbeaten(t, h)
	r := &record.Report{Schema: record.Schema, Scenarios: []record.Scenario{*s}}
	var html, md strings.Builder
	if err := render.WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`fill="#e8710a"><title>4500 ms–5400 ms: nginx&#39;s container ran 900 ms late</title>`,
		"orange: nginx&#39;s container over 200 ms late",
		`<title>6000 ms–6300 ms: nginx&#39;s processes waited up to 120 ms a window for a CPU, running at most 30 ms of the 200 ms their 2 CPUs had</title>`} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("report.html has no %q", want)
		}
	}
	if err := render.WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nginx's container: 374 heartbeat ticks over 0 ms–8200 ms, worst 900 ms late, 1 span over 200 ms.",
		"nginx's processes: at worst 120 ms a window waiting for a CPU, held by the machine in 1 span."} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md has no %q", want)
		}
	}
}
