package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// WithFaults is the scenario as the faults make it: its name says which
// faults struck, its steps stop at the one a fault makes fail, and its
// expectation is the faults' measured one. Faults strike graceful paths
// only (the fallbacks and the control are faults of their own); a fault
// whose step the scenario lacks is an error naming it.
func WithFaults(sc Scenario, faults []fault.Chosen) (Scenario, error) {
	if len(faults) == 0 {
		return sc, nil
	}
	if sc.Kind != "graceful" {
		return sc, fmt.Errorf("fault %s does not apply to %s: faults strike the graceful paths (a %s path is one already)",
			faults[0].Name(), sc.Name, sc.Kind)
	}
	var steps []string
	for _, m := range sc.Moves {
		steps = append(steps, m.Step.Name)
	}
	out := sc
	out.Moves = slices.Clone(sc.Moves)
	names := []string{sc.Name}
	var why []string
	var e fault.Expectation
	failAt := -1
	dropPhase := ""
	for _, f := range faults {
		if err := fault.Applies(f.Fault, f.Step, steps); err != nil {
			return sc, err
		}
		i := slices.Index(steps, f.Step)
		if sc.Moves[i].ExpectFail {
			return sc, fmt.Errorf("fault %s strikes after %s, a step %s expects to fail: there is nothing to strike", f.Name(), f.Step, sc.Name)
		}
		name := f.Name()
		if f.Step != f.At() {
			name += "@" + f.Step
		}
		names = append(names, name)
		fe := f.Expect(sc.Name)
		why = append(why, f.Name()+": "+fe.Why)
		if fe.Drops && dropPhase == "" {
			dropPhase = phaseOfMove(sc.Moves[i])
		}
		e.Drops, e.MustDrop, e.Orphans = e.Drops || fe.Drops, e.MustDrop || fe.MustDrop, e.Orphans || fe.Orphans
		e.MaxStall = max(e.MaxStall, fe.MaxStall)
		if fe.Final != "" {
			e.Final = fe.Final
		}
		if fe.FailStep != "" {
			j := slices.Index(steps, fe.FailStep)
			if j < 0 {
				return sc, fmt.Errorf("fault %s makes step %s fail, which %s does not have", f.Name(), fe.FailStep, sc.Name)
			}
			if failAt < 0 || j < failAt {
				failAt, e.FailStep, e.FailCause = j, fe.FailStep, fe.FailCause
			}
		}
	}
	out.Name = strings.Join(names, "+")
	out.Faults = faults
	out.Why = sc.Why + " With " + strings.Join(why, "; ")
	if failAt >= 0 {
		out.Moves = out.Moves[:failAt+1]
		out.Moves[failAt].ExpectFail, out.Moves[failAt].ExpectCause = true, e.FailCause
		out.Moves[failAt].Audit = max(out.Moves[failAt].Audit, audit)
	}
	out.Expect, out.Drops = ExpectZeroDrops, nil
	if e.Drops {
		out.Expect = ExpectDrops
		out.Drops = &record.DropSpec{Phase: dropPhase, Classes: serverSideClasses, AndAfter: true, Optional: !e.MustDrop}
	}
	out.Final = Final{Binary: e.Final, PidFileOld: false, Orphans: e.Orphans, Loose: true}
	if out.Final.Binary == "" {
		out.Final.Binary = sc.Final.Binary
	}
	out.MaxStall = e.MaxStall
	return out, nil
}

func phaseOfMove(m Move) string {
	if m.Step.Phase != "" {
		return m.Step.Phase
	}
	return m.Step.Name
}

// faultNodeOptions grant the container what the faults need, and only that.
func faultNodeOptions(faults []fault.Chosen) []nginx.NodeOption {
	var opts []nginx.NodeOption
	for _, f := range faults {
		n := f.Needs()
		for _, c := range n.Caps {
			opts = append(opts, nginx.WithCapability(c))
		}
		for dir, o := range n.Tmpfs {
			opts = append(opts, nginx.WithTmpfs(dir, o))
		}
	}
	return opts
}

