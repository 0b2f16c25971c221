package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// The sweep's rule: only a run a reaper held, and that no reaper holds any
// more, is gone; nothing is judged by pid, host or age.
func TestAbandoned(t *testing.T) {
	held := func(r string) bool { return r == "live" }
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"reaper held it, none holds it now", map[string]string{labelRun: "gone", labelReaped: "1"}, true},
		{"its reaper still holds it", map[string]string{labelRun: "live", labelReaped: "1"}, false},
		{"no reaper ever held it (its run cleans up itself)", map[string]string{labelRun: "gone", labelReaped: "0"}, false},
		{"reaped label missing (inherited images, old versions)", map[string]string{labelRun: "gone"}, false},
		{"no run id: an older version's, pid and host mean nothing here",
			map[string]string{labelOwnerPID: "999999", labelOwnerHost: "elsewhere", labelReaped: "1"}, false},
		{"a reaper (ends on its own)", map[string]string{labelReaperFor: "gone", labelRun: "gone", labelReaped: "1"}, false},
	} {
		if got := abandoned(tc.labels, held); got != tc.want {
			t.Errorf("%s: abandoned = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Every container names its run and sets reaped explicitly (an image's
// labels must not lend it a reaper it does not have).
func TestOwnerLabelsNameTheRun(t *testing.T) {
	pool := &dockertest.Pool{Client: mustClient(t, "unix:///nonexistent/engine.sock")}
	l := OwnerLabels(pool)
	if l[Label] != "1" || l[labelRun] != RunID() || len(RunID()) != 16 || l[labelReaped] != "0" {
		t.Fatalf("labels %v", l)
	}
	setReaped(pool.Client.Endpoint(), true)
	defer setReaped(pool.Client.Endpoint(), false)
	if OwnerLabels(pool)[labelReaped] != "1" {
		t.Fatal("a run held by a reaper on this engine must say so")
	}
	other := &dockertest.Pool{Client: mustClient(t, "unix:///nonexistent/other.sock")}
	if OwnerLabels(other)[labelReaped] != "0" {
		t.Fatal("a reaper on one engine says nothing of another")
	}
}

// No reaper where the engine's socket cannot be lent to one, or where the
// binary could not run alone in an image: one line says which.
func TestNoReaperSaysWhy(t *testing.T) {
	tcp := &dockertest.Pool{Client: mustClient(t, "tcp://192.0.2.1:2375")}
	_, err := HoldLease(context.Background(), tcp)
	if err == nil || !strings.Contains(err.Error(), "not reached through a unix socket") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("tcp engine: %v", err)
	}
	if err := staticBinary("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("/bin/sh: %v", err)
	}
}

func mustClient(t *testing.T, endpoint string) *dc.Client {
	t.Helper()
	c, err := dc.NewClient(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// --- live: the Docker engine of this machine ---------------------------

// The image the run-like containers run: one static Go program that waits
// for a signal, imported by the test itself (sleeper), so that these tests
// need only an engine, not an image a harness run builds first.
const sleeperImage = Label + "/test-sleeper:1"

// sleeperSource is the sleeper: it exits on SIGTERM or SIGINT.
const sleeperSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`

var sleeper struct {
	once sync.Once
	err  error
}

// ensureSleeper imports sleeperImage unless the engine has it.
func ensureSleeper(pool *dockertest.Pool) error {
	sleeper.once.Do(func() {
		if Bounded(context.Background(), CallTimeout, func() error { _, err := pool.Client.InspectImage(sleeperImage); return err }) == nil {
			return
		}
		dir, err := os.MkdirTemp("", "nuh-sleeper-")
		if err != nil {
			sleeper.err = err
			return
		}
		defer os.RemoveAll(dir)
		for name, text := range map[string]string{"go.mod": "module sleeper\n\ngo 1.22\n", "main.go": sleeperSource} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				sleeper.err = err
				return
			}
		}
		cmd := exec.Command("go", "build", "-o", "sleeper", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			sleeper.err = fmt.Errorf("build the sleeper: %v: %s", err, LastLine(string(out)))
			return
		}
		data, err := os.ReadFile(filepath.Join(dir, "sleeper"))
		if err != nil {
			sleeper.err = err
			return
		}
		repo, tag, _ := strings.Cut(sleeperImage, ":")
		sleeper.err = importBinaryImage(context.Background(), pool, data, repo, tag, "sleeper", Label+".test-image=1")
	})
	return sleeper.err
}

// The helper process: what a run does (hold a reaper, start containers)
// or what a start-up sweep does, restricted to the test's own runs.
func TestMain(m *testing.M) {
	switch os.Getenv("NUH_REAPER_HELPER") {
	case "run":
		os.Exit(helperRun())
	case "sweep":
		os.Exit(helperSweep())
	}
	code := m.Run()
	if staticCLI.path != "" {
		os.RemoveAll(filepath.Dir(staticCLI.path))
	}
	if code == 0 && leftBehind() {
		code = 1
	}
	os.Exit(code)
}

// leftBehind tells (and says) whether any container of this test process
// or its helper runs is still there: what `make leftovers` would find.
func leftBehind() bool {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return false // the tests that needed Docker failed already
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	cs, err := listHarness(ctx, pool, labelOwnerPID+"="+strconv.Itoa(os.Getpid()))
	if err != nil {
		fmt.Println("leftovers:", err)
		return true
	}
	for _, c := range cs {
		fmt.Printf("left behind: %.12s %v\n", c.ID, c.Names)
	}
	return len(cs) > 0
}

// helperRun holds a reaper, starts two containers, says "run ID PIDNS" on
// stdout and waits to be killed.
func helperRun() int {
	pool, err := Connect()
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	grace, _ := time.ParseDuration(os.Getenv("NUH_GRACE"))
	ctx := context.Background()
	// The owner-pid labels name the test process, alive throughout: older
	// versions of the tool, run by others on this engine, sweep whatever
	// names a pid that is gone in their pid namespace (the bug under test),
	// and would otherwise remove this run's containers and reaper once it
	// is killed, before its reaper could show what it does.
	shield := func(c *leaseConfig) { c.ownerPID = os.Getppid() }
	lease, err := HoldLease(ctx, pool, ReaperBinary(os.Getenv("NUH_CLI")), ReaperGraceOf(grace), shield)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	defer lease.Close()
	for i := 0; i < 2; i++ {
		labels := OwnerLabels(pool)
		labels[labelOwnerPID] = strconv.Itoa(os.Getppid())
		if _, err := startSleeper(ctx, pool, labels); err != nil {
			fmt.Println("error:", err)
			return 2
		}
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	fmt.Printf("run %s %s %s\n", RunID(), ns, lease.Container())
	select {}
}

// helperSweep runs the start-up sweep over the runs named in NUH_RUNS and
// says "swept N PIDNS".
func helperSweep() int {
	pool, err := Connect()
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	runs := strings.Fields(os.Getenv("NUH_RUNS"))
	n, err := sweep(context.Background(), pool, func(l map[string]string) bool {
		for _, r := range runs {
			if l[labelRun] == r {
				return true
			}
		}
		return false
	})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	fmt.Printf("swept %d %s\n", n, ns)
	return 0
}

func startSleeper(ctx context.Context, pool *dockertest.Pool, labels map[string]string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, RunTimeout)
	defer cancel()
	c, err := pool.Client.CreateContainer(dc.CreateContainerOptions{Context: cctx,
		Config:     &dc.Config{Image: sleeperImage, Entrypoint: []string{}, Cmd: []string{"/sleeper"}, User: "65534:65534", Labels: labels},
		HostConfig: &dc.HostConfig{Init: true, CapDrop: []string{"ALL"}, NetworkMode: "none"},
	})
	if err != nil {
		return "", fmt.Errorf("create %s container: %s", sleeperImage, OneLine(err.Error()))
	}
	if err := pool.Client.StartContainerWithContext(c.ID, nil, cctx); err != nil {
		return c.ID, fmt.Errorf("start: %s", OneLine(err.Error()))
	}
	return c.ID, nil
}

var staticCLI struct {
	once sync.Once
	path string
	err  error
}

// cli builds the CLI static (what `make build` makes), once per test binary.
func cli(t *testing.T) string {
	t.Helper()
	staticCLI.once.Do(func() {
		dir, err := os.MkdirTemp("", "nuh-reaper-cli-")
		if err != nil {
			staticCLI.err = err
			return
		}
		staticCLI.path = filepath.Join(dir, "nginx-upgrade-harness")
		cmd := exec.Command("go", "build", "-o", staticCLI.path, "../cmd/nginx-upgrade-harness")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			staticCLI.err = fmt.Errorf("go build: %v: %s", err, LastLine(string(out)))
		}
	})
	if staticCLI.err != nil {
		t.Fatal(staticCLI.err)
	}
	return staticCLI.path
}

func livePool(t *testing.T) *dockertest.Pool {
	t.Helper()
	pool, err := Connect()
	if err != nil {
		t.Fatalf("these tests run containers: %v", err)
	}
	if err := ensureSleeper(pool); err != nil {
		t.Fatalf("image %s: %v", sleeperImage, err)
	}
	return pool
}

// helper starts the test binary as a helper process (argv before it, e.g.
// unshare) and returns it with its stdout's first line.
func helper(t *testing.T, prefix []string, env ...string) (*exec.Cmd, []string) {
	t.Helper()
	argv := append(append([]string{}, prefix...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		line <- sc.Text()
		for sc.Scan() {
		}
	}()
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) == 0 || f[0] == "error:" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper %v: %q", argv, l)
		}
		return cmd, f
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper %v said nothing within 2m", argv)
	}
	return nil, nil
}

// startRun starts a run-like helper (a reaper held, two containers) and
// returns its process, run id, pid namespace and reaper container; its
// containers are removed at the end of the test whatever happens.
func startRun(t *testing.T, pool *dockertest.Pool, grace time.Duration) (*exec.Cmd, string, string, string) {
	t.Helper()
	cmd, f := helper(t, nil, "NUH_REAPER_HELPER=run", "NUH_CLI="+cli(t), "NUH_GRACE="+grace.String())
	if len(f) != 4 || f[0] != "run" {
		t.Fatalf("run helper said %q", f)
	}
	run, reaper := f[1], f[3]
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		PruneRun(ctx, pool, run)
		PruneWhere(ctx, pool, func(_ string, l map[string]string) bool { return l[labelReaperFor] == run })
	})
	return cmd, run, f[2], reaper
}

func runContainers(t *testing.T, pool *dockertest.Pool, key, value string) []dc.APIContainers {
	t.Helper()
	cs, err := listHarness(context.Background(), pool, key+"="+value)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Issue 27: a start-up sweep from another pid namespace (a CI job in a
// container sharing the engine) must not remove the containers of a run
// under way; it still removes those of a run its reaper has let go of.
func TestSweepFromAnotherPidNamespaceSparesALiveRun(t *testing.T) {
	pool := livePool(t)
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		t.Fatalf("needs unshare and root for a pid namespace (unshare: %v, euid %d)", err, os.Geteuid())
	}
	_, runA, nsA, _ := startRun(t, pool, ReaperGrace)
	if n := len(runContainers(t, pool, labelRun, runA)); n != 2 {
		t.Fatalf("run A has %d containers, want 2", n)
	}
	// A leftover that a reaper held and none holds any more (its reaper was
	// killed along with its run, e.g. an engine restart): swept.
	gone := "0123456789abcdef"
	orphan := OwnerLabels(pool)
	orphan[labelRun], orphan[labelReaped] = gone, "1"
	id, err := startSleeper(context.Background(), pool, orphan)
	t.Cleanup(func() { RemoveContainer(context.Background(), pool, id) })
	if err != nil {
		t.Fatal(err)
	}

	_, f := helper(t, []string{"unshare", "--pid", "--fork", "--mount-proc"}, "NUH_REAPER_HELPER=sweep", "NUH_RUNS="+runA+" "+gone)
	if len(f) != 3 || f[0] != "swept" {
		t.Fatalf("sweep helper said %q", f)
	}
	if f[2] == nsA {
		t.Fatalf("the sweep ran in run A's pid namespace %s", nsA)
	}
	if n := len(runContainers(t, pool, labelRun, runA)); n != 2 {
		t.Fatalf("a sweep in pid namespace %s removed %d of run A's 2 containers (run A in %s, under way)", f[2], 2-n, nsA)
	}
	if n := len(runContainers(t, pool, labelRun, gone)); n != 0 || f[1] != "1" {
		t.Fatalf("the abandoned container was not swept (swept %s, %d left)", f[1], n)
	}
}

// kill -9 of a run: its reaper removes its containers within the grace
// period, then ends (and is removed); nothing labelled is left.
func TestKilledRunIsReaped(t *testing.T) {
	pool := livePool(t)
	grace := 3 * time.Second
	cmd, run, _, reaper := startRun(t, pool, grace)
	if n := len(runContainers(t, pool, labelRun, run)); n != 2 {
		t.Fatalf("run has %d containers, want 2", n)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	deadline := killed.Add(grace + 15*time.Second)
	var reaped, ended time.Duration
	for time.Now().Before(deadline) && (reaped == 0 || ended == 0) {
		if reaped == 0 && len(runContainers(t, pool, labelRun, run)) == 0 {
			reaped = time.Since(killed)
		}
		if ended == 0 && len(runContainers(t, pool, labelReaperFor, run)) == 0 {
			ended = time.Since(killed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if reaped == 0 {
		t.Fatalf("run %s's containers still there %s after kill -9 (grace %s)", run, time.Since(killed).Round(time.Millisecond), grace)
	}
	if reaped < grace {
		t.Fatalf("containers removed %s after the kill, before the grace period %s", reaped, grace)
	}
	if ended == 0 {
		t.Fatalf("reaper %.12s still there after it reaped", reaper)
	}
	t.Logf("kill -9 -> containers removed after %s, reaper gone after %s (grace %s)", reaped.Round(time.Millisecond), ended.Round(time.Millisecond), grace)
}

// A run that ends normally lets go of its reaper with done: the reaper is
// gone when Close returns, and removed what the run left.
func TestClosedLeaseLeavesNothing(t *testing.T) {
	pool := livePool(t)
	ctx := context.Background()
	bin := cli(t)
	start := time.Now()
	lease, err := HoldLease(ctx, pool, ReaperBinary(bin))
	if err != nil {
		t.Fatal(err)
	}
	held := time.Since(start)
	reaper := lease.Container()
	t.Cleanup(func() { RemoveContainer(context.Background(), pool, reaper) })
	id, err := startSleeper(ctx, pool, OwnerLabels(pool))
	t.Cleanup(func() { RemoveContainer(context.Background(), pool, id) })
	if err != nil {
		t.Fatal(err)
	}
	if OwnerLabels(pool)[labelReaped] != "1" {
		t.Fatal("a held run's containers must say a reaper holds them")
	}
	start = time.Now()
	if err := lease.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lease held in %s, released in %s", held.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if n := len(runContainers(t, pool, labelReaperFor, RunID())); n != 0 {
		t.Fatalf("%d reaper(s) of this run left after Close", n)
	}
	if n := len(runContainers(t, pool, labelRun, RunID())); n != 0 {
		t.Fatalf("%d container(s) of this run left after Close (the reaper removes them on done)", n)
	}
}

// A reaper removed under a live run is replaced, and the old one, seeing
// its successor, leaves the run's containers alone.
func TestLostReaperIsReplaced(t *testing.T) {
	pool := livePool(t)
	_, run, _, reaper := startRun(t, pool, 2*time.Second)
	ctx := context.Background()
	if err := RemoveContainer(ctx, pool, reaper); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var next string
	for time.Now().Before(deadline) && next == "" {
		for _, c := range runContainers(t, pool, labelReaperFor, run) {
			if c.ID != reaper && c.State == "running" {
				next = c.ID
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if next == "" {
		t.Fatalf("no reaper replaced %.12s for run %s", reaper, run)
	}
	time.Sleep(4 * time.Second) // past the grace period of the removed reaper
	if n := len(runContainers(t, pool, labelRun, run)); n != 2 {
		t.Fatalf("run %s has %d of its 2 containers after its reaper was replaced", run, n)
	}
}

// How long the reaper image takes to build (cold: the engine lacks it;
// warm: it has it) and a lease to be held, for the record (-v).
func TestReaperCosts(t *testing.T) {
	pool := livePool(t)
	bin := cli(t)
	ctx := context.Background()
	start := time.Now()
	ref, err := ensureReaperImage(ctx, pool, bin)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	// Cold: this test's own image, by its own tag, removed and imported again.
	if err := pool.Client.RemoveImageExtended(ref, dc.RemoveImageOptions{Force: true}); err != nil {
		t.Fatalf("remove %s: %v", ref, err)
	}
	start = time.Now()
	if _, err := ensureReaperImage(ctx, pool, bin); err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	start = time.Now()
	if _, err := ensureReaperImage(ctx, pool, bin); err != nil {
		t.Fatal(err)
	}
	warm := time.Since(start)
	var holds []string
	for i := 0; i < 3; i++ {
		start = time.Now()
		lease, err := HoldLease(ctx, pool, ReaperBinary(bin))
		if err != nil {
			t.Fatal(err)
		}
		held := time.Since(start)
		start = time.Now()
		if err := lease.Close(); err != nil {
			t.Fatal(err)
		}
		holds = append(holds, fmt.Sprintf("held %s released %s", held.Round(time.Millisecond), time.Since(start).Round(time.Millisecond)))
	}
	fi, _ := os.Stat(bin)
	t.Logf("reaper image (%s MB binary): first %s, cold import %s, warm %s; leases: %s", strconv.FormatFloat(float64(fi.Size())/1e6, 'f', 1, 64),
		first.Round(time.Millisecond), cold.Round(time.Millisecond), warm.Round(time.Millisecond), strings.Join(holds, "; "))
}

// An image committed from a run's container lends no run id to the
// containers of other runs.
func TestImageLabelsBlankTheRun(t *testing.T) {
	l := ImageLabels(map[string]string{Label: "1", Label + ".key": "k", labelRun: "r", labelReaped: "1"})
	if l[Label] != "1" || l[Label+".key"] != "k" {
		t.Fatalf("image labels lost: %v", l)
	}
	for _, k := range []string{labelRun, labelReaped, labelOwnerPID, labelOwnerHost} {
		if v, ok := l[k]; !ok || v != "" {
			t.Fatalf("%s = %q, %v: it must be set, blank, to override the container's", k, v, ok)
		}
	}
	if abandoned(map[string]string{labelRun: "", labelReaped: ""}, func(string) bool { return false }) {
		t.Fatal("a container with a blank run id is nobody's to sweep")
	}
}

// A reaper whose socket leads to an engine that does not run it (here: its
// own container does not carry the token it was given) refuses to serve:
// it must never sweep a run on an engine it was not started for. The
// check finds the reaper's own container through the socket, which works
// on an engine whose id changes with each docker info (Podman's).
func TestReaperRefusesAnotherEnginesSocket(t *testing.T) {
	pool := livePool(t)
	ctx := context.Background()
	ref, err := ensureReaperImage(ctx, pool, cli(t))
	if err != nil {
		t.Fatal(err)
	}
	src, err := reaperSocketSource(pool)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	run := "test-" + randomHex(4)
	for _, tc := range []struct {
		label, token, want string
		code               int
	}{
		{"wrong", "not-the-token", "is not this reaper", 2},
		{"right", "the-token", "ready " + run, 0},
	} {
		c, err := pool.Client.CreateContainer(dc.CreateContainerOptions{Context: ctx,
			Config: &dc.Config{
				Image:      ref,
				Entrypoint: []string{reaperBinPath, ReaperCommand, "--run", run, "--token", tc.token, "--grace", "0s"},
				User:       "65534:65534",
				Env:        []string{"DOCKER_HOST=unix://" + reaperSocket},
				Labels:     map[string]string{Label: "1", labelReaperToken: "the-token", labelOwnerPID: strconv.Itoa(os.Getpid())},
			},
			HostConfig: &dc.HostConfig{
				Mounts:      []dc.HostMount{{Type: "bind", Source: src, Target: reaperSocket}},
				GroupAdd:    []string{fmt.Sprint(fi.Sys().(*syscall.Stat_t).Gid)},
				CapDrop:     []string{"ALL"},
				NetworkMode: "none",
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { RemoveContainer(context.Background(), pool, c.ID) })
		if err := pool.Client.StartContainer(c.ID, nil); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		code, err := pool.Client.WaitContainerWithContext(c.ID, wctx)
		cancel()
		if err != nil {
			t.Fatalf("%s token: %v", tc.label, err)
		}
		var out bytes.Buffer
		if err := pool.Client.Logs(dc.LogsOptions{Container: c.ID, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s token: exit %d: %s", tc.label, code, strings.TrimSpace(out.String()))
		if code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Fatalf("%s token: exit %d, said %q; want exit %d and %q", tc.label, code, out.String(), tc.code, tc.want)
		}
	}
}
