package nginx

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// driverTestImage is the pair image the driver tests run: the default pair,
// built (or found in the cache) once per test binary.
func driverTestImage(t *testing.T, pool *dockertest.Pool) string {
	t.Helper()
	if ref := os.Getenv("NUH_TEST_IMAGE"); ref != "" {
		return ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	from, err := image.ParseBuild(image.DefaultFrom)
	if err != nil {
		t.Fatal(err)
	}
	to, err := image.ParseBuild(image.DefaultTo)
	if err != nil {
		t.Fatal(err)
	}
	info, err := image.EnsureImage(ctx, pool, from, to, io.Discard)
	if err != nil {
		t.Fatalf("default pair image: %v", err)
	}
	return info.Ref
}

func driverPool(t *testing.T) *dockertest.Pool {
	t.Helper()
	pool, err := dockertest.NewPool("")
	if err != nil {
		t.Fatalf("container tests need Docker: %v", err)
	}
	if err := pool.Client.Ping(); err != nil {
		t.Fatalf("container tests need Docker: %v", err)
	}
	return pool
}

func startTestNode(t *testing.T, ctx context.Context, opts ...NodeOption) *Node {
	t.Helper()
	pool := driverPool(t)
	n, err := StartNode(ctx, pool, append([]NodeOption{WithImage(driverTestImage(t, pool))}, opts...)...)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func runStep(t *testing.T, ctx context.Context, d *Driver, s Step) StepResult {
	t.Helper()
	r := d.Run(ctx, s)
	t.Logf("step %s: verified=%v in %s pids=%v err=%s", r.Name, r.OK, r.Verified.Sub(r.Sent), r.PIDs, r.Err)
	if !r.OK {
		t.Fatalf("step %s failed: %s", r.Name, r.Err)
	}
	return r
}

func masterBinary(t *testing.T, s proc.Snapshot) string {
	t.Helper()
	m := s.Masters()
	if len(m) != 1 {
		t.Fatalf("want one master, saw %s", s)
	}
	return m[0].Binary
}

func TestDriverUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startTestNode(t, ctx)
	d := NewDriver(n)
	s0, err := n.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := masterBinary(t, s0); got != "old" {
		t.Fatalf("before the upgrade the master runs the %s binary, want old (%s)", got, s0)
	}
	runStep(t, ctx, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
	r := runStep(t, ctx, d, SpawnNewMaster())
	if r.After.PidFile == s0.PidFile || r.After.Oldbin != s0.PidFile {
		t.Fatalf("pid files after USR2: %s", r.After)
	}
	runStep(t, ctx, d, StopOldWorkers())
	runStep(t, ctx, d, QuitOldMaster(30*time.Second))
	s1, _ := n.Snapshot(ctx)
	if got := masterBinary(t, s1); got != "new" {
		t.Fatalf("after the upgrade the master runs the %s binary, want new (%s)", got, s1)
	}
	if s1.PidFile != r.After.PidFile || s1.OldbinSet {
		t.Fatalf("pid files after the upgrade: %s", s1)
	}
	if err := n.Probe(ctx); err != nil {
		t.Fatalf("not serving after the upgrade: %v", err)
	}
}

func TestDriverRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startTestNode(t, ctx)
	d := NewDriver(n)
	s0, _ := n.Snapshot(ctx)
	runStep(t, ctx, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
	runStep(t, ctx, d, SpawnNewMaster())
	runStep(t, ctx, d, StopOldWorkers())
	runStep(t, ctx, d, RestoreOldWorkers())
	runStep(t, ctx, d, QuitNewMaster(30*time.Second))
	runStep(t, ctx, d, InstallBinary("restore-old-binary", harness.OldBinaryStage))
	s1, _ := n.Snapshot(ctx)
	if got := masterBinary(t, s1); got != "old" {
		t.Fatalf("after the rollback the master runs the %s binary, want old (%s)", got, s1)
	}
	if s1.PidFile != s0.PidFile || s1.OldbinSet {
		t.Fatalf("nginx.pid after rollback: want the old pid %d, saw %s", s0.PidFile, s1)
	}
	if err := n.Probe(ctx); err != nil {
		t.Fatalf("not serving after the rollback: %v", err)
	}
}

func TestDriverTermFallback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startTestNode(t, ctx)
	d := NewDriver(n)
	s0, _ := n.Snapshot(ctx)
	runStep(t, ctx, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
	runStep(t, ctx, d, SpawnNewMaster())
	runStep(t, ctx, d, StopOldWorkers())
	r := runStep(t, ctx, d, TerminateNewMaster())
	if len(r.After.Workers(s0.PidFile)) == 0 || r.After.PidFile != s0.PidFile {
		t.Fatalf("after TERM the old master must take nginx.pid back and run workers: %s", r.After)
	}
	if err := n.Probe(ctx); err != nil {
		t.Fatalf("not serving after the TERM fallback: %v", err)
	}
}

func TestDriverKillWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startTestNode(t, ctx)
	d := NewDriver(n)
	r := runStep(t, ctx, d, KillWorkers())
	if len(r.PIDs) == 0 {
		t.Fatal("no worker was killed")
	}
	if err := n.WaitServing(ctx, 10*time.Second); err != nil {
		t.Fatalf("master did not respawn workers: %v", err)
	}
}

func TestDriverStepFailsWithWhatItSaw(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startTestNode(t, ctx)
	d := NewDriver(n)
	// WINCH with no upgrade under way: there is no old master to signal.
	r := d.Run(ctx, StopOldWorkers())
	if r.OK {
		t.Fatal("stop-old-workers verified with no upgrade under way")
	}
	t.Logf("error: %s", r.Err)
	for _, want := range []string{"nginx.pid.oldbin", "nginx.pid="} {
		if !contains(r.Err, want) {
			t.Errorf("error %q does not mention %q", r.Err, want)
		}
	}
	// An expectation that never holds times out with what it expected.
	s := SpawnNewMaster()
	s.Signal, s.Timeout = "", 300*time.Millisecond
	s.Target = TargetMaster
	r = d.Run(ctx, s)
	if r.OK || !contains(r.Err, "not verified after") {
		t.Fatalf("a step whose effect never appears must fail: %+v", r.Err)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func pairImage(t *testing.T, ctx context.Context, pool *dockertest.Pool, from, to string) string {
	t.Helper()
	parse := func(spec string) image.Build {
		b, err := image.ParseBuild(spec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	info, err := image.EnsureImage(ctx, pool, parse(from), parse(to), io.Discard)
	if err != nil {
		t.Fatalf("image %s -> %s: %v", from, to, err)
	}
	return info.Ref
}

// A source build is a working nginx: the Debian package upgrades to it in
// place, and the master then runs the source-built binary.
func TestDriverUpgradeToSourceBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pool := driverPool(t)
	ref := pairImage(t, ctx, pool, image.DefaultFrom, "source:stable")
	n, err := StartNode(ctx, pool, WithImage(ref))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d := NewDriver(n)
	runStep(t, ctx, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
	runStep(t, ctx, d, SpawnNewMaster())
	runStep(t, ctx, d, StopOldWorkers())
	runStep(t, ctx, d, QuitOldMaster(30*time.Second))
	s, _ := n.Snapshot(ctx)
	if got := masterBinary(t, s); got != "new" {
		t.Fatalf("after the upgrade the master runs the %s binary, want the source build (%s)", got, s)
	}
	r, _ := n.Exec(ctx, "/usr/sbin/nginx", "-v")
	if !contains(r.Stderr, "nginx/1.") || contains(r.Stderr, "nginx/1.22.") {
		t.Fatalf("nginx -v: %q", r.Stderr)
	}
	if err := n.Probe(ctx); err != nil {
		t.Fatalf("the source build does not serve: %v", err)
	}
}

// A new binary that cannot start with the configuration in use (built
// without the gzip module the config needs): USR2 fails with the cause from
// the error log, and the old set goes on serving with its pid file back.
func TestDriverBrokenNewBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pool := driverPool(t)
	ref := pairImage(t, ctx, pool, image.DefaultFrom, "source:stable:--without-http_gzip_module")
	n, err := StartNode(ctx, pool, WithImage(ref))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d := NewDriver(n)
	s0, _ := n.Snapshot(ctx)
	runStep(t, ctx, d, InstallBinary("install-new-binary", harness.NewBinaryStage))
	r := d.Run(ctx, SpawnNewMaster())
	t.Logf("USR2 step: verified=%v err=%s log=%v", r.OK, r.Err, r.LogLines)
	if r.OK {
		t.Fatal("USR2 verified with a new binary that cannot start")
	}
	if !contains(r.Err, `unknown directive "gzip"`) {
		t.Fatalf("the failed step does not carry the cause from the error log: %s", r.Err)
	}
	if err := n.Probe(ctx); err != nil {
		t.Fatalf("the old set stopped serving: %v", err)
	}
	s1, _ := n.Snapshot(ctx)
	if s1.PidFile != s0.PidFile || s1.OldbinSet || masterBinary(t, s1) != "old" || len(s1.Workers(s0.PidFile)) == 0 {
		t.Fatalf("after the failed USR2 the old master must be the only one, with its pid file and workers: %s", s1)
	}
}
