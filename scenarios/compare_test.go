package scenarios_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/procedure"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
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
	proc, err := procedure.Parse(spec)
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(outDir, "compare", proc.Name()+"-"+build)
	Expect(os.RemoveAll(dir)).To(Succeed())
	c := scenarios.Compare{Procedures: []procedure.Procedure{proc}, Builds: []string{build}, Timeout: timeout, Audit: 2 * time.Second}
	_, err = scenarios.RunCompare(ctx, pool, c, params, images, dir, progress)
	Expect(err).NotTo(HaveOccurred())

	By("reading its row back from report.json")
	var r reports.CompareReport
	data, err := os.ReadFile(filepath.Join(dir, reports.ReportJSON))
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

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
