package scenarios_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios/vm"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// podmanScenarios run against Podman, each with its usual verdict.
var podmanScenarios = []string{"upgrade", "rollback", "kill-fallback"}

// podmanDeadline bounds one run of the CLI against Podman (its images
// built there the first time: the packages come from the build cache).
const podmanDeadline = 10 * time.Minute

// Rootful Podman, what many RHEL and Fedora users have instead of Docker:
// Debian's podman (make deps installs it, with catatonit for --init),
// serving its Docker-compatible API on a socket of the spec's own, which
// the static CLI is pointed at with DOCKER_HOST, as a user would. The CLI
// builds its images in Podman (imports, containers, commits: nothing is
// pulled), runs upgrade, rollback and kill-fallback, and holds a reaper
// there; nothing of the run is left in Podman after it.
var _ = Describe("the CLI against rootful Podman's Docker API", Label("podman"), longSpec(2), func() {
	It("runs upgrade, rollback and kill-fallback to their usual verdicts", func(ctx SpecContext) {
		bin := os.Getenv("NUH_REAPER_BINARY")
		Expect(bin).NotTo(BeEmpty(), "NUH_REAPER_BINARY: the static CLI `make scenarios` builds")
		mirror, err := vm.Mirror()
		Expect(err).NotTo(HaveOccurred())
		sock, version := startPodman(ctx)
		AddReportEntry("podman", version)

		base := filepath.Join(outDir, "podman")
		Expect(os.MkdirAll(base, 0o755)).To(Succeed())
		var dir, logs string
		var code int
		var lines []string
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			dir, err = filepath.Abs(filepath.Join(base, fmt.Sprintf("attempt-%d", attempt)))
			Expect(err).NotTo(HaveOccurred())
			By(fmt.Sprintf("attempt %d: DOCKER_HOST=unix://%s run --scenario %s", attempt, sock, strings.Join(podmanScenarios, ",")))
			start := time.Now()
			var out []byte
			code, out = podmanCLI(ctx, bin, sock, podmanDeadline, append(scenarioFlags(podmanScenarios),
				"--archive", mirror, "--from", params.From.Spec, "--to", params.To.Spec, "--out", dir)...)
			logs = string(out)
			Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "cli.log"), out, 0o644)).To(Succeed())
			lines = append(lines, fmt.Sprintf("attempt %d: exit %d in %s", attempt, code, time.Since(start).Round(time.Second)))
			if code != 3 { // 3: an invalid measurement (error): run again, as CI is told to
				break
			}
		}
		AddReportEntry("podman runs", strings.Join(lines, "; "))
		r, err := record.ReadReport(filepath.Join(dir, record.ReportJSON))
		Expect(err).NotTo(HaveOccurred(), "the CLI wrote no report (exit %d): %s", code, harness.LastLine(logs))
		Expect(code).To(BeZero(), "exit %d: %s", code, filepath.Join(dir, "cli.log"))
		Expect(logs).NotTo(ContainSubstring("no reaper"), "the run holds a reaper in Podman (its socket's owner-only mode, an engine id that changes with each call)")
		Expect(r.Scenarios).To(HaveLen(len(podmanScenarios)))
		for _, s := range r.Scenarios {
			AddReportEntry("podman "+s.Name, fmt.Sprintf("verdict=%s dropped=%d requests=%d load_path=%q", s.Verdict, s.Dropped, s.Requests.Total, s.LoadPath))
			Expect(s).To(upgradetest.PassVerdict(), s.Name)
			if s.Name != "kill-fallback" {
				Expect(s).To(upgradetest.DropNothing(), s.Name)
			}
		}
		By("--fault cpu-starve, which needs docker update, is refused up front: exit 2, one line")
		starve := filepath.Join(base, "cpu-starve")
		code, out := podmanCLI(ctx, bin, sock, 2*time.Minute, "run", "--scenario", "upgrade", "--fault", "cpu-starve",
			"--archive", mirror, "--from", params.From.Spec, "--to", params.To.Spec, "--out", starve)
		Expect(code).To(Equal(2), "%s", out)
		Expect(harness.LastLine(string(out))).To(ContainSubstring("--fault cpu-starve: the engine at unix://" + sock + " cannot change a running container's CPU quota"))
		Expect(starve).NotTo(BeADirectory(), "a run refused before it starts leaves no report directory")

		By("the run's engine was Podman's, and nothing of the run is left in it")
		var prov record.Provenance
		data, err := os.ReadFile(filepath.Join(dir, "provenance.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(data, &prov)).To(Succeed())
		Expect(prov.Docker).NotTo(BeNil())
		Expect(*prov.Docker).NotTo(BeEmpty())
		Expect(version).To(HavePrefix(*prov.Docker+" "), "provenance.json's engine version is Podman's")
		pp, err := dockertest.NewPool("unix://" + sock)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []string {
			cs, err := pp.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {harness.Label + "=1"}}})
			Expect(err).NotTo(HaveOccurred())
			var names []string
			for _, c := range cs {
				names = append(names, strings.Join(c.Names, ","))
			}
			return names
		}).WithTimeout(30*time.Second).WithPolling(time.Second).Should(BeEmpty(), "the run's containers in Podman")
	}, SpecTimeout(maxAttempts*podmanDeadline+2*time.Minute))
})

