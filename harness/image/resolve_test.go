package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeArchive answers as the archive did on a given day: what each suite
// serves, or why it cannot be read. Files are served from files.
type fakeArchive struct {
	suites map[string]*suiteIndex
	broken map[string]error
	files  map[string][]byte // URL → content
	reads  map[string]int
}

func (a *fakeArchive) read(_ context.Context, s suiteRef) (*suiteIndex, error) {
	a.reads[s.name]++
	if err := a.broken[s.name]; err != nil {
		return nil, err
	}
	if idx, ok := a.suites[s.name]; ok {
		return idx, nil
	}
	return &suiteIndex{Suite: s.name}, nil
}

func (a *fakeArchive) fetch(_ context.Context, url string, _ int64) ([]byte, error) {
	if data, ok := a.files[url]; ok {
		return data, nil
	}
	return nil, fmt.Errorf("fetch %s: 404 Not Found", url)
}

var testSuites = []suiteRef{
	{name: "bookworm", uri: "http://mirror.test/debian", configured: true},
	{name: "bookworm-security", uri: "http://mirror.test/debian-security", configured: true},
	{name: "trixie", uri: "http://mirror.test/debian"},
	{name: "sid", uri: "http://mirror.test/debian"},
}

func uriOf(suite string) string {
	for _, s := range testSuites {
		if s.name == suite {
			return s.uri
		}
	}
	return ""
}

// serve makes suite serve nginx and nginx-common at version, as Debian's
// index lists them (the Depends line is bookworm's, recorded).
func (a *fakeArchive) serve(suite, version string) {
	pool := "pool/main/n/nginx/"
	if strings.HasSuffix(suite, "-security") {
		pool = "pool/updates/main/n/nginx/"
	}
	idx := a.suites[suite]
	if idx == nil {
		idx = &suiteIndex{Suite: suite, URI: uriOf(suite)}
		a.suites[suite] = idx
	}
	for _, p := range []struct{ name, arch, depends string }{
		{"nginx", "amd64", "libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.0), zlib1g (>= 1:1.1.4), iproute2, " +
			"nginx-common (<< " + version + ".1~), nginx-common (>= " + version + ")"},
		{"nginx-common", "all", "debconf (>= 0.5) | debconf-2.0"},
	} {
		data := []byte("package file " + p.name + " " + version)
		file := pool + p.name + "_" + version + "_" + p.arch + ".deb"
		a.files[uriOf(suite)+"/"+file] = data
		idx.Packages = append(idx.Packages, pkgStanza{Package: p.name, Version: version, Arch: p.arch, Source: "nginx",
			Filename: file, SHA256: sha256Hex(data), Size: int64(len(data)), Depends: p.depends})
	}
}

// withdraw makes suite serve nothing of nginx (it moved on).
func (a *fakeArchive) withdraw(suite string) { delete(a.suites, suite) }

func (a *fakeArchive) serveTarball(suite, version string) {
	idx := a.suites[suite]
	if idx == nil {
		idx = &suiteIndex{Suite: suite, URI: uriOf(suite)}
		a.suites[suite] = idx
	}
	data := []byte("tarball " + version)
	file := "pool/main/n/nginx/nginx_" + version + ".orig.tar.gz"
	a.files[uriOf(suite)+"/"+file] = data
	idx.Tarballs = append(idx.Tarballs, srcTarball{Version: version, Filename: file, SHA256: sha256Hex(data), Size: int64(len(data))})
}

// bookwormToday is the archive as it was on the day this was recorded:
// bookworm's point release, its security update, trixie, and a sid whose
// Release file has expired.
func bookwormToday() *fakeArchive {
	a := &fakeArchive{suites: map[string]*suiteIndex{}, broken: map[string]error{}, files: map[string][]byte{}, reads: map[string]int{}}
	a.serve("bookworm", "1.22.1-9+deb12u9")
	a.serve("bookworm-security", "1.22.1-9+deb12u12")
	a.serve("trixie", "1.26.3-3+deb13u10")
	a.serveTarball("bookworm", "1.22.1")
	a.serveTarball("trixie", "1.26.3")
	a.broken["sid"] = errors.New("Release file expired on 2026-11-06")
	return a
}

