package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios/vm"
)

// vmRate is the scenarios' load in the emulated VM (requests per second, a
// new connection each; NUH_VM_RATE changes it), vmCompareRate the
// procedures'. The scenarios judge the load's own silence in windows of
// three request intervals, and under emulation the CLI's sender pauses
// about 200 ms (up to 230) once or twice in most upgrade and rollback runs
// (docs/vm.md: measured in 12 runs), so a gap between two sends reaches
// an interval plus that: at 25 req/s (120 ms windows) that made about half
// of them error, at 10 req/s a gap reached 302 ms against 300 ms windows;
// at 5 req/s gaps stay under 430 ms against 600 ms windows.
const (
	vmRate        = 5
	vmCompareRate = 25
)

// vmProcedures are the compare procedures run in the VM, with what
// docs/findings.md ("Packaging scripts") lists for each build.
var vmProcedures = []struct{ Name, Good, Broken string }{
	{"systemd-package", reports.OutcomeRestarted, reports.OutcomeDown},
	{"systemd-manual", reports.OutcomeUpgraded, reports.OutcomeKeptOld},
	{"systemctl-reload", reports.OutcomeKeptOld, reports.OutcomeKeptOld},
	{"systemctl-restart", reports.OutcomeRestarted, reports.OutcomeDown},
}

// vmShutdownTimeout is the VM run's worker_shutdown_timeout (see the spec).
const vmShutdownTimeout = "90s"

// vmScenarios are the run's scenarios in the VM, each with its verdict.
var vmScenarios = []string{"upgrade", "rollback", "kill-fallback"}