// podmanCLI runs the CLI with args against the Podman socket, within
// deadline (then interrupted, as Ctrl-C would), and returns its exit code
// and output.
func podmanCLI(ctx context.Context, bin, sock string, deadline time.Duration, args ...string) (int, []byte) {
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), out
}

// startPodman starts `podman system service` on a socket of its own and
// returns the socket and "VERSION (COMPONENT)" as the API reports it; the
// service is stopped when the spec ends. Its containers.conf (its own,
// through CONTAINERS_CONF) sets the containers' nofile and nproc limits to
// the service's own: Podman's defaults (1048576) are above the hard limits
// of a host that does not give root CAP_SYS_RESOURCE (this machine's
// sandbox), where runc may not raise them.
func startPodman(ctx context.Context) (string, string) {
	podman, err := exec.LookPath("podman")
	Expect(err).NotTo(HaveOccurred(), "podman is not installed: `make deps` installs Debian's podman and catatonit")
	_, err = exec.LookPath("catatonit")
	if err != nil {
		_, err = os.Stat("/usr/libexec/podman/catatonit")
	}
	Expect(err).NotTo(HaveOccurred(), "catatonit (Podman's --init) is not installed: `make deps` installs it")
	dir, err := os.MkdirTemp("", "nuh-podman-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	conf := filepath.Join(dir, "containers.conf")
	sock := filepath.Join(dir, "podman.sock")

	serve := func() *exec.Cmd {
		cmd := exec.Command(podman, "system", "service", "--time=0", "unix://"+sock)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		f, err := os.OpenFile(filepath.Join(dir, "service.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		Expect(err).NotTo(HaveOccurred())
		cmd.Stdout, cmd.Stderr = f, f
		Expect(cmd.Start()).To(Succeed())
		f.Close()
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.Remove(sock)
	}
	// First with no limits set, to read the service's own once it serves
	// (podman sets its own limits as it starts).
	Expect(os.WriteFile(conf, []byte("[containers]\n"), 0o644)).To(Succeed())
	first := serve()
	answers(ctx, sock)
	nofile, nproc := hardLimit(first.Process.Pid, "Max open files"), hardLimit(first.Process.Pid, "Max processes")
	stop(first)
	AddReportEntry("podman service limits", fmt.Sprintf("nofile %s, nproc %s", nofile, nproc))
	Expect(nofile).NotTo(BeEmpty(), "the podman service's open-files limit")
	Expect(nproc).NotTo(BeEmpty(), "the podman service's processes limit")
	var ulimits []string
	for _, l := range [][2]string{{"nofile", nofile}, {"nproc", nproc}} {
		if l[1] != "unlimited" {
			ulimits = append(ulimits, fmt.Sprintf("%q", l[0]+"="+l[1]+":"+l[1]))
		}
	}
	Expect(os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = ["+strings.Join(ulimits, ", ")+"]\n"), 0o644)).To(Succeed())
	svc := serve()
	DeferCleanup(stop, svc)

	version := answers(ctx, sock)
	Expect(strings.ToLower(version)).To(ContainSubstring("podman"), "the engine on %s is Podman", sock)
	return sock, version
}

// answers waits for the engine on sock to answer and returns its version.
func answers(ctx context.Context, sock string) string {
	var version string
	Eventually(func() error {
		p, err := dockertest.NewPool("unix://" + sock)
		if err != nil {
			return err
		}
		env, err := p.Client.Version()
		if err != nil {
			return err
		}
		var comp []struct{ Name string }
		env.GetJSON("Components", &comp)
		version = env.Get("Version")
		if len(comp) > 0 {
			version += " (" + comp[0].Name + ")"
		}
		return nil
	}).WithContext(ctx).WithTimeout(30*time.Second).WithPolling(250*time.Millisecond).Should(Succeed(), "podman system service answers on %s", sock)
	return version
}

// hardLimit is a process's hard limit named name (a row of
// /proc/PID/limits; "" when there is none), read once the process has set
// its own limits.
func hardLimit(pid int, name string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			if fs := strings.Fields(rest); len(fs) >= 2 {
				return fs[1]
			}
		}
	}
	return ""
}