func resolveWith(t *testing.T, a *fakeArchive, cache string, progress *strings.Builder, opts []ResolverOption, specs ...string) ([]Build, error) {
	t.Helper()
	opts = append(opts, WithProgress(progress))
	r := newResolver(cache, testSuites, a, a.fetch, opts...)
	var bs []Build
	for _, spec := range specs {
		b, err := ParseBuild(spec)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	ptrs := make([]*Build, len(bs))
	for i := range bs {
		ptrs[i] = &bs[i]
	}
	return bs, r.Resolve(context.Background(), ptrs...)
}

func mustResolveWith(t *testing.T, a *fakeArchive, cache string, opts []ResolverOption, specs ...string) ([]Build, string) {
	t.Helper()
	var progress strings.Builder
	bs, err := resolveWith(t, a, cache, &progress, opts, specs...)
	if err != nil {
		t.Fatalf("resolve %v: %v\n%s", specs, err, progress.String())
	}
	return bs, progress.String()
}

func TestResolveSuiteSpecs(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	bs, progress := mustResolveWith(t, a, cache, nil, DefaultFrom, DefaultTo, "debian:trixie")
	for i, want := range []string{"debian:1.22.1-9+deb12u9", "debian:1.22.1-9+deb12u12", "debian:1.26.3-3+deb13u10"} {
		if got := bs[i].Exact(); got != want {
			t.Errorf("%s resolved to %s, want %s", bs[i].Spec, got, want)
		}
		if bs[i].Res.Origin != OriginArchive || len(bs[i].Res.Debs) != 2 {
			t.Errorf("%s: %+v", bs[i].Spec, bs[i].Res)
		}
		files, err := DebFilesIn(cache, bs[i])
		if err != nil || len(files) != 2 {
			t.Errorf("%s: cached files %v, %v", bs[i].Spec, len(files), err)
		}
	}
	if bs[2].Res.Release != "trixie" || bs[1].Res.Release != "bookworm" {
		t.Errorf("releases: %s, %s", bs[1].Res.Release, bs[2].Res.Release)
	}
	if !strings.Contains(progress, "debian:bookworm-security = 1.22.1-9+deb12u12 (bookworm-security, sha256 ") {
		t.Errorf("progress does not say what the spec resolved to:\n%s", progress)
	}
	// A suite spec reads only its own suite.
	if a.reads["sid"] != 0 || a.reads["bookworm"] != 1 {
		t.Errorf("suites read: %v", a.reads)
	}
}

// The security suite moves on: the spec follows it, and the exact version
// it served before, withdrawn, still builds from the cache.
func TestResolveSecuritySuiteMovedOn(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	mustResolveWith(t, a, cache, nil, DefaultTo)
	a.withdraw("bookworm-security")
	a.serve("bookworm-security", "1.22.1-9+deb12u13")

	bs, progress := mustResolveWith(t, a, cache, nil, DefaultTo, "debian:1.22.1-9+deb12u12")
	if got := bs[0].Exact(); got != "debian:1.22.1-9+deb12u13" {
		t.Errorf("%s resolved to %s after the suite moved on, want deb12u13", DefaultTo, got)
	}
	old := bs[1]
	if old.Res.Origin != OriginCache || old.Res.Suite != "" || !strings.Contains(old.Res.Note, "no suite serves it now") {
		t.Errorf("withdrawn version: %+v", old.Res)
	}
	if !strings.Contains(progress, "debian:1.22.1-9+deb12u12 = 1.22.1-9+deb12u12 (cache, sha256 ") {
		t.Errorf("progress does not say the withdrawn version came from the cache:\n%s", progress)
	}
	if _, err := DebFilesIn(cache, old); err != nil {
		t.Errorf("withdrawn version's files: %v", err)
	}

	// Without the cache it is an error that lists what is served.
	var p strings.Builder
	_, err := resolveWith(t, a, t.TempDir(), &p, nil, "debian:1.22.1-9+deb12u12")
	want := "debian:1.22.1-9+deb12u12: version 1.22.1-9+deb12u12 is neither served (served: bookworm: 1.22.1-9+deb12u9; bookworm-security: 1.22.1-9+deb12u13; trixie: 1.26.3-3+deb13u10; sid: unreadable) nor in the cache"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

// A cached file that no longer matches its hash is not used: it is fetched again.
func TestResolveTamperedCache(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	bs, _ := mustResolveWith(t, a, cache, nil, DefaultFrom)
	p := filepath.Join(cache, "debs", bs[0].Res.SHA256+".deb")
	if err := os.WriteFile(p, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DebFilesIn(cache, bs[0]); err == nil || !strings.Contains(err.Error(), "does not match its sha256") {
		t.Errorf("tampered file read back: %v", err)
	}
	_, progress := mustResolveWith(t, a, cache, nil, DefaultFrom)
	if !strings.Contains(progress, "downloading http://mirror.test/debian/pool/main/n/nginx/nginx_1.22.1-9+deb12u9_amd64.deb") {
		t.Errorf("tampered file not fetched again:\n%s", progress)
	}
	// With the archive withdrawn too, a tampered cache is not a cache.
	a.withdraw("bookworm")
	if err := os.WriteFile(p, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := resolveWith(t, a, cache, &out, nil, "debian:1.22.1-9+deb12u9"); err == nil {
		t.Error("a tampered cached file was used")
	}
}

// An expired suite is one warning line; the other suites still answer.
func TestResolveExpiredSuite(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	bs, progress := mustResolveWith(t, a, cache, nil, "debian:1.26.3-3+deb13u10", "source:stable")
	if bs[0].Res.Suite != "trixie" || bs[1].Exact() != "source:1.26.3" {
		t.Errorf("resolved %s, %s", bs[0].Exact(), bs[1].Exact())
	}
	if n := strings.Count(progress, "warning: suite sid cannot be read: Release file expired on 2026-11-06"); n != 1 {
		t.Errorf("%d warnings about sid, want 1:\n%s", n, progress)
	}
	var p strings.Builder
	if _, err := resolveWith(t, a, cache, &p, nil, "debian:sid"); err == nil ||
		err.Error() != "debian:sid: suite sid cannot be read (Release file expired on 2026-11-06) and the cache holds no earlier resolution of it" {
		t.Errorf("debian:sid: %v", err)
	}
}

// A suite that cannot be read today: a suite spec goes on with its last
// resolution, and says so.
func TestResolveUnreadableSuiteUsesLastResolution(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	mustResolveWith(t, a, cache, nil, DefaultTo)
	a.broken["bookworm-security"] = errors.New("fetch http://mirror.test/debian-security/dists/bookworm-security/InRelease: connection refused")
	bs, progress := mustResolveWith(t, a, cache, nil, DefaultTo)
	if bs[0].Exact() != "debian:1.22.1-9+deb12u12" || bs[0].Res.Origin != OriginCache ||
		!strings.Contains(bs[0].Res.Note, "suite bookworm-security cannot be read; the last resolution (1.22.1-9+deb12u12) is used") {
		t.Errorf("resolved %s %+v", bs[0].Exact(), bs[0].Res)
	}
	if !strings.Contains(progress, "warning: suite bookworm-security cannot be read: fetch") {
		t.Errorf("no warning:\n%s", progress)
	}
}

// Before a security update both suites serve one version: both specs
// resolve to it.
func TestResolveTwoSuitesOneVersion(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	a.withdraw("bookworm-security")
	a.serve("bookworm-security", "1.22.1-9+deb12u9")
	bs, _ := mustResolveWith(t, a, cache, nil, DefaultFrom, DefaultTo)
	if bs[0].Exact() != bs[1].Exact() || bs[0].Res.SHA256 != bs[1].Res.SHA256 {
		t.Errorf("%s and %s", bs[0].Exact(), bs[1].Exact())
	}
	if bs[1].Res.Suite != "bookworm-security" {
		t.Errorf("debian:bookworm-security found in %s, want its own suite first", bs[1].Res.Suite)
	}
}

func TestResolveLock(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	lock := filepath.Join(t.TempDir(), "lock.json")
	first, progress := mustResolveWith(t, a, cache, []ResolverOption{WithLock(lock)}, DefaultFrom, DefaultTo)
	if !strings.Contains(progress, "wrote lock "+lock) {
		t.Errorf("lock not written:\n%s", progress)
	}
	// A month later: the security suite moved on. The lock gives the very
	// same files, from the cache.
	a.withdraw("bookworm-security")
	a.serve("bookworm-security", "1.22.1-9+deb12u13")
	again, _ := mustResolveWith(t, a, cache, []ResolverOption{WithLock(lock)}, DefaultFrom, DefaultTo)
	for i := range first {
		if again[i].Exact() != first[i].Exact() || again[i].Res.SHA256 != first[i].Res.SHA256 {
			t.Errorf("%s: locked run resolved %s, first run %s", first[i].Spec, again[i].Exact(), first[i].Exact())
		}
	}
	if again[1].Res.Origin != OriginCache {
		t.Errorf("locked withdrawn version: origin %s", again[1].Res.Origin)
	}
	// Without the lock, the spec follows the suite.
	free, _ := mustResolveWith(t, a, cache, nil, DefaultTo)
	if free[0].Exact() != "debian:1.22.1-9+deb12u13" {
		t.Errorf("unlocked: %s", free[0].Exact())
	}
	// A locked version neither the archive nor the cache has.
	var p strings.Builder
	_, err := resolveWith(t, a, t.TempDir(), &p, []ResolverOption{WithLock(lock)}, DefaultTo)
	if err == nil || !strings.HasPrefix(err.Error(), "debian:bookworm-security: locked version 1.22.1-9+deb12u12 is neither served (served: ") ||
		!strings.Contains(err.Error(), "bookworm-security: 1.22.1-9+deb12u13") {
		t.Errorf("locked, withdrawn, not cached: %v", err)
	}
	// A lock that disagrees with the archive: same version, other file.
	a.withdraw("bookworm")
	a.serve("bookworm", "1.22.1-9+deb12u9")
	a.suites["bookworm"].Packages[0].SHA256 = strings.Repeat("0", 64)
	_, err = resolveWith(t, a, cache, &p, []ResolverOption{WithLock(lock)}, DefaultFrom)
	if err == nil || !strings.Contains(err.Error(), "debian:bookworm: locked nginx 1.22.1-9+deb12u9 has sha256 "+short(first[0].Res.SHA256)+", but bookworm serves it with sha256 000000000000") {
		t.Errorf("lock disagreeing with the archive: %v", err)
	}
	// Not a lock file.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"x": 1}`), 0o644)
	if _, err := resolveWith(t, a, cache, &p, []ResolverOption{WithLock(bad)}, DefaultFrom); err == nil || !strings.Contains(err.Error(), "not a lock file") {
		t.Errorf("bad lock: %v", err)
	}
}

func TestResolveSourceChannels(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	bs, _ := mustResolveWith(t, a, cache, nil, "source:stable:--without-http_gzip_module", "source:1.22.1")
	if bs[0].Exact() != "source:1.26.3:--without-http_gzip_module" || bs[1].Exact() != "source:1.22.1" {
		t.Errorf("resolved %s, %s", bs[0].Exact(), bs[1].Exact())
	}
	if data, err := os.ReadFile(bs[0].Res.tarball); err != nil || string(data) != "tarball 1.26.3" {
		t.Errorf("tarball %q %v", data, err)
	}
	var p strings.Builder
	if _, err := resolveWith(t, a, cache, &p, nil, "source:mainline"); err == nil ||
		err.Error() != "source:mainline: no mainline nginx (an odd minor version) among the tarballs the suites serve (1.26.3, 1.22.1)" {
		t.Errorf("mainline: %v", err)
	}
	a.serveTarball("trixie", "1.27.4")
	bs, _ = mustResolveWith(t, a, cache, nil, "source:mainline")
	if bs[0].Exact() != "source:1.27.4" {
		t.Errorf("mainline resolved to %s", bs[0].Exact())
	}
}

func TestCompareDebianVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.22.1-9+deb12u9", "1.22.1-9+deb12u12", -1},
		{"1.22.1-9+deb12u12", "1.22.1-9+deb12u12", 0},
		{"1.26.3-3+deb13u10", "1.22.1-9+deb12u12", 1},
		{"1.0~rc1-1", "1.0-1", -1},
		{"1:1.0-1", "2.0-1", 1},
		{"1.0-1", "1.0-1+b1", -1},
		{"1.10", "1.9", 1},
		{"1.0a", "1.0+", -1},
	} {
		if got := compareDebianVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// The parts of a real Release file and index the reader uses (recorded
// from bookworm-security).
func TestReleaseAndIndexParsing(t *testing.T) {
	release := `Origin: Debian
Suite: oldstable-security
Codename: bookworm-security
Date: Wed, 02 Dec 2026 23:13:43 UTC
Valid-Until: Wed, 09 Dec 2026 23:13:43 UTC
SHA256:
 ffdfc0b919fa70ee96eca136614b977b4aa3041920e03f1b7f755abe564d373f  2579986 main/binary-amd64/Packages
 a28f0765258285920aae9076f2e256ab3b8341ef03590fdf34e5839c36a9094a   385532 main/binary-amd64/Packages.xz
`
	h := releaseHashes(release)
	if got := h["main/binary-amd64/Packages.xz"]; got.sum != "a28f0765258285920aae9076f2e256ab3b8341ef03590fdf34e5839c36a9094a" || got.size != 385532 {
		t.Errorf("Packages.xz hash: %+v", got)
	}
	packages := `Package: libnginx-mod-http-geoip
Source: nginx
Version: 1.22.1-9+deb12u12
Architecture: amd64
Filename: pool/updates/main/n/nginx/libnginx-mod-http-geoip_1.22.1-9+deb12u12_amd64.deb
Size: 1

Package: nginx
Version: 1.22.1-9+deb12u12
Architecture: amd64
Depends: libc6 (>= 2.34), nginx-common (<< 1.22.1-9+deb12u12.1~), nginx-common (>= 1.22.1-9+deb12u12)
Filename: pool/updates/main/n/nginx/nginx_1.22.1-9+deb12u12_amd64.deb
Size: 532740
SHA256: 1a1014cd0dcc0b46b5c9369713d5781493d7effc9b4c25c78ac6369cb4bb71b2

Package: openssl
Version: 3.0.17-1~deb12u3
Filename: pool/updates/main/o/openssl/openssl_3.0.17-1~deb12u3_amd64.deb
`
	got, err := parsePackages(strings.NewReader(packages))
	if err != nil || len(got) != 2 || got[1].Package != "nginx" || got[1].Size != 532740 || got[1].SHA256[:12] != "1a1014cd0dcc" {
		t.Errorf("parsePackages = %+v, %v", got, err)
	}
	sources := `Package: nginx
Version: 1.26.3-3+deb13u10
Directory: pool/main/n/nginx
Checksums-Sha256:
 69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa 1260179 nginx_1.26.3.orig.tar.gz
 1111111111111111111111111111111111111111111111111111111111111111 2000 nginx_1.26.3-3+deb13u10.debian.tar.xz
`
	ts, err := parseSources(strings.NewReader(sources))
	if err != nil || len(ts) != 1 || ts[0].Version != "1.26.3" || ts[0].Filename != "pool/main/n/nginx/nginx_1.26.3.orig.tar.gz" {
		t.Errorf("parseSources = %+v, %v", ts, err)
	}
	for v, want := range map[string]string{"1.26.3": "stable", "1.27.4": "mainline", "1.30.6": "stable", "1": ""} {
		if got := channelOf(v); got != want {
			t.Errorf("channelOf(%s) = %q, want %q", v, got, want)
		}
	}
}

// A suite whose InRelease is not signed by Debian's keys is the error,
// named with its key, even where an unreachable suite would fall back on
// the last resolution, the cache or the lock.
func TestResolveBadSignatureDoesNotFallBack(t *testing.T) {
	a, cache := bookwormToday(), t.TempDir()
	lock := filepath.Join(t.TempDir(), "lock.json")
	mustResolveWith(t, a, cache, []ResolverOption{WithLock(lock)}, DefaultFrom, DefaultTo)
	a.broken["bookworm-security"] = &SignatureError{Suite: "bookworm-security", Keys: []string{"B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8"},
		Why: "has a bad signature: its text was changed after it was signed"}
	want := "debian:bookworm-security: suite bookworm-security: InRelease has a bad signature: its text was changed after it was signed (key B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8); nothing falls back"
	for _, tc := range []struct {
		name string
		opts []ResolverOption
		spec string
	}{
		{"suite spec, last resolution cached", nil, DefaultTo},
		{"suite spec, locked", []ResolverOption{WithLock(lock)}, DefaultTo},
		{"exact version, cached", nil, "debian:1.22.1-9+deb12u12"},
	} {
		var p strings.Builder
		bs, err := resolveWith(t, a, cache, &p, tc.opts, tc.spec)
		if err == nil || !strings.HasPrefix(strings.Replace(err.Error(), tc.spec, DefaultTo, 1), want) || bs[0].Res != nil {
			t.Errorf("%s: %v, resolved %+v\n%s", tc.name, err, bs[0].Res, p.String())
		}
	}
	// A suite the build does not need is read only when another is
	// searched: bookworm's own version never reads bookworm-security.
	if _, err := resolveWith(t, a, cache, &strings.Builder{}, nil, DefaultFrom); err != nil {
		t.Errorf("%s with bookworm-security tampered: %v", DefaultFrom, err)
	}
}
