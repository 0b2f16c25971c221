package scenarios_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// procedureCase is what a procedure was measured to do with one build, so
// that a change in a packaging script's behaviour fails the gate.
type procedureCase struct {
	Spec    string
	Build   string
	Outcome string
	Exit    int
	OnDisk  string // the binary left at /usr/sbin/nginx: what a restart would run
	Dropped bool   // whether it may drop (none of the measured ones does)
	Timeout time.Duration
	// Note is a substring one of the row's notes must hold.
	Note string
}

// compareOnce runs one procedure with one build through RunCompare into
// its own directory and reads its row back from the report.json written.
func compareOnce(ctx SpecContext, spec, build string, timeout time.Duration) reports.Procedure {
	return compareOnceWith(ctx, images, spec, build, timeout)
}

// compareOnceWith is compareOnce with the images to use.
func compareOnceWith(ctx SpecContext, im scenarios.Images, spec, build string, timeout time.Duration) reports.Procedure {
	proc, err := procedure.Parse(spec)
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(outDir, "compare", proc.Name()+"-"+build)
	Expect(os.RemoveAll(dir)).To(Succeed())
	c := scenarios.Compare{Procedures: []procedure.Procedure{proc}, Builds: []string{build}, Timeout: timeout, Audit: 2 * time.Second}
	_, err = scenarios.RunCompare(ctx, pool, c, params, im, dir, progress)
	Expect(err).NotTo(HaveOccurred())

	By("reading its row back from report.json")
	var r reports.CompareReport
	data, err := os.ReadFile(filepath.Join(dir, record.ReportJSON))
	Expect(err).NotTo(HaveOccurred())
	Expect(jsonUnmarshal(data, &r)).To(Succeed())
	Expect(r.Procedures).To(HaveLen(1))
	row := r.Procedures[0]
	AddReportEntry(spec+" "+build, fmt.Sprintf("outcome=%s exit=%d duration=%.0fms dropped=%d requests=%d failed=%d on_disk=%s final=%+v restart=%v notes=%v error=%q",
		row.Outcome, row.ExitCode, row.DurationMs, row.Dropped, row.Requests.Total, row.Requests.Failed, row.BinaryOnDisk, row.Final, row.Restart, row.Notes, row.Error))

	By("checking that its container is gone")
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true,
		Filters: map[string][]string{"label": {harness.Label + ".procedure", harness.Label + ".owner-pid=" + strconv.Itoa(os.Getpid())}}})
	Expect(err).NotTo(HaveOccurred())
	Expect(cs).To(BeEmpty(), "a compare run leaves no container behind")
	return row
}

