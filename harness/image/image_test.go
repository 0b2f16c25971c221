package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// These tests build real images: the first run on a machine takes minutes
// (debootstrap, apt, two compiles). Run them with a long -timeout, e.g.
//
//	go test ./harness -run 'EnsureImage|harness.Connect' -timeout 40m -v

func TestMain(m *testing.M) {
	// Under make test, a reaper holds this process's build containers: an
	// interrupt (the test binary dies at once on SIGINT) leaves none.
	var lease *harness.Lease
	if bin := os.Getenv("NUH_REAPER_BINARY"); bin != "" {
		pool, err := harness.Connect()
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			lease, err = harness.HoldLease(ctx, pool, harness.ReaperBinary(bin))
			cancel()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "image tests: hold a reaper:", err)
			os.Exit(2)
		}
	}
	code := m.Run()
	sweepBuildBoxes()
	if lease != nil {
		lease.Close()
	}
	os.Exit(code)
}

// sweepBuildBoxes removes the build containers this test process left
// behind (there should be none: EnsureImage removes its own). It goes by
// name, not by the harness label alone, which would also match the nodes of
// other runs on the same engine.
func sweepBuildBoxes() {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return
	}
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true,
		Filters: map[string][]string{"label": {harness.Label + "=1"}, "name": {buildBoxPrefix()}}})
	if err != nil {
		return
	}
	for _, c := range cs {
		pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
	}
}

// imageTestPool connects to Docker or fails the test: these tests must not
// pass silently on a machine that cannot run them.
func imageTestPool(t *testing.T) *dockertest.Pool {
	t.Helper()
	pool, err := harness.Connect()
	if err != nil {
		t.Fatalf("image tests need the Docker engine: %v", err)
	}
	t.Cleanup(func() {
		if left := leftoverBoxes(pool); len(left) > 0 {
			t.Errorf("build containers left behind: %v", left)
			sweepBuildBoxes()
		}
	})
	return pool
}

func leftoverBoxes(pool *dockertest.Pool) []string {
	cs, _ := pool.Client.ListContainers(dc.ListContainersOptions{All: true,
		Filters: map[string][]string{"name": {buildBoxPrefix()}}})
	var names []string
	for _, c := range cs {
		names = append(names, strings.Join(c.Names, ","))
	}
	return names
}

