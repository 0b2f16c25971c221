package procedure

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

// manualKind is the verified signal steps of procedure.md.
var manualKind = Kind{Name: "manual", Default: true,
	Help: "the verified signal steps: install by rename, USR2, WINCH, audit, QUIT (on a failed USR2 it puts the old binary back)",
	run:  runManual}

// runManual runs the verified steps; on a failed USR2 it puts the old
// binary back and stops, as an operator would.
func runManual(ctx context.Context, pr *Prepared, res *Result) {
	ctx, cancel := context.WithTimeout(ctx, pr.o.Timeout)
	defer cancel()
	d := nginx.NewDriver(pr.n)
	var out strings.Builder
	step := func(s nginx.Step) bool {
		r := d.Run(ctx, s)
		res.Steps = append(res.Steps, r)
		if pr.o.OnStep != nil {
			pr.o.OnStep(r)
		}
		if r.OK {
			fmt.Fprintf(&out, "%s: verified in %s\n", r.Name, r.Verified.Sub(r.Sent).Round(time.Millisecond))
		} else {
			fmt.Fprintf(&out, "%s: FAILED: %s\n", r.Name, r.Err)
		}
		return r.OK
	}
	res.Exit = 1
	defer func() {
		res.Stdout = out.String()
		if ctx.Err() == context.DeadlineExceeded {
			res.TimedOut = true
			res.Exit = 124
		}
	}()
	if !step(nginx.InstallBinary("install-new-binary", harness.NewBinaryStage)) {
		return
	}
	if !step(nginx.SpawnNewMaster()) {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer rcancel()
		r := d.Run(rctx, nginx.InstallBinary("restore-old-binary", harness.OldBinaryStage))
		res.Steps = append(res.Steps, r)
		if pr.o.OnStep != nil {
			pr.o.OnStep(r)
		}
		fmt.Fprintf(&out, "restore-old-binary: verified=%t %s\n", r.OK, r.Err)
		return
	}
	if !step(nginx.StopOldWorkers()) {
		return
	}
	fmt.Fprintf(&out, "audit: %s\n", pr.o.Audit)
	select {
	case <-ctx.Done():
		return
	case <-time.After(pr.o.Audit):
	}
	if !step(nginx.QuitOldMaster(pr.o.Timeout)) {
		return
	}
	res.Exit = 0
}