var _ = Describe("upgrade procedures compared", Label("compare"), func() {
	DescribeTable("what each built-in procedure is observed to do", func(ctx SpecContext, pc procedureCase) {
		By(fmt.Sprintf("running %s with the %s build under load", pc.Spec, pc.Build))
		row := compareOnce(ctx, pc.Spec, pc.Build, pc.Timeout)
		Expect(row.Error).To(BeEmpty())
		Expect(row.Requests.Total).To(BeNumerically(">", 0))
		Expect(row.Outcome).To(Equal(pc.Outcome), "restart evidence: %v; notes: %v", row.Restart, row.Notes)
		Expect(row.ExitCode).To(Equal(pc.Exit))
		Expect(row.BinaryOnDisk).To(Equal(pc.OnDisk))
		Expect(row.TimedOut).To(BeFalse())
		Expect(row.Final.Serving).To(BeTrue())
		Expect(row.Final.Masters).To(Equal(1))
		if !pc.Dropped {
			Expect(row.Dropped).To(BeZero(), "failures: %v, retried %d, downloads cut %d", row.Failures, row.Retried, row.SlowCut)
		}
		if pc.Note != "" {
			Expect(strings.Join(row.Notes, "\n")).To(ContainSubstring(pc.Note))
		}
	},
		Entry("manual, good build: upgraded, nothing lost", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "manual", Build: reports.BuildGood, Outcome: reports.OutcomeUpgraded, Exit: 0, OnDisk: "new"}),
		Entry("manual, broken build: USR2 fails, the old binary is put back", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "manual", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 1, OnDisk: "old"}),
		Entry("debian-initd, good build: USR2 then QUIT of the old master, no WINCH", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-initd", Build: reports.BuildGood, Outcome: reports.OutcomeUpgraded, Exit: 0, OnDisk: "new"}),
		// The init script waits 10 s for nginx.pid.oldbin, gives up with
		// status 2, and leaves the broken binary at /usr/sbin/nginx.
		Entry("debian-initd, broken build: gives up after its wait, the broken binary stays on disk", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-initd", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 2, OnDisk: "new"}),
		// In a container without /sbin/init and without a policy-rc.d,
		// invoke-rc.d blocks every action: the postinst neither upgrades nor
		// restarts, dpkg succeeds, the old binary keeps serving.
		Entry("debian-package, good build: invoke-rc.d blocks, nginx is not touched", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-package", Build: reports.BuildGood, Outcome: reports.OutcomeKeptOld, Exit: 0, OnDisk: "new",
				Note: "no /sbin/init"}),
		Entry("debian-package, broken build: invoke-rc.d blocks, dpkg succeeds", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-package", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 0, OnDisk: "new",
				Note: "repackaged"}),
		// With invoke-rc.d allowed, the postinst runs `upgrade || restart`.
		Entry("debian-package-host, good build: the postinst's init-script upgrade", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-package-host", Build: reports.BuildGood, Outcome: reports.OutcomeUpgraded, Exit: 0, OnDisk: "new"}),
		// upgrade fails, restart refuses (its config test fails with the
		// broken binary), the postinst fails: dpkg exits 1, the package is
		// left half-configured, the old master keeps serving.
		Entry("debian-package-host, broken build: upgrade fails, restart refuses, dpkg fails", SpecTimeout(4*time.Minute),
			procedureCase{Spec: "debian-package-host", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 1, OnDisk: "new"}),
	)

	Describe("a user's script", func() {
		var scriptDir string
		BeforeEach(func() { scriptDir = GinkgoT().TempDir() })
		script := func(name, body string) string {
			p := filepath.Join(scriptDir, name)
			Expect(os.WriteFile(p, []byte(body), 0o755)).To(Succeed())
			return "script:" + p
		}

		It("that exits non-zero is reported with its exit code and output", func(ctx SpecContext) {
			row := compareOnce(ctx, script("refuse.sh", "#!/bin/sh\necho 'refusing to upgrade' >&2\nexit 3\n"), reports.BuildGood, 30*time.Second)
			Expect(row.Error).To(BeEmpty())
			Expect(row.ExitCode).To(Equal(3))
			Expect(row.TimedOut).To(BeFalse())
			Expect(row.Outcome).To(Equal(reports.OutcomeKeptOld))
			Expect(row.Reasons).To(ContainElement(ContainSubstring("refusing to upgrade")))
			Expect(os.ReadFile(filepath.Join(outDir, "compare", row.Dir, row.Dir, reports.ProcedureStderr))).To(ContainSubstring("refusing to upgrade"))
		}, SpecTimeout(3*time.Minute))

		It("that hangs is killed at its timeout and nothing of it survives", func(ctx SpecContext) {
			// TERM is ignored (and the ignoring inherited by sleep): only
			// timeout(1)'s KILL after its grace period ends it.
			row := compareOnce(ctx, script("hang.sh", "#!/bin/sh\ntrap '' TERM\necho started\nsleep 1000\n"), reports.BuildGood, 2*time.Second)
			Expect(row.Error).To(BeEmpty())
			Expect(row.TimedOut).To(BeTrue())
			Expect(row.ExitCode).To(Equal(137))
			Expect(row.DurationMs).To(BeNumerically("<", 20000))
			Expect(row.Notes).To(ContainElement(ContainSubstring("hung")))
			Expect(row.Outcome).To(Equal(reports.OutcomeKeptOld))
			after, err := os.ReadFile(filepath.Join(outDir, "compare", row.Dir, row.Dir, reports.ProcessesAfter))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(after)).NotTo(ContainSubstring("sleep 1000"), "the hung procedure's processes are gone")
			Expect(string(after)).NotTo(ContainSubstring("hang.sh"))
		}, SpecTimeout(3*time.Minute))

		It("that only sends USR2 is reported as leaving two masters", func(ctx SpecContext) {
			row := compareOnce(ctx, script("usr2-only.sh", `#!/bin/sh
set -e
cp "$NGINX_NEW_BINARY" "$NGINX_BINARY.tmp"
mv -f "$NGINX_BINARY.tmp" "$NGINX_BINARY"
kill -s USR2 "$(cat "$NGINX_PID_FILE")"
`), reports.BuildGood, 30*time.Second)
			Expect(row.Error).To(BeEmpty())
			Expect(row.ExitCode).To(Equal(0))
			Expect(row.Outcome).To(Equal(reports.OutcomeTwoMasters))
			Expect(row.Final.Masters).To(Equal(2))
			Expect(row.Dropped).To(BeZero())
		}, SpecTimeout(3*time.Minute))
	})
})