// faultLog records the faults of a trial in faults.jsonl, on its clock.
type faultLog struct {
	t   *trial
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
	wg  sync.WaitGroup
	// pending are faults to heal at the end.
	pending []pendingHeal
	// err is the first failure to write faults.jsonl: the record of what
	// was done to nginx is incomplete, and the run is an error.
	err error
}

type pendingHeal struct {
	f       fault.Chosen
	rec     record.FaultRecord
	logFrom int64
}

func newFaultLog(t *trial) (*faultLog, error) {
	f, err := os.Create(t.path(record.FaultsFile))
	if err != nil {
		return nil, err
	}
	return &faultLog{t: t, f: f, enc: json.NewEncoder(f)}, nil
}

func (l *faultLog) put(rec record.FaultRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.enc.Encode(rec)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("write %s (fault %s): %w", record.FaultsFile, rec.Name, err)
	}
}

// writeErr is the first failure to write faults.jsonl, or nil.
func (l *faultLog) writeErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// strike injects the faults that strike after step, and schedules their heal.
func (l *faultLog) strike(ctx context.Context, sc Scenario, step string, ok bool) {
	for _, f := range sc.Faults {
		if f.Step != step {
			continue
		}
		rec := record.FaultRecord{Name: f.Name(), Step: step, InjectedMs: l.t.clock.Now(), Expected: f.Expect(sc.Name).Why,
			StallsContainer: fault.StallsContainer(f.Fault)}
		if !ok {
			rec.Error = fmt.Sprintf("step %s did not verify: the fault was not injected", step)
			l.put(rec)
			continue
		}
		if n := f.Needs().SlowClients; n > 0 && l.t.load != nil {
			if err := l.t.load.StartTricklers(n); err != nil {
				rec.Error = err.Error()
			}
		}
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var logFrom int64
		if snap, err := l.t.node.Snapshot(ictx); err == nil {
			logFrom = snap.LogSize
		}
		rec.StartMs = l.t.clock.Now()
		note, err := f.Inject(ictx, l.t.node)
		rec.InjectedMs, rec.Outcome = l.t.clock.Now(), note
		// The process table right after the fault names the orphans a
		// killed master leaves from that moment (reports: generations).
		// Never into a container the fault keeps frozen: an exec there
		// would hang with it.
		if err == nil && f.Name() != "freeze" {
			if snap, serr := l.t.node.Snapshot(ictx); serr == nil {
				l.t.sample("after fault "+f.Name(), rec.InjectedMs, nil, snap)
			}
		}
		cancel()
		if err != nil {
			rec.Error = "inject: " + err.Error()
		}
		l.put(rec)
		l.t.progress("%s: fault %s injected after %s: %s", sc.Name, f.Name(), step, note+rec.Error)
		if err != nil {
			continue
		}
		if d := f.HealAfter(); d > 0 {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
				l.heal(context.WithoutCancel(ctx), sc, f, rec, logFrom)
			}()
			continue
		}
		l.mu.Lock()
		l.pending = append(l.pending, pendingHeal{f, rec, logFrom})
		l.mu.Unlock()
	}
}

func (l *faultLog) heal(ctx context.Context, sc Scenario, f fault.Chosen, rec record.FaultRecord, logFrom int64) {
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	note, err := f.Heal(hctx, l.t.node)
	at := l.t.clock.Now()
	rec.HealedMs = &at
	rec.Outcome += "; " + note
	if err != nil {
		rec.Error = "heal: " + err.Error()
	}
	if lines, err := l.t.node.LogSince(hctx, logFrom); err == nil {
		for _, ln := range lines {
			if nginx.FailureLevel(ln) != "" && len(rec.LogLines) < 10 {
				rec.LogLines = append(rec.LogLines, ln)
			}
		}
	}
	l.put(rec)
	l.t.progress("%s: fault %s healed: %s", sc.Name, f.Name(), note)
}

// healAll heals what is left (at the end of the run, before the final
// state is read) and closes the record.
func (l *faultLog) healAll(ctx context.Context, sc Scenario) {
	l.wg.Wait()
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, p := range pending {
		l.heal(ctx, sc, p.f, p.rec, p.logFrom)
	}
	l.f.Close()
}
