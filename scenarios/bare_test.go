package scenarios_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios/vm"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// bareImage is the image of the CLI alone: the static binary and the CA
// certificates, no shell, apt, keyring or debootstrap.
const bareImage = "nginx-upgrade-harness/test-bare-cli"

// bareScenarios run from the bare CLI, each with its usual verdict.
var bareScenarios = []string{"upgrade", "rollback", "kill-fallback"}

// A host that holds a container engine and the CLI, nothing else: the
// static CLI runs from an image holding only itself and the CA
// certificates, as nobody (65534) with the engine's socket and its group,
// in a network namespace of its own (the engine's default bridge): it
// cannot enter nginx's namespace nor reach the ports published on the
// engine host's 127.0.0.1, so its load, its stand-ins and its questions
// to nginx go through a load agent — its own binary in a helper container
// sharing nginx's network namespace — and the report names that path. The
// archive comes from --archive, the signing keys from the binary.
//
// Serial: the CLI's load runs inside its own container, whose CPU on a
// cgroup v1 host competes as one entity; beside the other Ginkgo processes
// and a busy core its pacer went silent (exit 3, three attempts of three),
// while alone beside the same core (the shared-engine spec) it passed.
var _ = Describe("the CLI alone in a container, as nobody", Label("bare"), Serial, longSpec(2), func() {
	It("runs upgrade, rollback and kill-fallback to their usual verdicts", func(ctx SpecContext) {
		b := bareSetup(ctx)
		ref, gid, socket, mirror := b.ref, b.gid, b.socket, b.mirror

		base := filepath.Join(outDir, "bare")
		Expect(os.MkdirAll(base, 0o755)).To(Succeed())
		var out string
		var code int
		var lines []string
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			dir, err := filepath.Abs(filepath.Join(base, fmt.Sprintf("attempt-%d", attempt)))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.MkdirAll(dir, 0o777)).To(Succeed())
			Expect(os.Chmod(dir, 0o777)).To(Succeed(), "nobody writes the report there")
			By(fmt.Sprintf("attempt %d: run --scenario %s from the bare image", attempt, strings.Join(bareScenarios, ",")))
			start := time.Now()
			var logs string
			code, logs = runBare(ctx, ref, gid, socket, dir, mirror)
			Expect(os.WriteFile(filepath.Join(dir, "cli.log"), []byte(logs), 0o644)).To(Succeed())
			lines = append(lines, fmt.Sprintf("attempt %d: exit %d in %s", attempt, code, time.Since(start).Round(time.Second)))
			out = dir
			if code != 3 { // 3: an invalid measurement (error): run again, as CI is told to
				break
			}
		}
		AddReportEntry("bare CLI", strings.Join(lines, "; "))
		r, err := record.ReadReport(filepath.Join(out, record.ReportJSON))
		Expect(err).NotTo(HaveOccurred(), "the bare CLI wrote no report (exit %d): %s", code, filepath.Join(out, "cli.log"))
		Expect(code).To(BeZero(), "exit %d: %s", code, filepath.Join(out, "cli.log"))
		Expect(r.Scenarios).To(HaveLen(len(bareScenarios)))
		for _, s := range r.Scenarios {
			Expect(s).To(upgradetest.PassVerdict(), s.Name)
			Expect(s.LoadPath).To(ContainSubstring("from a load agent"), "%s: nobody in its own namespace reaches nginx through a load agent, named", s.Name)
			if s.Name != "kill-fallback" {
				Expect(s).To(upgradetest.DropNothing(), s.Name)
			}
		}
	}, SpecTimeout(3*bareDeadline+2*time.Minute))
})

// bareHost is what a spec needs to run the bare CLI: the static binary,
// its image, the engine's socket and group, and the archive.
type bareHost struct {
	bin, ref, gid, socket, mirror string
}

func bareSetup(ctx context.Context) bareHost {
	bin := os.Getenv("NUH_REAPER_BINARY")
	Expect(bin).NotTo(BeEmpty(), "NUH_REAPER_BINARY: the static CLI `make scenarios` builds")
	Expect(harness.StaticBinary(bin)).To(Succeed())
	mirror, err := vm.Mirror()
	Expect(err).NotTo(HaveOccurred())
	socket := strings.TrimPrefix(pool.Client.Endpoint(), "unix://")
	fi, err := os.Stat(socket)
	Expect(err).NotTo(HaveOccurred(), "the bare CLI reaches the engine through its socket")
	By("importing the image of the CLI alone")
	return bareHost{bin: bin, ref: importBareImage(ctx, bin), gid: fmt.Sprint(fi.Sys().(*syscall.Stat_t).Gid), socket: socket, mirror: mirror}
}

// bareDeadline bounds one run of the bare CLI.
const bareDeadline = 8 * time.Minute

