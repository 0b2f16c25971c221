package scenarios_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// burnerDeadline bounds each CPU burner whatever happens to the spec: the
// burner is killed by `timeout` then, if the spec has not stopped it first.
const burnerDeadline = 3 * time.Minute

// burnCPU starts n busy-loop processes — a neighbour that keeps n cores
// busy, as other jobs on a shared CI runner do — each bounded by
// burnerDeadline, and returns what stops them all. `timeout` puts itself
// and its child in a process group of their own: the group is killed.
func burnCPU(n int) func() {
	var groups []int
	for range n {
		cmd := exec.Command("timeout", "--signal=KILL", strconv.Itoa(int(burnerDeadline.Seconds())), "sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		Expect(cmd.Start()).To(Succeed(), "start a CPU burner")
		groups = append(groups, cmd.Process.Pid)
		go cmd.Wait()
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, pgid := range groups {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	DeferCleanup(stop)
	return stop
}

// noisyRuns is how many upgrades run beside the burner: half with one core
// busy, half with both.
const noisyRuns = 10

// The verdict must not cry wolf on a busy machine: beside a neighbour that
// keeps one core, then both, busy, an upgrade that lost nothing is never a
// fail (a stall the observer could not see is an error, and few of those:
// all-error would prove nothing), and a real loss is still a fail.
var _ = Describe("the verdict beside a noisy neighbour", Label("noisy"), Serial, func() {
	It("gives no fail without a loss in 10 upgrades beside a CPU burner, and fails a real loss beside it", func(ctx SpecContext) {
		began := time.Now()
		By("waiting for the machine to be quiet but for this spec: its burner is to be the only neighbour")
		Eventually(loadAverage).WithContext(ctx).WithTimeout(quietWait).WithPolling(5*time.Second).Should(BeNumerically("<", runtime.NumCPU()),
			"the machine is busy already (1-minute load average on %d cores): beside other load the spec would measure that, not its own burner", runtime.NumCPU())
		scs, err := scenarios.Lookup([]string{"upgrade"})
		Expect(err).NotTo(HaveOccurred())
		sc := scs[0]
		base := filepath.Join(outDir, "noisy")

		var lines []string
		falseAlarms, errs, lossFails := 0, 0, 0
		for i := range noisyRuns {
			if ctx.Err() != nil {
				break
			}
			busy := 1 + i*2/noisyRuns // 1 for the first half, 2 for the second
			dir := filepath.Join(base, fmt.Sprintf("run-%02d", i+1))
			By(fmt.Sprintf("run %d of %d: upgrade beside %d busy core(s)", i+1, noisyRuns, busy))
			stop := burnCPU(busy)
			start := time.Now()
			runErr := scenarios.Run(ctx, pool, sc, params, images.Good, dir, progress)
			stop()
			_, rerr := scenarios.Render(dir)
			Expect(rerr).NotTo(HaveOccurred())
			s := reportIn(dir, sc.Name)
			// Tallied through the public API's matchers, as a user's spec
			// would read a verdict: a fail that lost nothing is a false alarm.
			isFail, _ := upgradetest.HaveVerdict(record.VerdictFail).Match(s)
			isError, _ := upgradetest.HaveVerdict(record.VerdictError).Match(s)
			switch {
			case isError:
				errs++
			case isFail:
				if lost, err := upgradetest.HaveLost("", "").Match(s); err == nil && lost {
					lossFails++
				} else {
					falseAlarms++
				}
			}
			blind := 0
			if s.Observer != nil {
				blind = s.Observer.Unhealthy
			}
			line := fmt.Sprintf("run %d, %d busy: verdict=%s dropped=%d stall=%.0f ms in %s, observer blind in %d windows (worst late %.0f, hiccup %.0f, probe %.0f ms), took %s, reasons=%v",
				i+1, busy, s.Verdict, s.Dropped, s.Stall.Ms, s.Stall.Phase, blind, worst(s).LateMs, worst(s).HiccupMs, worst(s).ProbeMs,
				time.Since(start).Round(time.Second), s.Reasons)
			if runErr != nil {
				line += fmt.Sprintf(" (could not run: %v)", runErr)
			}
			progress("noisy: %s", line)
			lines = append(lines, line)
		}

		By("a deterministic loss beside both cores busy: worker_shutdown_timeout 2s against the long downloads")
		p := params
		p.Config = shortShutdown(params.Config)
		Expect(p.Load.Slow).To(BeNumerically(">", 0), "the long downloads are what the short shutdown cuts")
		sdir := filepath.Join(base, "shutdown-timeout-2s")
		stop := burnCPU(2)
		lossy := judged(ctx, sdir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, p, images.Good, sdir, progress) })
		stop()
		sensitivity := fmt.Sprintf("verdict=%s, %d of %d long downloads cut, reasons=%v", lossy.Verdict, lossy.Slow.Cut, lossy.Slow.Started, lossy.Reasons)

		AddReportEntry("noisy neighbour", fmt.Sprintf("false alarms (fail with nothing lost): %d of %d; errors: %d; fails with a loss: %d; sensitivity (shutdown timeout beside 2 busy cores): %s; took %s\n%s",
			falseAlarms, len(lines), errs, lossFails, sensitivity, time.Since(began).Round(time.Second), strings.Join(lines, "\n")))
		Expect(lines).To(HaveLen(noisyRuns), "every run ran")
		Expect(falseAlarms).To(BeZero(), "a fail with nothing lost is a false alarm:\n%s", strings.Join(lines, "\n"))
		Expect(errs).To(BeNumerically("<=", 2), "more than 2 errors in %d runs: the measurement is too often invalid to prove anything", noisyRuns)
		Expect(lossy).To(upgradetest.HaveVerdict(record.VerdictFail), "the loss is still a fail beside the burner")
		Expect(lossy).To(upgradetest.HaveLost(record.CauseSlowCut, "old-workers-draining"), "the short shutdown cuts the long downloads as it drains")
		Expect(lossy.Slow.Cut).To(Equal(p.Load.Slow), "every long download is cut")
	}, SpecTimeout(25*time.Minute+quietWait))
})

// quietWait is how long the spec waits for the machine's load average to
// fall below its cores (a Serial spec starts right after the parallel ones,
// whose load takes a minute or so to decay from the average).
const quietWait = 3 * time.Minute

// loadAverage is the 1-minute load average (/proc/loadavg).
func loadAverage() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/loadavg is empty")
	}
	return strconv.ParseFloat(f[0], 64)
}

// worst is the observer's worst window of a run (zero without a record).
func worst(s record.Scenario) record.ObserverSpan {
	if s.Observer == nil {
		return record.ObserverSpan{}
	}
	return record.ObserverSpan{LateMs: s.Observer.WorstLateMs, HiccupMs: s.Observer.WorstHiccupMs, ProbeMs: s.Observer.WorstProbeMs}
}
