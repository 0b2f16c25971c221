package nginx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// simDriver runs steps against a simulated nginx, polling every millisecond.
func simDriver(workers int) (*Sim, *Driver) {
	s := NewSim(workers)
	return s, NewDriver(s).WithPoll(time.Millisecond)
}

func mustVerify(t *testing.T, d *Driver, steps ...Step) []StepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []StepResult
	for _, st := range steps {
		if st.Timeout == 0 || st.Timeout > time.Second {
			st.Timeout = time.Second
		}
		r := d.Run(ctx, st)
		if !r.OK {
			t.Fatalf("step %s: %s", st.Name, r.Err)
		}
		out = append(out, r)
	}
	return out
}

func TestSimUpgradeEndsOnTheNewBinary(t *testing.T) {
	sim, d := simDriver(2)
	sim.DrainPolls = 3
	mustVerify(t, d, InstallBinary("install-new-binary", harness.NewBinaryStage), SpawnNewMaster(), StopOldWorkers(), QuitOldMaster(time.Second))
	snap, _ := sim.Snapshot(context.Background())
	if m := snap.Masters(); len(m) != 1 || m[0].Binary != "new" || snap.PidFile != m[0].PID || snap.OldbinSet {
		t.Fatalf("after the upgrade: %s", snap)
	}
}

func TestSimRollbackAndTermFallbackEndOnTheOldMaster(t *testing.T) {
	for name, last := range map[string]Step{"rollback": QuitNewMaster(time.Second), "term": TerminateNewMaster()} {
		t.Run(name, func(t *testing.T) {
			sim, d := simDriver(2)
			steps := []Step{InstallBinary("install-new-binary", harness.NewBinaryStage), SpawnNewMaster(), StopOldWorkers()}
			if name == "rollback" {
				steps = append(steps, RestoreOldWorkers())
			}
			mustVerify(t, d, append(steps, last, InstallBinary("restore-old-binary", harness.OldBinaryStage))...)
			snap, _ := sim.Snapshot(context.Background())
			if m := snap.Masters(); len(m) != 1 || m[0].PID != 10 || snap.PidFile != 10 || len(snap.Workers(10)) != 2 {
				t.Fatalf("after %s: %s", name, snap)
			}
		})
	}
}

func TestSimKillWorkersRespawns(t *testing.T) {
	sim, d := simDriver(2)
	r := mustVerify(t, d, KillWorkers())[0]
	snap, _ := sim.Snapshot(context.Background())
	for _, pid := range r.PIDs {
		if _, alive := snap.Proc(pid); alive {
			t.Fatalf("worker %d survived KILL: %s", pid, snap)
		}
	}
	if len(snap.Workers(10)) != 2 {
		t.Fatalf("the master did not respawn its workers: %s", snap)
	}
}

// A step that fails says what nginx logged: the broken build's [emerg], a
// foreground master's [crit], and the driver gives up at once.
func TestSimFailedUSR2QuotesTheLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*Sim)
		want  string
	}{
		{"broken build", func(s *Sim) { s.BreakNewBinary() }, `[emerg] 0#0: unknown directive "gzip"`},
		{"foreground master", func(s *Sim) { s.Foreground = true }, "the changing binary signal is ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, d := simDriver(1)
			tc.setup(sim)
			mustVerify(t, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
			start := time.Now()
			r := d.Run(context.Background(), SpawnNewMaster())
			if r.OK || !strings.Contains(r.Err, tc.want) || !strings.Contains(FirstFailure(r.LogLines), tc.want) {
				t.Fatalf("USR2: ok=%t err=%q log=%q; want a failure quoting %q", r.OK, r.Err, r.LogLines, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the driver waited %s for a master nginx said would not come", d)
			}
			snap, _ := sim.Snapshot(context.Background())
			if snap.PidFile != 10 || snap.OldbinSet || len(snap.Masters()) != 1 {
				t.Fatalf("after a failed USR2 the old master must be alone with nginx.pid: %s", snap)
			}
		})
	}
}

// A signal that was never delivered fails the step with that error, and
// nothing from nginx's log.
func TestSimUndeliveredSignal(t *testing.T) {
	sim, d := simDriver(1)
	sim.SignalErr = errors.New("exec kill: context deadline exceeded")
	r := d.Run(context.Background(), SpawnNewMaster())
	if r.OK || !strings.Contains(r.Err, "context deadline exceeded") || len(r.LogLines) != 0 {
		t.Fatalf("ok=%t err=%q log=%q", r.OK, r.Err, r.LogLines)
	}
}

// QUIT to the old master waits for its draining workers; the step's
// timeout bounds the wait.
func TestSimQuitWaitsForTheDrain(t *testing.T) {
	sim, d := simDriver(2)
	sim.DrainPolls = 1 << 30 // workers that never finish
	mustVerify(t, d, InstallBinary("install-new-binary", harness.NewBinaryStage), SpawnNewMaster(), StopOldWorkers())
	q := QuitOldMaster(100 * time.Millisecond)
	r := d.Run(context.Background(), q)
	if r.OK || !strings.Contains(r.Err, "old master 10 to exit (2 workers still draining)") {
		t.Fatalf("QUIT with workers that never drain: ok=%t %s", r.OK, r.Err)
	}
}

// SIGSTOP holds signals until SIGCONT: a stopped old master does not
// stop its workers on WINCH until it is continued.
func TestSimStoppedMasterDefersSignals(t *testing.T) {
	sim, d := simDriver(2)
	mustVerify(t, d, InstallBinary("install-new-binary", harness.NewBinaryStage), SpawnNewMaster())
	ctx := context.Background()
	sim.Signal(ctx, "STOP", 10)
	w := StopOldWorkers()
	w.Timeout = 50 * time.Millisecond
	if r := d.Run(ctx, w); r.OK {
		t.Fatal("WINCH verified on a stopped master")
	}
	sim.Signal(ctx, "CONT", 10)
	snap, _ := sim.Snapshot(ctx)
	if len(snap.Workers(10)) != 0 {
		t.Fatalf("after CONT the pending WINCH must act: %s", snap)
	}
}

func TestSimReloads(t *testing.T) {
	_, d := simDriver(2)
	gen := func(n int) func([]byte) ([]byte, error) {
		return func(c []byte) ([]byte, error) { return SetGeneration(c, n) }
	}
	workers := func(n int) func([]byte) ([]byte, error) {
		return func(c []byte) ([]byte, error) { return SetWorkers(c, n) }
	}
	mustVerify(t, d, EditConfig("change-config", gen(2)), Reload("reload", "reloaded", 0, 2), OldGenerationDrained(time.Second),
		EditConfig("more-workers", workers(4)), Reload("reload-up", "up", 4, 0),
		EditConfig("fewer-workers", workers(1)), Reload("reload-down", "down", 1, 0))
	mustVerify(t, d, EditConfig("break-config", BreakConfig), ReloadRejected("reload-broken", "rejected"))

	// A reload that does not change the generation served fails: the
	// header check is what tells a new generation from an old one.
	sim2, d2 := simDriver(2)
	_ = sim2
	st := Reload("reload", "reloaded", 0, 3)
	st.Timeout = 100 * time.Millisecond
	if r := d2.Run(context.Background(), st); r.OK || !strings.Contains(r.Err, "X-Nuh-Generation: 3") {
		t.Fatalf("a reload without the changed configuration verified: %s", r.Err)
	}
}