// importBareImage imports the image of the CLI alone (no registry: an
// import of a root file system the test writes).
func importBareImage(ctx context.Context, bin string) string {
	data, err := os.ReadFile(bin)
	Expect(err).NotTo(HaveOccurred())
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	Expect(err).NotTo(HaveOccurred(), "the CA certificates the image carries")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) {
		Expect(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode})).To(Succeed())
	}
	file := func(name string, mode int64, b []byte) {
		Expect(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(b))})).To(Succeed())
		_, err := tw.Write(b)
		Expect(err).NotTo(HaveOccurred())
	}
	dir("tmp/", 0o1777)
	dir("etc/", 0o755)
	dir("etc/ssl/", 0o755)
	dir("etc/ssl/certs/", 0o755)
	file("etc/ssl/certs/ca-certificates.crt", 0o644, certs)
	file("nginx-upgrade-harness", 0o755, data)
	Expect(tw.Close()).To(Succeed())
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	Expect(pool.Client.ImportImage(dc.ImportImageOptions{Context: ictx, Repository: bareImage, Tag: "latest", Source: "-",
		InputStream: &buf})).To(Succeed())
	return bareImage + ":latest"
}

// runBare runs the CLI from the bare image into dir and returns its exit
// code and its output.
func runBare(ctx context.Context, ref, gid, socket, dir, mirror string) (int, string) {
	cctx, cancel := context.WithTimeout(ctx, bareDeadline)
	defer cancel()
	id := createBare(cctx, ref, gid, socket, dir, mirror, bareScenarios)
	code, logs, err := startAndWaitBare(cctx, id)
	Expect(err).NotTo(HaveOccurred(), "the bare CLI did not end within %s: %s", bareDeadline, logs)
	return code, logs
}

// createBare creates the bare CLI's container, running scenarios into dir,
// and removes it when the spec ends.
func createBare(ctx context.Context, ref, gid, socket, dir, mirror string, scenarios []string) string {
	labels := harness.OwnerLabels(pool)
	c, err := pool.Client.CreateContainer(dc.CreateContainerOptions{
		Context: ctx,
		Name:    fmt.Sprintf("%s-bare-cli-%s-%d", harness.Label, harness.RunID(), time.Now().UnixNano()%1e6),
		Config: &dc.Config{
			Image:      ref,
			User:       "65534:65534",
			Entrypoint: []string{"/nginx-upgrade-harness"},
			Cmd:        append(scenarioFlags(scenarios), "--archive", mirror, "--from", params.From.Spec, "--to", params.To.Spec, "--out", "/out"),
			Env:        []string{"HOME=/tmp", "XDG_CACHE_HOME=/tmp/cache", "DOCKER_HOST=unix:///var/run/docker.sock"},
			Labels:     labels,
		},
		HostConfig: &dc.HostConfig{
			NetworkMode: "bridge", // its own namespace: the archive through the engine's NAT, nginx through a load agent
			GroupAdd:    []string{gid},
			Mounts: []dc.HostMount{
				{Type: "bind", Source: socket, Target: "/var/run/docker.sock"},
				{Type: "bind", Source: dir, Target: "/out"},
			},
			CapDrop:     []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
		},
	})
	Expect(err).NotTo(HaveOccurred(), "create the bare CLI's container")
	DeferCleanup(func() { removeBare(c.ID) })
	return c.ID
}

func removeBare(id string) {
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool.Client.RemoveContainer(dc.RemoveContainerOptions{Context: rctx, ID: id, Force: true})
}

// startAndWaitBare starts the bare CLI's container, waits for it under
// ctx's deadline and returns its exit code and output; it asserts nothing
// (it may run on a goroutine of its own) and removes the container.
func startAndWaitBare(ctx context.Context, id string) (int, string, error) {
	defer removeBare(id)
	if err := pool.Client.StartContainerWithContext(id, nil, ctx); err != nil {
		return -1, "", fmt.Errorf("start the bare CLI: %w", err)
	}
	code, werr := pool.Client.WaitContainerWithContext(id, ctx)
	var logs bytes.Buffer
	lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
	defer lcancel()
	pool.Client.Logs(dc.LogsOptions{Context: lctx, Container: id, OutputStream: &logs, ErrorStream: &logs, Stdout: true, Stderr: true})
	return code, logs.String(), werr
}

// cliRate is the load of the specs that run the CLI as a user does (bare,
// shared-engine, podman): 200 req/s, not the default 500. They check what
// the CLI does on an engine, not nginx under load, and two of them run two
// loads at once: measured beside a busy core, the bare CLI's and the host
// CLI's loads at 500 req/s each went silent in 1 to 17 windows in each of
// three attempts (error, so the spec failed).
const cliRate = "200"

// scenarioFlags is `run --rate cliRate` with a --scenario flag for each
// name.
func scenarioFlags(names []string) []string {
	args := []string{"run", "--rate", cliRate}
	for _, n := range names {
		args = append(args, "--scenario", n)
	}
	return args
}
