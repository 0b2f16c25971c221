package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
	"github.com/releng-tools/nginx-upgrade-harness/reports/analysis"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Deaths are findings (reports: analysis.Deaths), and a plan's own exits
// are not: every catalogue scenario's steps, and the upgrade with each fault
// that kills or stops a process, played on the simulated nginx and recorded
// as a trial records them — each step's event with the error log's failure
// lines, the process table before and after each step and after each
// fault, the faults' outcomes, the final table — and the rule run over that
// record. Graceful exits after WINCH, QUIT, HUP and TERM, what the KILL
// fallback and a killing fault take, the broken build's new master that
// never comes up: none is a death. A worker killed behind the plan's back
// is one, and so is a killing fault's work once its record is gone.

// simRecord plays moves on a simulation and records them as a trial does.
type simRecord struct {
	sim     *nginx.Sim
	d       *nginx.Driver
	start   time.Time
	s       record.Scenario
	samples []record.ProcessSample
}

func newSimRecord(t *testing.T) *simRecord {
	t.Helper()
	sim := nginx.NewSim(2)
	sim.DrainPolls = 3
	r := &simRecord{sim: sim, d: nginx.NewDriver(sim).WithPoll(time.Millisecond), start: time.Now()}
	snap, err := sim.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.sample("start", 0, nil, snap)
	return r
}

func (r *simRecord) ms(at time.Time) float64 {
	return float64(at.Sub(r.start)) / float64(time.Millisecond)
}

// sample keeps a table as trial.sample does: an empty one (a snapshot that
// failed) is not written.
func (r *simRecord) sample(at string, ms float64, pids []int, snap proc.Snapshot) {
	if len(snap.Procs) == 0 {
		return
	}
	r.samples = append(r.samples, record.ProcessSample{Ms: ms, At: at, PIDs: pids, Procs: finalFrom(snap).Processes})
}

// move runs one move; false when the run stops there (a step that failed
// unexpectedly).
func (r *simRecord) move(ctx context.Context, m Move) bool {
	st := m.Step
	if st.Timeout == 0 || st.Timeout > time.Second {
		st.Timeout = time.Second
	}
	res := r.d.Run(ctx, st)
	step := record.Step{Name: res.Name, Signal: res.Signal, PIDs: res.PIDs, SentMs: r.ms(res.Sent), Verified: res.OK,
		Error: res.Err, LogLines: res.LogLines, Phase: res.Phase}
	if len(res.PIDs) > 0 {
		step.PID = res.PIDs[0]
	}
	if m.ExpectFail {
		step.Expected = record.ExpectFail
	}
	r.sample("before "+res.Name, step.SentMs, res.PIDs, res.Before)
	end := r.ms(time.Now())
	if res.OK {
		step.VerifiedMs = r.ms(res.Verified)
		end = step.VerifiedMs
	}
	r.sample("after "+res.Name, end, res.PIDs, res.After)
	r.s.Steps = append(r.s.Steps, step)
	return res.OK || m.ExpectFail
}

// inject strikes f and records it as faults.jsonl would, the error log's
// failure lines since the injection read at the end (heal).
func (r *simRecord) inject(t *testing.T, ctx context.Context, f fault.Fault) (heal func()) {
	t.Helper()
	before, err := r.sim.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := r.ms(time.Now())
	note, err := f.Inject(ctx, r.sim)
	if err != nil {
		t.Fatalf("inject %s: %v", f.Name(), err)
	}
	if snap, err := r.sim.Snapshot(ctx); err == nil {
		r.sample("after fault "+f.Name(), at, nil, snap)
	}
	i := len(r.s.Faults)
	r.s.Faults = append(r.s.Faults, record.FaultRecord{Name: f.Name(), InjectedMs: at, Outcome: note})
	return func() {
		note, _ := f.Heal(ctx, r.sim)
		healed := r.ms(time.Now())
		if i >= len(r.s.Faults) {
			return // its record was taken away
		}
		rec := &r.s.Faults[i]
		rec.HealedMs, rec.Outcome = &healed, rec.Outcome+"; "+note
		lines, _ := r.sim.LogSince(ctx, before.LogSize)
		for _, l := range lines {
			if nginx.FailureLevel(l) != "" {
				rec.LogLines = append(rec.LogLines, l)
			}
		}
	}
}

