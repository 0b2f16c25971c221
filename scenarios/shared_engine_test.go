package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// hostScenarios are what the second harness, the CLI on the host, runs
// while the bare one runs bareScenarios.
var hostScenarios = []string{"upgrade", "rollback"}

// Two harnesses on one engine, as two CI jobs sharing a host's socket are:
// the bare CLI in its own pid namespace (where its pid is 1, meaningless
// to the host), and seconds later, once the bare run's first container is
// up, the CLI on the host, whose start-up sweep meets the bare run's
// containers. Neither may touch the other's: both end with their usual
// verdicts, nothing lost where nothing is lost alone. Serial: the two runs
// share the machine with each other only.
var _ = Describe("two harnesses on one engine", Label("bare", "shared-engine"), Serial, longSpec(2), func() {
	It("leave each other's containers alone and reach their usual verdicts", func(ctx SpecContext) {
		b := bareSetup(ctx)
		base := filepath.Join(outDir, "shared-engine")
		var lines []string
		var bareDir, hostDir string
		var bareCode, hostCode int
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			bareDir = filepath.Join(base, fmt.Sprintf("attempt-%d", attempt), "bare")
			hostDir = filepath.Join(base, fmt.Sprintf("attempt-%d", attempt), "host")
			for _, d := range []string{bareDir, hostDir} {
				Expect(os.MkdirAll(d, 0o777)).To(Succeed())
			}
			abs, err := filepath.Abs(bareDir)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.Chmod(abs, 0o777)).To(Succeed(), "nobody writes the report there")

			By(fmt.Sprintf("attempt %d: the bare CLI runs %s", attempt, strings.Join(bareScenarios, ",")))
			cctx, cancel := context.WithTimeout(ctx, bareDeadline)
			DeferCleanup(cancel)
			id := createBare(cctx, b.ref, b.gid, b.socket, abs, b.mirror, bareScenarios)
			type ended struct {
				code int
				logs string
				err  error
				at   time.Time
			}
			bareDone := make(chan ended, 1)
			bareStart := time.Now()
			go func() {
				code, logs, err := startAndWaitBare(cctx, id)
				bareDone <- ended{code, logs, err, time.Now()}
			}()

			By("waiting for the bare run's first nginx container")
			var early *ended
			Eventually(func() bool {
				select {
				case e := <-bareDone:
					early = &e
					return true
				default:
				}
				return len(bareRunContainers(ctx)) > 0
			}).WithContext(ctx).WithTimeout(4*time.Minute).WithPolling(250*time.Millisecond).Should(BeTrue(),
				"the bare run created no container")
			if early != nil {
				Fail(fmt.Sprintf("the bare run ended before the second harness started (exit %d): %s", early.code, harness.LastLine(early.logs)))
			}
			seen := bareRunContainers(ctx)
			hostStart := time.Now()

			By(fmt.Sprintf("the CLI on the host runs %s beside it, %s after", strings.Join(hostScenarios, ","), hostStart.Sub(bareStart).Round(100*time.Millisecond)))
			hctx, hcancel := context.WithTimeout(ctx, bareDeadline)
			cmd := exec.CommandContext(hctx, b.bin, append(scenarioFlags(hostScenarios), "--from", params.From.Spec, "--to", params.To.Spec, "--out", hostDir)...)
			out, herr := cmd.CombinedOutput()
			hcancel()
			hostEnd := time.Now()
			Expect(os.WriteFile(filepath.Join(hostDir, "cli.log"), out, 0o644)).To(Succeed())
			hostCode = cmd.ProcessState.ExitCode()
			if herr != nil && hostCode < 0 {
				Fail(fmt.Sprintf("the host CLI: %v", herr))
			}

			e := <-bareDone
			cancel()
			Expect(os.WriteFile(filepath.Join(bareDir, "cli.log"), []byte(e.logs), 0o644)).To(Succeed())
			Expect(e.err).NotTo(HaveOccurred(), "the bare CLI did not end within %s", bareDeadline)
			bareCode = e.code
			lines = append(lines, fmt.Sprintf("attempt %d: bare exit %d in %s, host exit %d in %s, started %s apart, %d bare container(s) up when the host run swept, overlap %s",
				attempt, bareCode, e.at.Sub(bareStart).Round(time.Second), hostCode, hostEnd.Sub(hostStart).Round(time.Second),
				hostStart.Sub(bareStart).Round(100*time.Millisecond), len(seen), overlap(bareStart, e.at, hostStart, hostEnd).Round(time.Second)))
			Expect(e.at.After(hostStart)).To(BeTrue(), "the two runs did not overlap")
			if bareCode != 3 && hostCode != 3 { // 3: an invalid measurement (error): run both again, as CI is told to
				break
			}
		}
		AddReportEntry("two harnesses on one engine", strings.Join(lines, "; "))

		for _, run := range []struct {
			who       string
			dir       string
			code      int
			scenarios []string
		}{{"bare", bareDir, bareCode, bareScenarios}, {"host", hostDir, hostCode, hostScenarios}} {
			r, err := record.ReadReport(filepath.Join(run.dir, record.ReportJSON))
			Expect(err).NotTo(HaveOccurred(), "the %s CLI wrote no report (exit %d): %s", run.who, run.code, filepath.Join(run.dir, "cli.log"))
			Expect(run.code).To(BeZero(), "the %s CLI: exit %d: %s", run.who, run.code, filepath.Join(run.dir, "cli.log"))
			Expect(r.Scenarios).To(HaveLen(len(run.scenarios)))
			for _, s := range r.Scenarios {
				Expect(s).To(upgradetest.PassVerdict(), "%s: %s", run.who, s.Name)
				if s.Name != "kill-fallback" {
					Expect(s).To(upgradetest.DropNothing(), "%s: %s", run.who, s.Name)
				}
			}
		}
	}, SpecTimeout(3*bareDeadline+2*time.Minute))
})

// bareRunContainers lists the containers of the bare CLI's run: made by a
// process that is pid 1 in its own namespace (no test process is), its
// reaper left out.
func bareRunContainers(ctx context.Context) []string {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{Context: lctx, All: true,
		Filters: map[string][]string{"label": {harness.Label + ".owner-pid=1"}}})
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range cs {
		if c.Labels[harness.Label+".reaper-for"] == "" {
			out = append(out, c.ID)
		}
	}
	return out
}

func overlap(a0, a1, b0, b1 time.Time) time.Duration {
	start, end := a0, a1
	if b0.After(start) {
		start = b0
	}
	if b1.Before(end) {
		end = b1
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}