// systemdCase is what a procedure under systemd was measured to do with
// one build, systemd's view at the end included: a change in the unit file
// or a maintainer script fails the gate.
type systemdCase struct {
	Spec    string
	Build   string
	Outcome string
	Exit    int
	OnDisk  string
	Drops   bool   // measured to drop (connection refused while nothing listens)
	Active  string // nginx.service's ActiveState at the end
	Serving bool
}

// systemdImages are the systemd variants of the suite's pair images: built
// by the suite's setup, found in the cache by the first systemd entry of
// each process.
var systemdImages scenarios.Images

func ensureSystemdImages(ctx SpecContext) scenarios.Images {
	if systemdImages.GoodSystemd == "" {
		Expect(nginx.CheckSystemdHost(ctx, pool)).To(Succeed(), "this engine cannot run systemd as PID 1 in a container")
		im, err := scenarios.PrepareSystemdImages(ctx, pool, images, progress)
		Expect(err).NotTo(HaveOccurred())
		systemdImages = im
	}
	return systemdImages
}

// Not Serial: the suite's setup builds the systemd images once, before any
// process starts a spec; each container is a systemd of its own.
var _ = Describe("upgrade procedures under systemd", Label("compare", "systemd"), func() {
	DescribeTable("what each procedure is observed to do with systemd as PID 1", func(ctx SpecContext, sc systemdCase) {
		im := ensureSystemdImages(ctx)
		By(fmt.Sprintf("running %s with the %s build under load, systemd as PID 1", sc.Spec, sc.Build))
		row := compareOnceWith(ctx, im, sc.Spec, sc.Build, 0)
		Expect(row.Error).To(BeEmpty())
		Expect(row.Init).To(Equal(record.InitSystemd))
		Expect(row.Requests.Total).To(BeNumerically(">", 0))
		Expect(row.Outcome).To(Equal(sc.Outcome), "restart evidence: %v; notes: %v", row.Restart, row.Notes)
		Expect(row.ExitCode).To(Equal(sc.Exit))
		Expect(row.BinaryOnDisk).To(Equal(sc.OnDisk))
		Expect(row.TimedOut).To(BeFalse())
		Expect(row.Final.Serving).To(Equal(sc.Serving))
		if sc.Drops {
			Expect(row.Dropped).To(BeNumerically(">", 0), "a stop then start refuses connections")
			Expect(row.Failures).To(HaveKey("refused"))
		} else {
			Expect(row.Dropped).To(BeZero(), "failures: %v, retried %d, downloads cut %d", row.Failures, row.Retried, row.SlowCut)
		}
		By("comparing systemd's view with the process table")
		Expect(row.Final.Systemd).NotTo(BeNil())
		Expect(row.Final.Systemd.ActiveState).To(Equal(sc.Active))
		Expect(row.Final.Wrong).To(BeEmpty(), "systemd and the processes agree: %+v", row.Final.Systemd)
		if sc.Serving {
			Expect(row.Final.Masters).To(Equal(1))
			Expect(row.Final.Systemd.MainPID).To(Equal(row.Final.PIDFilePID), "systemd follows the master nginx.pid names")
			Expect(row.Final.Systemd.CgroupPIDs).To(HaveLen(len(row.Final.Processes)))
		} else {
			Expect(row.Final.Masters).To(BeZero())
			Expect(row.Final.Systemd.MainPID).To(BeZero())
		}
	},
		// nginx-common's postinst (dh_installsystemd) restarts nginx.service
		// on an upgrade when /run/systemd/system exists; nginx's postinst's
		// init-script upgrade then finds the new binary already serving.
		Entry("systemd-package, good build: nginx-common's postinst restarts nginx.service", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemd-package", Build: reports.BuildGood, Outcome: reports.OutcomeRestarted, Exit: 0, OnDisk: "new",
				Drops: true, Active: "active", Serving: true}),
		// The (repackaged) nginx postinst's `upgrade || restart`: upgrade
		// fails, restart stops nginx, the start's config test fails: down.
		Entry("systemd-package, broken build: upgrade fails, the restart fallback takes nginx down", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemd-package", Build: reports.BuildBroken, Outcome: reports.OutcomeDown, Exit: 1, OnDisk: "new",
				Drops: true, Active: "failed", Serving: false}),
		// systemd re-reads PIDFile when its main process exits: Main PID
		// moves to the new master, the unit stays active.
		Entry("systemd-manual, good build: systemd follows the new master", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemd-manual", Build: reports.BuildGood, Outcome: reports.OutcomeUpgraded, Exit: 0, OnDisk: "new",
				Active: "active", Serving: true}),
		Entry("systemd-manual, broken build: USR2 fails, the old binary is put back", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemd-manual", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 1, OnDisk: "old",
				Active: "active", Serving: true}),
		// HUP re-reads the config; the running binary stays.
		Entry("systemctl-reload, good build: the old binary keeps serving, the new one waits on disk", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemctl-reload", Build: reports.BuildGood, Outcome: reports.OutcomeKeptOld, Exit: 0, OnDisk: "new",
				Active: "active", Serving: true}),
		// ExecReload runs the binary on disk (`nginx -s reload`), whose
		// config parse fails: nothing is signalled.
		Entry("systemctl-reload, broken build: ExecReload fails, nothing is signalled", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemctl-reload", Build: reports.BuildBroken, Outcome: reports.OutcomeKeptOld, Exit: 1, OnDisk: "new",
				Active: "active", Serving: true}),
		Entry("systemctl-restart, good build: stop then start, refused meanwhile", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemctl-restart", Build: reports.BuildGood, Outcome: reports.OutcomeRestarted, Exit: 0, OnDisk: "new",
				Drops: true, Active: "active", Serving: true}),
		Entry("systemctl-restart, broken build: stopped, the start fails, down", SpecTimeout(4*time.Minute),
			systemdCase{Spec: "systemctl-restart", Build: reports.BuildBroken, Outcome: reports.OutcomeDown, Exit: 1, OnDisk: "new",
				Drops: true, Active: "failed", Serving: false}),
	)
})

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// gate runs procedures under an expectation through RunCompare into their
// own directory and reads the judged report back from report.json.
//
// As the suite's scenarios (judged), a gate that comes back error — its
// measurement did not hold — is run again, at most twice, every attempt in
// the report entry; a fail is never run again.
func gate(ctx SpecContext, im scenarios.Images, name string, c scenarios.Compare) reports.CompareReport {
	if c.Audit == 0 {
		c.Audit = 2 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	var r reports.CompareReport
	for n := 1; n <= maxAttempts; n++ {
		dir := filepath.Join(outDir, "gate", fmt.Sprintf("%s-%d", name, n))
		Expect(os.RemoveAll(dir)).To(Succeed())
		_, err := scenarios.RunCompare(ctx, pool, c, params, im, dir, progress)
		Expect(err).NotTo(HaveOccurred())
		r = reports.CompareReport{}
		data, err := os.ReadFile(filepath.Join(dir, record.ReportJSON))
		Expect(err).NotTo(HaveOccurred())
		Expect(jsonUnmarshal(data, &r)).To(Succeed())
		for _, s := range r.Summary {
			AddReportEntry(fmt.Sprintf("%s attempt %d: %s %s", name, n, s.Procedure, s.Build),
				fmt.Sprintf("verdict=%s outcomes=%s reasons=%v", s.Verdict, s.OutcomeWords(), s.Reasons))
		}
		if r.Verdict != record.VerdictError || ctx.Err() != nil {
			break
		}
	}
	Expect(r.Verdict).NotTo(Equal(record.VerdictError), "still error after %d attempts: the measurement did not hold", maxAttempts)
	return r
}

// script parses one of the packagers' example scripts.
func exampleScript(name string) procedure.Procedure {
	p, err := procedure.Parse("script:" + filepath.Join("testdata", "compare", name))
	Expect(err).NotTo(HaveOccurred())
	return p
}

// summaryOf is the summary row of a build.
func summaryOf(r reports.CompareReport, build string) reports.CompareSummary {
	for _, s := range r.Summary {
		if s.Build == build {
			return s
		}
	}
	Fail("no summary row for the " + build + " build")
	return reports.CompareSummary{}
}

var _ = Describe("the packagers' gate: compare --expect", Label("compare", "gate"), func() {
	// quit-early.sh (QUIT right after USR2) took nginx down in the runs of
	// docs/compare.md, but the new master sometimes wins that race: the
	// spec needs a script that takes nginx down every time.
	It("fails a script that takes nginx down, naming the row and why", func(ctx SpecContext) {
		r := gate(ctx, images, "stop-only", scenarios.Compare{Procedures: []procedure.Procedure{exampleScript("stop-only.sh")},
			Builds: []string{reports.BuildGood}, Expect: reports.DefaultCompareExpect()})
		Expect(r.Verdict).To(Equal(record.VerdictFail))
		good := summaryOf(r, reports.BuildGood)
		Expect(good.Verdict).To(Equal(record.VerdictFail))
		Expect(good.Reasons).To(ContainElement(HavePrefix("ended down, expected upgraded")))
		Expect(good.Reasons).To(ContainElement(MatchRegexp(`^\d+ requests dropped \(refused`)))
	}, SpecTimeout(6*time.Minute))

	It("passes a script that upgrades cleanly and exits non-zero when the new binary cannot start", func(ctx SpecContext) {
		r := gate(ctx, images, "upgrade", scenarios.Compare{Procedures: []procedure.Procedure{exampleScript("upgrade.sh")},
			Expect: reports.DefaultCompareExpect()})
		Expect(r.Verdict).To(Equal(record.VerdictPass), "summary: %+v", r.Summary)
		Expect(summaryOf(r, reports.BuildGood).Outcomes).To(HaveKey(reports.OutcomeUpgraded))
		broken := summaryOf(r, reports.BuildBroken)
		Expect(broken.Outcomes).To(HaveKey(reports.OutcomeKeptOld))
		for _, p := range r.Procedures {
			if p.Build == reports.BuildBroken {
				Expect(p.ExitCode).To(Equal(1), "the script says the new binary did not start")
			}
		}
	}, SpecTimeout(6*time.Minute))

	It("fails a race forced both ways as flaky, both outcomes counted", func(ctx SpecContext) {
		r := gate(ctx, images, "racy", scenarios.Compare{Procedures: []procedure.Procedure{exampleScript("racy.sh")},
			Builds: []string{reports.BuildGood}, Repeat: 4, Expect: reports.DefaultCompareExpect()})
		good := summaryOf(r, reports.BuildGood)
		Expect(good.Runs).To(Equal(4))
		Expect(good.Outcomes).To(HaveKeyWithValue(reports.OutcomeUpgraded, HaveField("Runs", 2)), "odd runs wait for the new master")
		Expect(good.Outcomes).To(HaveLen(2), "even runs quit too early: %s", good.OutcomeWords())
		Expect(good.Flaky).To(BeTrue())
		Expect(good.Verdict).To(Equal(record.VerdictFail))
		Expect(good.Reasons[0]).To(HavePrefix("flaky: "))
	}, SpecTimeout(10*time.Minute))
})

var _ = Describe("the packagers' gate under systemd: compare --init systemd", Label("compare", "gate", "systemd"), func() {
	It("runs a script that signals through systemctl kill and judges it like any other", func(ctx SpecContext) {
		im := ensureSystemdImages(ctx)
		p := exampleScript("systemd-upgrade.sh")
		Expect(p.SetInit(procedure.InitSystemd)).To(Succeed())
		r := gate(ctx, im, "systemd-upgrade", scenarios.Compare{Procedures: []procedure.Procedure{p}, Expect: reports.DefaultCompareExpect()})
		Expect(r.Verdict).To(Equal(record.VerdictPass), "summary: %+v", r.Summary)
		for _, row := range r.Procedures {
			Expect(row.Init).To(Equal(record.InitSystemd))
			Expect(row.Unit).To(ContainSubstring("nginx.service"))
			Expect(row.SystemdBefore).NotTo(BeNil())
			Expect(row.SystemdBefore.ActiveState).To(Equal("active"))
			Expect(row.Final.Systemd).NotTo(BeNil())
			Expect(row.Final.Systemd.MainPID).To(Equal(row.Final.PIDFilePID), "systemd follows the master nginx.pid names")
		}
	}, SpecTimeout(8*time.Minute))
})