func testContext(t *testing.T) context.Context {
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

func mustParse(t *testing.T, spec string) Build {
	t.Helper()
	b, err := ParseBuild(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// inspectBox starts a container from a pair image for the test to look into.
func inspectBox(t *testing.T, ctx context.Context, pool *dockertest.Pool, ref string) *buildBox {
	t.Helper()
	b, err := createBox(ctx, pool, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.remove)
	return b
}

func mustRun(t *testing.T, ctx context.Context, b *buildBox, argv ...string) string {
	t.Helper()
	out, err := b.run(ctx, strings.Join(argv, " "), nil, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// defaultPairImage returns the default pair image, building it when it is
// not cached; tests that run nodes call it (zz_devpair_test.go's
// ensureDefaultPair can return defaultPairImage(t, pool)).
func defaultPairImage(t *testing.T, pool *dockertest.Pool) string {
	t.Helper()
	info, err := EnsureImage(testContext(t), pool, mustParse(t, DefaultFrom), mustParse(t, DefaultTo), testLog{t})
	if err != nil {
		t.Fatalf("default pair image: %v", err)
	}
	return info.Ref
}

func TestConnectUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, err := harness.Connect()
	if err == nil {
		t.Fatal("harness.Connect to a missing socket succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "docker unreachable at unix:///nonexistent/docker.sock (set by DOCKER_HOST): ") ||
		!strings.HasSuffix(msg, "(is the Docker engine running?)") || strings.Contains(msg, "\n") {
		t.Fatalf("harness.Connect error = %q, want one line naming the endpoint and the cause", msg)
	}
	t.Log(msg)
}

func TestEnsureImageDefaultPair(t *testing.T) {
	pool := imageTestPool(t)
	ctx := testContext(t)
	from, to := mustResolve(t, DefaultFrom), mustResolve(t, DefaultTo)

	start := time.Now()
	info, err := EnsureImage(ctx, pool, from, to, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first EnsureImage: %s (%s)", time.Since(start).Round(time.Millisecond), info.Ref)

	// The two suites may serve one version (before a security update):
	// then the binaries are the same.
	if info.OldSHA256 == "" || (info.OldSHA256 == info.NewSHA256) != (from.Exact() == to.Exact()) {
		t.Errorf("binaries: old %s new %s, for %s → %s", info.OldSHA256, info.NewSHA256, from.Exact(), to.Exact())
	}
	for _, v := range []string{info.OldVersion, info.NewVersion} {
		if v != "nginx version: nginx/1.22.1" {
			t.Errorf("nginx -v = %q, want nginx version: nginx/1.22.1", v)
		}
	}

	b := inspectBox(t, ctx, pool, info.Ref)
	for path, want := range map[string]string{
		harness.DefaultBinary: info.OldSHA256, harness.OldBinaryStage: info.OldSHA256, harness.NewBinaryStage: info.NewSHA256,
	} {
		data, _, err := b.readFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != want {
			t.Errorf("%s: sha256 %x, want %s", path, s, want)
		}
	}
	raw, _, err := b.readFile(ctx, harness.BuildsFile)
	if err != nil {
		t.Fatal(err)
	}
	var bj harness.BuildsInfo
	if err := json.Unmarshal(raw, &bj); err != nil {
		t.Fatalf("builds.json: %v", err)
	}
	if bj.From != from.Exact() || bj.To != to.Exact() || bj.OldSHA256 != info.OldSHA256 || bj.NewVersion != info.NewVersion {
		t.Errorf("builds.json = %+v, info = %+v", bj, info)
	}
	// Layout the rest of the harness relies on.
	out := mustRun(t, ctx, b, "sh", "-c", `set -e
stat -c '%a %n' /opt/nginx-upgrade-harness/old/nginx /opt/nginx-upgrade-harness/new/nginx
ls /opt/nginx-upgrade-harness/old/debs /opt/nginx-upgrade-harness/new/debs
stat -c '%s %n' /srv/www/slow/big.bin /srv/www/index.html
dpkg-query -W -f='${Package} ${Version}\n' nginx nginx-common
id www-data
ls -d /var/log/nginx /var/lib/nginx/body /var/lib/nginx/proxy /var/lib/nginx/fastcgi /var/lib/nginx/uwsgi /var/lib/nginx/scgi /run /etc/nginx
echo sites-enabled: $(ls /etc/nginx/sites-enabled 2>/dev/null | wc -l)
echo nginx-running: $(pgrep -c -x nginx || true)
ps -e -o comm=`)
	t.Log(out)
	for _, want := range []string{
		"755 /opt/nginx-upgrade-harness/old/nginx", "755 /opt/nginx-upgrade-harness/new/nginx",
		"nginx_" + from.Res.Version + "_amd64.deb", "nginx-common_" + from.Res.Version + "_all.deb",
		"nginx_" + to.Res.Version + "_amd64.deb", "nginx-common_" + to.Res.Version + "_all.deb",
		"33554432 /srv/www/slow/big.bin", "nginx " + from.Res.Version, "nginx-common " + from.Res.Version,
		"sites-enabled: 0", "nginx-running: 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("image layout: %q missing", want)
		}
	}
	img, err := pool.Client.InspectImage(info.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Labels[harness.Label] != "1" || strings.Join(img.Config.Cmd, " ") != "sleep infinity" {
		t.Errorf("image config: labels %v cmd %v", img.Config.Labels, img.Config.Cmd)
	}

	// Cached: same image, nothing built (timing is logged, not asserted).
	var progress strings.Builder
	start = time.Now()
	again, err := EnsureImage(ctx, pool, from, to, &progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second EnsureImage: %s", time.Since(start).Round(time.Millisecond))
	if again.Ref != info.Ref || again.OldSHA256 != info.OldSHA256 || again.NewVersion != info.NewVersion {
		t.Errorf("second EnsureImage = %+v, want %+v", again, info)
	}
	if progress.Len() > 0 {
		t.Errorf("second EnsureImage built something: %q", progress.String())
	}
}

func TestEnsureImageSource(t *testing.T) {
	pool := imageTestPool(t)
	ctx := testContext(t)
	from, to := mustResolve(t, "source:stable"), mustResolve(t, "source:stable:--without-http_gzip_module")
	want := "nginx version: nginx/" + from.Res.Version

	start := time.Now()
	info, err := EnsureImage(ctx, pool, from, to, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureImage source pair: %s (%s)", time.Since(start).Round(time.Millisecond), info.Ref)
	if info.OldVersion != want || info.NewVersion != want {
		t.Errorf("versions %q, %q, want %q", info.OldVersion, info.NewVersion, want)
	}
	if info.OldSHA256 == info.NewSHA256 {
		t.Error("both builds have the same binary")
	}

	b := inspectBox(t, ctx, pool, info.Ref)
	conf := "events {}\nhttp { gzip on; server { listen 8080; root /srv/www; } }\n"
	if err := b.upload(ctx, "/tmp", []tarEntry{{name: "gzip.conf", mode: 0o644, data: []byte(conf)}}); err != nil {
		t.Fatal(err)
	}
	if out, err := b.run(ctx, "old nginx -t", nil, harness.OldBinaryStage, "-t", "-c", "/tmp/gzip.conf"); err != nil {
		t.Errorf("old build rejects gzip: %v", err)
	} else {
		t.Log(out)
	}
	out, err := b.run(ctx, "new nginx -t", nil, harness.NewBinaryStage, "-t", "-c", "/tmp/gzip.conf")
	if err == nil || !strings.Contains(out, `unknown directive "gzip"`) {
		t.Errorf("new build (--without-http_gzip_module) accepted gzip on: err %v, output %q", err, out)
	}
	// The old source build is installed where a Debian one would be.
	if out := mustRun(t, ctx, b, "sh", "-c", "sha256sum /usr/sbin/nginx; ls /etc/nginx; /usr/sbin/nginx -V 2>&1"); !strings.Contains(out, info.OldSHA256) ||
		!strings.Contains(out, "mime.types") || !strings.Contains(out, "--sbin-path=/usr/sbin/nginx") {
		t.Errorf("old source build not installed as expected:\n%s", out)
	}
}

func TestEnsureImageBadInput(t *testing.T) {
	pool := imageTestPool(t)
	ctx := testContext(t)

	for _, tc := range []struct{ spec, want string }{
		{"nginx-1.26", `unknown build "nginx-1.26": want debian:SUITE|VERSION, source:stable|mainline|VERSION[:CONFIGURE-FLAGS], binary:PATH or image:REF`},
		{"binary:/nonexistent", "binary:/nonexistent: no such file"},
	} {
		if _, err := ParseBuild(tc.spec); err == nil || err.Error() != tc.want {
			t.Errorf("ParseBuild(%q) = %v, want %q", tc.spec, err, tc.want)
		}
	}

	good := mustResolve(t, DefaultTo)
	served := mustResolve(t, DefaultFrom).Res.Version // what the error must list
	for _, tc := range []struct {
		from, want string
	}{
		// Versions no archive will ever serve: the error lists what each
		// suite serves today.
		{"debian:0.0.1-1", "debian:0.0.1-1: version 0.0.1-1 is neither served (served: "},
		{"debian:nosuch", `debian:nosuch: unknown suite "nosuch" (known: bookworm, `},
		{"source:0.0.1", "source:0.0.1: tarball nginx_0.0.1.orig.tar.gz is neither served (tarballs served: "},
		{"image:nginx-upgrade-harness/absent:nope", "image:nginx-upgrade-harness/absent:nope: not present locally and no registry is reachable"},
	} {
		t.Run(tc.from, func(t *testing.T) {
			_, err := EnsureImage(ctx, pool, mustParse(t, tc.from), good, testLog{t})
			if err == nil {
				t.Fatalf("EnsureImage(%s) succeeded", tc.from)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error = %q, want one line starting %q", msg, tc.want)
			}
			if tc.from == "debian:0.0.1-1" {
				for _, want := range []string{"bookworm: " + served, "trixie: ", ") nor in the cache"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error does not list what the suites serve (%q missing): %q", want, msg)
					}
				}
			}
		})
	}
}

// TestEnsureImageBinaryAndImage builds a pair from a local image and a
// local file: the default pair's old binary (image:) and its new one (binary:).
func TestEnsureImageBinaryAndImage(t *testing.T) {
	pool := imageTestPool(t)
	ctx := testContext(t)
	def, err := EnsureImage(ctx, pool, mustParse(t, DefaultFrom), mustParse(t, DefaultTo), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	if ref := defaultPairImage(t, pool); ref != def.Ref {
		t.Fatalf("defaultPairImage = %s, want %s", ref, def.Ref)
	}
	b := inspectBox(t, ctx, pool, def.Ref)
	exe, _, err := b.readFile(ctx, harness.NewBinaryStage)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "nginx")
	if err := os.WriteFile(local, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	info, err := EnsureImage(ctx, pool, mustParse(t, "image:"+def.Ref), mustParse(t, "binary:"+local), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	// The spec names a temporary file: this pair is never found again.
	t.Cleanup(func() { pool.Client.RemoveImage(info.Ref) })
	if info.OldSHA256 != def.OldSHA256 || info.NewSHA256 != def.NewSHA256 || info.NewVersion != def.NewVersion {
		t.Errorf("image:/binary: pair = %+v, want the binaries of %+v", info, def)
	}
	pb := inspectBox(t, ctx, pool, info.Ref)
	if out := mustRun(t, ctx, pb, "sha256sum", harness.DefaultBinary); !strings.HasPrefix(out, def.OldSHA256) {
		t.Errorf("%s in the image:/binary: pair: %s, want %s", harness.DefaultBinary, out, def.OldSHA256)
	}
}

// CrossSuiteTo is a Debian build the configured (bookworm) suites do not
// serve: trixie's nginx, found in the mirror's trixie suite.
const CrossSuiteTo = "debian:trixie"

// recordLog logs progress lines and keeps them for the test to check.
type recordLog struct {
	t   *testing.T
	buf *strings.Builder
}

func (w recordLog) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return testLog{w.t}.Write(p)
}

// TestEnsureImageCrossSuite builds bookworm's nginx → trixie's on a trixie
// root (the bookworm .debs installed there with trixie's libraries) and
// upgrades a running node from one to the other.
//
// A sid pair goes the same way (on a sid root) but is left out of the
// default run: it is one more debootstrap, and the mirror this was written
// against serves a sid Release file past its Valid-Until, which apt refuses
// (the lookup then reports "sid (unreadable: E: Release file … is
// expired …)"). Where the mirror's sid is current, try it with
//
//	NUH_SID_TO=debian:1.30.6-2 go test ./harness -run CrossSuite -timeout 20m -v
func TestEnsureImageCrossSuite(t *testing.T) {
	to := CrossSuiteTo
	if v := os.Getenv("NUH_SID_TO"); v != "" {
		to = v
	}
	pool := imageTestPool(t)
	ctx := testContext(t)
	from, toB := mustResolve(t, DefaultFrom), mustResolve(t, to)
	var progress strings.Builder
	start := time.Now()
	info, err := EnsureImage(ctx, pool, from, toB, recordLog{t, &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureImage %s → %s: %s (%s)", DefaultFrom, to, time.Since(start).Round(time.Millisecond), info.Ref)
	release := toB.Res.Release
	if progress.Len() > 0 {
		for _, want := range []string{"building the pair on a " + release + " root"} {
			if !strings.Contains(progress.String(), want) {
				t.Errorf("progress does not say %q:\n%s", want, progress.String())
			}
		}
	}
	if info.OldSHA256 == "" || info.OldSHA256 == info.NewSHA256 {
		t.Errorf("binaries do not differ: old %s new %s", info.OldSHA256, info.NewSHA256)
	}
	upstream := strings.SplitN(toB.Res.Version, "-", 2)[0]
	if info.OldVersion != "nginx version: nginx/1.22.1" || info.NewVersion != "nginx version: nginx/"+upstream {
		t.Errorf("nginx -v: old %q, new %q; want nginx/1.22.1 and nginx/%s", info.OldVersion, info.NewVersion, upstream)
	}

	b := inspectBox(t, ctx, pool, info.Ref)
	for path, want := range map[string]string{
		harness.DefaultBinary: info.OldSHA256, harness.OldBinaryStage: info.OldSHA256, harness.NewBinaryStage: info.NewSHA256,
	} {
		data, _, err := b.readFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != want {
			t.Errorf("%s: sha256 %x, want %s", path, s, want)
		}
	}
	// The default configuration names a certificate the node writes for
	// itself: put one in place as the node does.
	cert, err := nginx.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.upload(ctx, "/etc/nginx", []tarEntry{{name: "nginx.conf", mode: 0o644, data: []byte(nginx.DefaultConfig)},
		{name: "nuh-tls/cert.pem", mode: 0o644, data: cert.CertPEM}, {name: "nuh-tls/key.pem", mode: 0o600, data: cert.KeyPEM}}); err != nil {
		t.Fatal(err)
	}
	// The node mounts a tmpfs for nginx's own log of every request there.
	out := mustRun(t, ctx, b, "sh", "-c", `set -e
. /etc/os-release; echo "root: $VERSION_CODENAME"
mkdir -p /var/lib/nuh-witness
/usr/sbin/nginx -t 2>&1
/opt/nginx-upgrade-harness/old/nginx -v 2>&1
/opt/nginx-upgrade-harness/new/nginx -v 2>&1
ls /opt/nginx-upgrade-harness/old/debs /opt/nginx-upgrade-harness/new/debs
stat -c '%s %n' /srv/www/slow/big.bin /srv/www/index.html
dpkg-query -W -f='${Package} ${Version}\n' nginx nginx-common
id www-data
echo policy-rc.d: $(ls /usr/sbin/policy-rc.d 2>/dev/null | wc -l)
echo side-apt: $(ls -d /etc/apt/nginx-upgrade-harness /var/lib/apt/nginx-upgrade-harness 2>/dev/null | wc -l)
echo nginx-running: $(pgrep -c -x nginx || true)`)
	t.Log(out)
	newVersion := toB.Res.Version
	for _, want := range []string{
		"root: " + release,
		"nginx: configuration file /etc/nginx/nginx.conf test is successful",
		"nginx_" + from.Res.Version + "_amd64.deb", "nginx-common_" + from.Res.Version + "_all.deb",
		"nginx_" + newVersion + "_amd64.deb",
		"33554432 /srv/www/slow/big.bin", "nginx " + from.Res.Version, "nginx-common " + from.Res.Version,
		"policy-rc.d: 0", "side-apt: 0", "nginx-running: 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("image layout: %q missing", want)
		}
	}
	img, err := pool.Client.InspectImage(info.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Labels[harness.Label] != "1" || strings.Join(img.Config.Cmd, " ") != "sleep infinity" {
		t.Errorf("image config: labels %v cmd %v", img.Config.Labels, img.Config.Cmd)
	}

	// The proof: a running node upgrades from the bookworm binary to the
	// newer release's, and serves.
	uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := nginx.StartNode(uctx, pool, nginx.WithImage(info.Ref))
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	d := nginx.NewDriver(n)
	s0, err := n.Snapshot(uctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := masterBinary(t, s0); got != "old" {
		t.Fatalf("before the upgrade the master runs the %s binary, want old (%s)", got, s0)
	}
	runStep(t, uctx, d, nginx.InstallBinary("install-new-binary", harness.NewBinaryStage))
	runStep(t, uctx, d, nginx.SpawnNewMaster())
	runStep(t, uctx, d, nginx.StopOldWorkers())
	runStep(t, uctx, d, nginx.QuitOldMaster(30*time.Second))
	s1, _ := n.Snapshot(uctx)
	if got := masterBinary(t, s1); got != "new" {
		t.Fatalf("after the upgrade the master runs the %s binary, want new (%s)", got, s1)
	}
	if err := n.Probe(uctx); err != nil {
		t.Fatalf("not serving after the upgrade: %v", err)
	}

	// Cached: found again, nothing built.
	var again strings.Builder
	second, err := EnsureImage(ctx, pool, from, toB, &again)
	if err != nil {
		t.Fatal(err)
	}
	if second.Ref != info.Ref || second.NewSHA256 != info.NewSHA256 || again.Len() > 0 {
		t.Errorf("second EnsureImage = %+v (progress %q), want %+v and nothing built", second, again.String(), info)
	}
}

func TestReleaseOf(t *testing.T) {
	if releaseOf("trixie-security") != "trixie" || releaseOf("sid") != "sid" || baseImageFor(suite) != BaseImage {
		t.Error("releaseOf/baseImageFor")
	}
}

// mustResolve parses and resolves a spec against the archive (or the cache).
func mustResolve(t *testing.T, spec string) Build {
	t.Helper()
	b := mustParse(t, spec)
	r, err := NewResolver(WithProgress(testLog{t}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Resolve(testContext(t), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func runStep(t *testing.T, ctx context.Context, d *nginx.Driver, s nginx.Step) nginx.StepResult {
	t.Helper()
	r := d.Run(ctx, s)
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
