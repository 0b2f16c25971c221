package scenarios_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// systemdFaultCase is a master killed during the manual steps under
// systemd, and what systemd was measured to make of it.
type systemdFaultCase struct {
	// Kill is "new" (KILL the new master after USR2) or "old" (KILL the
	// old master after WINCH, while its workers drain).
	Kill string
	// What systemd then shows, read 3 s after the kill.
	Active, Sub string
	// MainPID is "old", "new" or "none": which master systemd names.
	MainPID string
	Serving bool
	Binary  string // the master's binary that serves: old or new
	// Orphans: nginx workers whose master is gone, left serving.
	Orphans bool
	// OutsideCgroup: nginx processes outside the unit's cgroup.
	OutsideCgroup bool
	// OldbinLeft: nginx.pid.oldbin still names the killed old master.
	OldbinLeft bool
}

// It uses the systemd images the suite's setup builds.
var _ = Describe("masters killed under systemd", Label("systemd", "chaos"), func() {
	DescribeTable("what systemd does when a master is killed during the manual steps", func(ctx SpecContext, fc systemdFaultCase) {
		im := ensureSystemdImages(ctx)
		node, err := nginx.StartNode(ctx, pool, nginx.WithImage(im.GoodSystemd), nginx.WithSystemd(),
			nginx.WithLabel(harness.Label+".procedure", "systemd-fault-"+fc.Kill))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(node.Close)
		d := nginx.NewDriver(node)

		By("installing the new binary and sending USR2")
		Expect(d.Run(ctx, nginx.InstallBinary("install-new-binary", harness.NewBinaryStage)).OK).To(BeTrue())
		r := d.Run(ctx, nginx.SpawnNewMaster())
		Expect(r.OK).To(BeTrue(), "%v", r.Err)
		s, err := node.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		var oldM, newM int
		for _, m := range s.Masters() {
			if m.Binary == "new" {
				newM = m.PID
			} else {
				oldM = m.PID
			}
		}
		Expect(oldM).NotTo(BeZero())
		Expect(newM).NotTo(BeZero())
		victim := newM
		if fc.Kill == "old" {
			By("sending WINCH, then KILL to the old master while its workers drain")
			Expect(d.Run(ctx, nginx.StopOldWorkers()).OK).To(BeTrue())
			victim = oldM
		} else {
			By("sending KILL to the new master")
		}
		Expect(node.Signal(ctx, "KILL", victim)).To(Succeed())
		time.Sleep(3 * time.Second)

		By("reading systemd's view and the process table")
		v, err := node.SystemdView(ctx)
		Expect(err).NotTo(HaveOccurred())
		after, err := node.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		serving := node.Probe(ctx) == nil
		mainPID := "none"
		switch v.MainPID {
		case oldM:
			mainPID = "old"
		case newM:
			mainPID = "new"
		case 0:
		default:
			mainPID = fmt.Sprint(v.MainPID)
		}
		in := map[int]bool{}
		for _, p := range v.CgroupPIDs {
			in[p] = true
		}
		outside, orphans, binary := 0, 0, "none"
		for _, p := range after.Procs {
			if p.Role == proc.RoleOther || !p.Alive() {
				continue
			}
			if !in[p.PID] {
				outside++
			}
			if p.Role != proc.RoleMaster && !after.IsMaster(p.PPID) {
				orphans++
			}
		}
		if ms := after.Masters(); len(ms) == 1 {
			binary = ms[0].Binary
		}
		AddReportEntry("kill "+fc.Kill+" master under systemd", fmt.Sprintf(
			"systemd %s/%s result %s MainPID %d (%s) NRestarts %d cgroup %v; old %d new %d; serving %t binary %s orphans %d outside %d; processes: %s",
			v.ActiveState, v.SubState, v.Result, v.MainPID, mainPID, v.NRestarts, v.CgroupPIDs, oldM, newM, serving, binary, orphans, outside, after))
		Expect(v.ActiveState + "/" + v.SubState).To(Equal(fc.Active + "/" + fc.Sub))
		Expect(mainPID).To(Equal(fc.MainPID))
		Expect(serving).To(Equal(fc.Serving))
		Expect(binary).To(Equal(fc.Binary))
		Expect(orphans > 0).To(Equal(fc.Orphans), "orphans")
		Expect(outside > 0).To(Equal(fc.OutsideCgroup), "processes outside the cgroup")
		Expect(after.OldbinSet).To(Equal(fc.OldbinLeft), "nginx.pid.oldbin")
	},
		// The new master was never systemd's Main PID: systemd does not
		// notice. The old master serves on; the killed master's two workers
		// live on under PID 1, still in the unit's cgroup (a stop of the
		// unit would end them).
		Entry("the new master killed after USR2: systemd does not notice, orphans stay in the unit", SpecTimeout(2*time.Minute),
			systemdFaultCase{Kill: "new", Active: "active", Sub: "running", MainPID: "old", Serving: true, Binary: "old", Orphans: true}),
		// The old master was the Main PID: on its exit systemd re-reads
		// PIDFile (nginx.pid names the new master since USR2) and follows
		// it; the unit stays active, no restart. nginx.pid.oldbin is left.
		Entry("the old master killed while its workers drain: systemd follows the new master", SpecTimeout(2*time.Minute),
			systemdFaultCase{Kill: "old", Active: "active", Sub: "running", MainPID: "new", Serving: true, Binary: "new", OldbinLeft: true}),
	)
})