// play runs sc's moves with f (if any) striking after its step, and
// returns the deaths the rule finds in the record.
func play(t *testing.T, sc Scenario, f fault.Fault, tamper func(r *simRecord, step string)) []record.Death {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newSimRecord(t)
	if sc.Broken {
		r.sim.BreakNewBinary()
	}
	var heal func()
	for _, m := range sc.Moves {
		if !r.move(ctx, m) {
			break
		}
		if f != nil && m.Step.Name == f.At() {
			heal = r.inject(t, ctx, f)
		}
		if tamper != nil {
			tamper(r, m.Step.Name)
		}
	}
	if heal != nil {
		heal()
	}
	snap, err := r.sim.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	final := finalFrom(snap)
	r.s.Final = &final
	r.sample("final", r.ms(time.Now()), nil, snap)
	// The run's whole error log, as error-log.txt keeps it.
	var errLog analysis.ErrorLog
	lines, _ := r.sim.LogSince(ctx, 0)
	for _, l := range lines {
		if nginx.FailureLevel(l) != "" {
			errLog.Lines = append(errLog.Lines, l)
		}
	}
	return analysis.Deaths(&r.s, r.samples, analysis.NewGenerations(r.samples), errLog)
}

func TestDeathsOfTheCatalogueOnTheSim(t *testing.T) {
	for _, sc := range Catalogue() {
		t.Run(sc.Name, func(t *testing.T) {
			if ds := play(t, sc, nil, nil); len(ds) > 0 {
				t.Errorf("the plan's own exits taken for deaths: %+v", ds)
			}
		})
	}
}

func TestDeathsOfTheFaultsOnTheSim(t *testing.T) {
	upgrade, err := Lookup([]string{"upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kill-new-worker", "kill-new-master", "kill-old-master", "kill-old-worker", "stop-old-master", "repeat-usr2", "freeze"} {
		t.Run(name, func(t *testing.T) {
			c, err := fault.Parse(name)
			if err != nil {
				t.Fatal(err)
			}
			if ds := play(t, upgrade[0], c.Fault, nil); len(ds) > 0 {
				t.Errorf("what the fault did on purpose taken for deaths: %+v", ds)
			}
		})
	}
	// The same KILL with its record gone is a death: the rule looks.
	t.Run("kill-new-worker unrecorded", func(t *testing.T) {
		c, err := fault.Parse("kill-new-worker")
		if err != nil {
			t.Fatal(err)
		}
		ds := play(t, upgrade[0], c.Fault, func(r *simRecord, step string) {
			if step == "stop-old-workers" {
				r.s.Faults = nil
			}
		})
		// Its log line went with its record; the run's whole error log
		// still has it.
		if len(ds) != 1 || ds[0].Generation != "new-1" || ds[0].Signal != 9 {
			t.Fatalf("a KILL no record explains: deaths %+v, want one worker of new-1 on signal 9", ds)
		}
	})
}

// A worker that dies behind the plan's back — between two steps, with its
// master respawning it — is named with its pid, generation and signal.
func TestDeathBehindThePlansBackOnTheSim(t *testing.T) {
	upgrade, err := Lookup([]string{"upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	var victim int
	ds := play(t, upgrade[0], nil, func(r *simRecord, step string) {
		if step != "spawn-new-master" {
			return
		}
		snap, _ := r.sim.Snapshot(context.Background())
		ws := snap.Workers(snap.PidFile)
		victim = ws[0].PID
		r.sim.Signal(context.Background(), "KILL", victim)
		// The next step quotes the error log from its own start: the
		// crash is in the run's whole error log, and the tables.
	})
	if len(ds) != 1 || ds[0].PID != victim || ds[0].Generation != "new-1" || ds[0].Signal != 9 ||
		!strings.Contains(ds[0].Evidence, "exited on signal 9") {
		t.Fatalf("deaths %+v, want worker %d of new-1 on signal 9, from the run's error log", ds, victim)
	}
}