// A host like today's CI runners (cgroup v2, a current Docker) made here:
// a Debian trixie VM under QEMU (KVM where this machine really has it,
// else software emulation), its disk made once into the user's cache. The
// images are built on this machine and loaded there; the CLI, built
// static, runs the scenarios and the systemd procedures inside, its load
// on the VM's own 127.0.0.1; report.json comes back on a disk.
var _ = Describe("the harness on a cgroup v2 host (a Debian trixie VM)", Label("vm"), Serial, func() {
	It("passes upgrade, rollback and kill-fallback and shows each systemd procedure's outcome", func(ctx SpecContext) {
		rate := vmRate
		if v := os.Getenv("NUH_VM_RATE"); v != "" {
			var err error
			rate, err = strconv.Atoi(v)
			Expect(err).NotTo(HaveOccurred(), "NUH_VM_RATE")
		}
		work, err := os.MkdirTemp("", "nuh-vm-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, work)

		By("making the VM disk, or finding it in the cache")
		mirror, err := vm.Mirror()
		Expect(err).NotTo(HaveOccurred())
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		disk, err := vm.EnsureDisk(dctx, mirror, GinkgoWriter)
		cancel()
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("vm disk", fmt.Sprintf("%s (%s)", disk.Dir, time.Since(start).Round(time.Second)))

		By("building the CLI, static (CGO_ENABLED=0)")
		cli := filepath.Join(work, "nuh")
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		build := exec.CommandContext(bctx, goTool(), "build", "-o", cli, "./cmd/nginx-upgrade-harness")
		build.Dir, build.Env = "..", append(os.Environ(), "CGO_ENABLED=0")
		out, err := build.CombinedOutput()
		cancel()
		Expect(err).NotTo(HaveOccurred(), "go build: %s", out)

		By("saving the images the run needs (docker save on this machine)")
		im := ensureSystemdImages(ctx)
		refs := []string{im.Good, im.Broken, im.GoodSystemd, im.BrokenSystemd}
		saved := filepath.Join(work, "images.tar")
		f, err := os.Create(saved)
		Expect(err).NotTo(HaveOccurred())
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err = pool.Client.ExportImages(dc.ExportImagesOptions{Names: refs, OutputStream: f, Context: sctx})
		cancel()
		Expect(f.Close()).To(Succeed())
		Expect(err).NotTo(HaveOccurred())

		// The archive as a user on any host names it: --archive (the guest
		// has no apt sources of this machine's).
		builds := []string{"--from", params.From.Spec, "--to", params.To.Spec, "--archive", mirror}
		// The default config but for worker_shutdown_timeout, 90 s instead
		// of 20 s: each step takes 5-7 s under emulation, so a drain from
		// WINCH to the drain-ending QUIT outlasts 20 s less the margin, and
		// the long downloads, which must span it, would be cut by the
		// timeout or planned to end before the QUIT (docs/vm.md: measured).
		conf := strings.Replace(nginx.DefaultConfig, "worker_shutdown_timeout 20s;", "worker_shutdown_timeout "+vmShutdownTimeout+";", 1)
		Expect(conf).NotTo(Equal(nginx.DefaultConfig), "the default config's worker_shutdown_timeout")
		confPath := filepath.Join(work, "nginx.conf")
		Expect(os.WriteFile(confPath, []byte(conf), 0o644)).To(Succeed())
		r := strconv.Itoa(rate)
		cliPath := vm.InDir + "/nuh"
		var compareArgs []string
		for _, p := range vmProcedures {
			compareArgs = append(compareArgs, "--procedure", p.Name)
		}
		steps := []vm.Step{
			{Name: "load", Argv: []string{"docker", "load", "-i", "/dev/vdd"}, Timeout: 15 * time.Minute},
			{Name: "engine", Argv: []string{"docker", "info", "--format", "cgroup {{.CgroupVersion}} {{.CgroupDriver}} docker {{.ServerVersion}}"}, Timeout: time.Minute},
			// Through the CI gate, as docs/ci.md has a user's job run it:
			// an invalid measurement (exit 3) is run once more, the first
			// attempt kept as run-attempt-1; a fail is never run again.
			{Name: "run", Argv: append([]string{"sh", vm.InDir + "/gate.sh", "run", cliPath, "run", "--scenario", "upgrade", "--scenario", "rollback", "--scenario", "kill-fallback",
				"--rate", r, "--config", vm.InDir + "/nginx.conf"}, builds...), Timeout: 40 * time.Minute},
			{Name: "compare", Argv: append(append([]string{cliPath, "compare", "--rate", strconv.Itoa(vmCompareRate), "--out", "compare", "--broken", params.Broken.Spec}, builds...), compareArgs...),
				Timeout: 30 * time.Minute},
		}
		script, err := vm.Script(steps)
		Expect(err).NotTo(HaveOccurred())

		By("booting the VM on a throwaway overlay")
		m, err := vm.Boot(ctx, disk, vm.Job{Script: script, Files: map[string]string{"nuh": cli, "nginx.conf": confPath, "gate.sh": "../examples/ci/gate.sh"}, Images: saved}, work, vm.Options{})
		Expect(err).NotTo(HaveOccurred(), "QEMU must start: the VM spec never skips")
		DeferCleanup(m.Close)
		AddReportEntry("vm accelerator", m.Accel)
		bootStart := time.Now()
		up, err := m.Wait(ctx, vm.GuestUp, 12*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("vm boot", fmt.Sprintf("%s: %s", time.Since(bootStart).Round(time.Second), up))
		Expect(up).To(ContainSubstring("cgroup cgroup2fs"))

		for _, s := range steps {
			By("in the VM: " + strings.Join(s.Argv[:min(len(s.Argv), 3)], " ") + " …")
			t := time.Now()
			line, err := m.Wait(ctx, vm.StepEnd(s.Name), s.Timeout+time.Minute)
			Expect(err).NotTo(HaveOccurred())
			AddReportEntry("vm step "+s.Name, fmt.Sprintf("%s: %s", time.Since(t).Round(time.Second), line))
		}
		By("shutting the VM down and reading what it wrote")
		_, err = m.Wait(ctx, vm.JobDone, 3*time.Minute)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.WaitExit(2 * time.Minute)).To(Succeed())
		res := filepath.Join(outDir, "vm")
		Expect(os.RemoveAll(res)).To(Succeed())
		Expect(m.Results(res)).To(Succeed())
		GinkgoWriter.Printf("the VM's files: %s\n", res)
		for _, s := range steps[:2] {
			Expect(readTrim(filepath.Join(res, s.Name+".exit"))).To(Equal("0"), "%s: %s", s.Name, readTrim(filepath.Join(res, s.Name+".log")))
		}
		Expect(readTrim(filepath.Join(res, "engine.log"))).To(HavePrefix("cgroup 2 "), "the VM's Docker runs on cgroup v2")

		By("reading the scenarios' verdicts from the VM's report.json")
		if first, err := record.ReadReport(filepath.Join(res, "run-attempt-1", record.ReportJSON)); err == nil {
			for _, sc := range first.Scenarios {
				AddReportEntry("vm attempt 1 "+sc.Name, fmt.Sprintf("verdict=%s dropped=%d requests=%d reasons=%v", sc.Verdict, sc.Dropped, sc.Requests.Total, sc.Reasons))
			}
		}
		var run record.Report
		data, err := os.ReadFile(filepath.Join(res, "run", record.ReportJSON))
		Expect(err).NotTo(HaveOccurred(), "run: %s", readTrim(filepath.Join(res, "run.log")))
		Expect(jsonUnmarshal(data, &run)).To(Succeed())
		Expect(run.Scenarios).To(HaveLen(len(vmScenarios)))
		for i, sc := range run.Scenarios {
			Expect(sc.Name).To(Equal(vmScenarios[i]))
			AddReportEntry("vm "+sc.Name, fmt.Sprintf("verdict=%s dropped=%d requests=%d reasons=%v", sc.Verdict, sc.Dropped, sc.Requests.Total, sc.Reasons))
			Expect(sc.Verdict).To(Equal(record.VerdictPass), "%s: %v", sc.Name, sc.Reasons)
		}
		Expect(readTrim(filepath.Join(res, "run.exit"))).To(Equal("0"))

		By("reading each procedure's outcome from the VM's compare report.json")
		var cmp reports.CompareReport
		data, err = os.ReadFile(filepath.Join(res, "compare", record.ReportJSON))
		Expect(err).NotTo(HaveOccurred(), "compare: %s", readTrim(filepath.Join(res, "compare.log")))
		Expect(jsonUnmarshal(data, &cmp)).To(Succeed())
		Expect(cmp.Procedures).To(HaveLen(2 * len(vmProcedures)))
		for _, row := range cmp.Procedures {
			AddReportEntry("vm "+row.Name+" "+row.Build, fmt.Sprintf("outcome=%s init=%s exit=%d dropped=%d requests=%d error=%q",
				row.Outcome, row.Init, row.ExitCode, row.Dropped, row.Requests.Total, row.Error))
		}
		for i, p := range vmProcedures {
			for j, want := range []struct{ build, outcome string }{{reports.BuildGood, p.Good}, {reports.BuildBroken, p.Broken}} {
				row := cmp.Procedures[2*i+j]
				Expect(row.Name).To(Equal(p.Name))
				Expect(row.Build).To(Equal(want.build))
				Expect(row.Error).To(BeEmpty(), "%s %s", p.Name, want.build)
				Expect(row.Init).To(Equal(record.InitSystemd))
				Expect(row.Requests.Total).To(BeNumerically(">", 0))
				Expect(row.Outcome).To(Equal(want.outcome), "%s %s: notes %v", p.Name, want.build, row.Notes)
			}
		}
	}, SpecTimeout(90*time.Minute))
})

func readTrim(p string) string {
	data, _ := os.ReadFile(p)
	return strings.TrimSpace(string(data))
}

// goTool is the go command that runs this test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
