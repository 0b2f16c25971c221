package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Images the harness builds. The pair image is tagged with a cache key, so
// that a pair is built once and found again by the next run.
const (
	BaseImage    = "nginx-upgrade-harness/base:bookworm"
	BuilderImage = "nginx-upgrade-harness/builder:bookworm"
	PairRepo     = "nginx-upgrade-harness/pair"

	// recipeVersion changes whenever the layout of the pair image changes,
	// so that cached pairs built by an older recipe are not reused.
	recipeVersion = "pair-recipe-2"

	labelBuilds = harness.Label + ".builds" // builds.json, so that a cached pair is read without a container
	labelKey    = harness.Label + ".key"

	rootfsRepo    = "nginx-upgrade-harness/rootfs" // tagged with the release, while a base is built
	suite         = "bookworm"                     // the configured release: the host's suites
	bigFileSize   = 4 << 20
	containerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// The fixed configure flags of source builds: Debian's paths, so that a
// source build and a Debian build read the same defaults.
var sourceConfigureFlags = []string{
	"--prefix=/usr/share/nginx",
	"--sbin-path=/usr/sbin/nginx",
	"--conf-path=/etc/nginx/nginx.conf",
	"--http-log-path=/var/log/nginx/access.log",
	"--error-log-path=/var/log/nginx/error.log",
	"--lock-path=/var/lock/nginx.lock",
	"--pid-path=/run/nginx.pid",
	"--modules-path=/usr/lib/nginx/modules",
	"--http-client-body-temp-path=/var/lib/nginx/body",
	"--http-proxy-temp-path=/var/lib/nginx/proxy",
	"--http-fastcgi-temp-path=/var/lib/nginx/fastcgi",
	"--http-uwsgi-temp-path=/var/lib/nginx/uwsgi",
	"--http-scgi-temp-path=/var/lib/nginx/scgi",
	"--with-http_ssl_module",
	"--with-http_v2_module",
}

// ImageInfo describes a pair image: the two builds it holds and what they are.
type ImageInfo struct {
	Ref        string
	From, To   Build
	OldSHA256  string
	NewSHA256  string
	OldVersion string // `nginx -v` of the old binary, e.g. "nginx version: nginx/1.22.1"
	NewVersion string
}

// EnsureImage returns a local image holding both builds, building it (and
// the base and builder images it needs) when it is not cached. Progress lines
// go to progress (nil discards them).
//
// Layout: the old binary installed at /usr/sbin/nginx (by its package for a
// Debian build), copies of both at /opt/nginx-upgrade-harness/{old,new}/nginx,
// the .debs of Debian builds under /opt/nginx-upgrade-harness/{old,new}/debs/,
// builds.json beside them, a small site under /srv/www (index.html and the
// 4 MiB slow/big.bin), and `sleep infinity` as the default command.
func EnsureImage(ctx context.Context, pool *dockertest.Pool, from, to Build, progress io.Writer) (ImageInfo, error) {
	if progress == nil {
		progress = io.Discard
	}
	key, err := cacheKey(pool, from, to)
	if err != nil {
		return ImageInfo{}, err
	}
	ref := PairRepo + ":" + key[:16]
	if img, err := inspectImage(ctx, pool, ref); err == nil {
		info, err := readInfo(ctx, pool, ref, img)
		if err != nil {
			return ImageInfo{}, err
		}
		info.From, info.To = from, to
		return info, nil
	}
	start := time.Now()
	fmt.Fprintf(progress, "building pair image %s (%s → %s)…\n", ref, from.Spec, to.Spec)
	info, err := buildPair(ctx, pool, from, to, ref, key, progress)
	if err != nil {
		return ImageInfo{}, err
	}
	fmt.Fprintf(progress, "pair image %s ready (%s)\n", ref, since(start))
	return info, nil
}

// cacheKey hashes everything that decides the content of a pair image.
func cacheKey(pool *dockertest.Pool, from, to Build) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", recipeVersion)
	for _, b := range []Build{from, to} {
		fmt.Fprintf(h, "%s\x00", b.Spec)
		switch {
		case b.Path != "":
			sum, err := fileSHA256(b.Path)
			if err != nil {
				return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
			}
			fmt.Fprintf(h, "file %s\x00", sum)
		case b.Kind == KindImage:
			img, err := inspectImage(context.Background(), pool, b.Ref)
			if err != nil {
				return "", imageMissing(b, err)
			}
			fmt.Fprintf(h, "image %s\x00", img.ID)
		case b.Kind == "":
			return "", fmt.Errorf("empty build: parse it with ParseBuild")
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func imageMissing(b Build, err error) error {
	if errors.Is(err, dc.ErrNoSuchImage) {
		return fmt.Errorf("%s: not present locally and no registry is reachable", b.Spec)
	}
	return fmt.Errorf("%s: inspect image: %s", b.Spec, harness.OneLine(err.Error()))
}

// readInfo reads builds.json of a cached pair from its label, or from the
// image's file system if the label is missing.
func readInfo(ctx context.Context, pool *dockertest.Pool, ref string, img *dc.Image) (ImageInfo, error) {
	var raw []byte
	if img.Config != nil && img.Config.Labels[labelBuilds] != "" {
		raw = []byte(img.Config.Labels[labelBuilds])
	} else {
		b, err := createBox(ctx, pool, ref, false)
		if err != nil {
			return ImageInfo{}, err
		}
		defer b.remove()
		if raw, _, err = b.readFile(ctx, harness.BuildsFile); err != nil {
			return ImageInfo{}, fmt.Errorf("read %s from %s: %w", harness.BuildsFile, ref, err)
		}
	}
	var bj harness.BuildsInfo
	if err := json.Unmarshal(raw, &bj); err != nil {
		return ImageInfo{}, fmt.Errorf("%s: bad builds.json: %s", ref, harness.OneLine(err.Error()))
	}
	return ImageInfo{Ref: ref, OldSHA256: bj.OldSHA256, NewSHA256: bj.NewSHA256,
		OldVersion: bj.OldVersion, NewVersion: bj.NewVersion}, nil
}

// binaryArtifact is a compiled or copied nginx, and for a source build the
// sample configuration of its tree.
type binaryArtifact struct {
	exe  []byte
	conf []tarEntry // under "nginx/", to be unpacked into /etc
}

func buildPair(ctx context.Context, pool *dockertest.Pool, from, to Build, ref, key string, progress io.Writer) (ImageInfo, error) {
	if _, err := ensureBase(ctx, pool, suite, progress); err != nil {
		return ImageInfo{}, err
	}
	// Binaries that do not come from apt are made before the pair container
	// starts: a compile error then costs no apt work.
	artifacts := map[string]*binaryArtifact{}
	var sources []Build
	for _, b := range []Build{from, to} {
		if _, done := artifacts[b.Spec]; done {
			continue
		}
		switch b.Kind {
		case KindBinary:
			exe, err := os.ReadFile(b.Path)
			if err != nil {
				return ImageInfo{}, fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
			}
			artifacts[b.Spec] = &binaryArtifact{exe: exe}
		case KindImage:
			exe, err := binaryFromImage(ctx, pool, b)
			if err != nil {
				return ImageInfo{}, err
			}
			artifacts[b.Spec] = &binaryArtifact{exe: exe}
		case KindSource:
			artifacts[b.Spec] = nil
			sources = append(sources, b)
		}
	}
	if len(sources) > 0 {
		built, err := compileSources(ctx, pool, sources, progress)
		if err != nil {
			return ImageInfo{}, err
		}
		for spec, a := range built {
			artifacts[spec] = a
		}
	}

	box, err := createBox(ctx, pool, BaseImage, true)
	if err != nil {
		return ImageInfo{}, err
	}
	defer func() { box.remove() }()

	// Where each Debian build is served decides the root the pair is built
	// on: the configured release's unless a build comes from a newer one.
	plan := debianPlan{root: suite}
	if from.Kind == KindDebian || to.Kind == KindDebian {
		if plan, err = lookupDebian(ctx, box, []Build{from, to}, progress); err != nil {
			return ImageInfo{}, err
		}
	}
	// aptFor[spec] selects the apt configuration that serves a Debian build:
	// nil for the root's own suites, a side configuration otherwise.
	aptFor := map[string][]string{}
	if plan.root != suite {
		fmt.Fprintf(progress, "building the pair on a %s root (the newer release of the pair)…\n", plan.root)
		box.remove()
		if _, err := ensureBase(ctx, pool, plan.root, progress); err != nil {
			return ImageInfo{}, err
		}
		rootBox, err := createBox(ctx, pool, baseImageFor(plan.root), true)
		if err != nil {
			return ImageInfo{}, err
		}
		box = rootBox
		if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
			return ImageInfo{}, err
		}
		for _, b := range []Build{from, to} {
			r, ok := plan.release[b.Spec]
			if !ok || r == plan.root || aptFor[b.Spec] != nil {
				continue
			}
			files, err := releaseSourceFiles(r)
			if err != nil {
				return ImageInfo{}, fmt.Errorf("%s: %w", b.Spec, err)
			}
			fmt.Fprintf(progress, "%s: fetching from %s's suites on the %s root…\n", b.Spec, r, plan.root)
			env, err := sideApt(ctx, box, "release-"+r, files)
			if err != nil {
				return ImageInfo{}, fmt.Errorf("%s: %w", b.Spec, err)
			}
			for _, o := range []Build{from, to} {
				if plan.release[o.Spec] == r {
					aptFor[o.Spec] = env
				}
			}
		}
	}
	if _, err := box.script(ctx, "prepare directories", nil, `set -eu
mkdir -p /opt/nginx-upgrade-harness/old /opt/nginx-upgrade-harness/new`); err != nil {
		return ImageInfo{}, err
	}

	// The old build: installed at /usr/sbin/nginx, and copied to the stage.
	// Its .debs come from its own suite; apt installs them with the
	// dependencies the root's suites offer.
	if from.Kind == KindDebian {
		fmt.Fprintf(progress, "installing %s (old build)…\n", from.Spec)
		pkgs, err := debianPackages(ctx, box, aptFor[from.Spec], from.Version)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", from.Spec, err)
		}
		env := []string{"DEBS=" + harness.StageDir + "/old/debs", "TARGET=" + harness.OldBinaryStage, "SUITE_APT_CONFIG=" + aptConfigOf(aptFor[from.Spec])}
		if _, err := box.script(ctx, "install "+from.Spec, env, installOldScript, pkgs...); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", from.Spec, err)
		}
		if err := checkInstalled(ctx, box, from.Version); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", from.Spec, err)
		}
	} else {
		a := artifacts[from.Spec]
		entries := []tarEntry{
			{name: "usr/sbin/nginx", mode: 0o755, data: a.exe},
			{name: strings.TrimPrefix(harness.OldBinaryStage, "/"), mode: 0o755, data: a.exe},
		}
		if err := box.upload(ctx, "/", entries); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: copy in: %w", from.Spec, err)
		}
		if len(a.conf) > 0 {
			if err := box.upload(ctx, "/etc", a.conf); err != nil {
				return ImageInfo{}, fmt.Errorf("%s: copy configuration in: %w", from.Spec, err)
			}
		}
	}

	// The new build: staged only.
	if to.Kind == KindDebian {
		fmt.Fprintf(progress, "staging %s (new build)…\n", to.Spec)
		pkgs, err := debianPackages(ctx, box, aptFor[to.Spec], to.Version)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", to.Spec, err)
		}
		env := []string{"DEBS=" + harness.StageDir + "/new/debs", "TARGET=" + harness.NewBinaryStage, "SUITE_APT_CONFIG=" + aptConfigOf(aptFor[to.Spec])}
		if _, err := box.script(ctx, "stage "+to.Spec, env, stageNewScript, pkgs...); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", to.Spec, err)
		}
	} else {
		a := artifacts[to.Spec]
		if err := box.upload(ctx, "/", []tarEntry{{name: strings.TrimPrefix(harness.NewBinaryStage, "/"), mode: 0o755, data: a.exe}}); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: copy in: %w", to.Spec, err)
		}
	}

	if _, err := box.script(ctx, "finish image", nil, finishScript); err != nil {
		return ImageInfo{}, err
	}
	if err := box.upload(ctx, "/", siteEntries()); err != nil {
		return ImageInfo{}, fmt.Errorf("copy site in: %w", err)
	}

	bj := harness.BuildsInfo{From: from.Spec, To: to.Spec}
	for _, side := range []struct {
		build   Build
		path    string
		sum     *string
		version *string
	}{{from, harness.OldBinaryStage, &bj.OldSHA256, &bj.OldVersion}, {to, harness.NewBinaryStage, &bj.NewSHA256, &bj.NewVersion}} {
		exe, _, err := box.readFile(ctx, side.path)
		if err != nil {
			return ImageInfo{}, fmt.Errorf("%s: read %s back: %w", side.build.Spec, side.path, err)
		}
		s := sha256.Sum256(exe)
		*side.sum = hex.EncodeToString(s[:])
		out, err := box.run(ctx, side.build.Spec+": nginx -v", nil, side.path, "-v")
		if err != nil {
			// A build that does not even print its version is no use as
			// either side of an upgrade: say so now, not in the middle of a run.
			return ImageInfo{}, fmt.Errorf("%s: binary does not run in the image: %w", side.build.Spec, err)
		}
		*side.version = strings.TrimSpace(out)
	}
	raw, _ := json.MarshalIndent(bj, "", "  ")
	if err := box.upload(ctx, "/", []tarEntry{{name: strings.TrimPrefix(harness.BuildsFile, "/"), mode: 0o644, data: append(raw, '\n')}}); err != nil {
		return ImageInfo{}, fmt.Errorf("write builds.json: %w", err)
	}

	repo, tag, _ := strings.Cut(ref, ":")
	compact, _ := json.Marshal(bj)
	if err := box.commit(ctx, repo, tag, map[string]string{
		harness.Label: "1", labelKey: key, labelBuilds: string(compact),
	}); err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{Ref: ref, From: from, To: to, OldSHA256: bj.OldSHA256, NewSHA256: bj.NewSHA256,
		OldVersion: bj.OldVersion, NewVersion: bj.NewVersion}, nil
}

// Constant scripts run in build containers; user values reach them as
// arguments or environment, never as script text.
const (
	// installOldScript downloads the named package versions into $DEBS,
	// installs exactly those files (their dependencies come from apt) and
	// copies the installed executable to $TARGET.
	// $SUITE_APT_CONFIG, when set, is the apt configuration to download
	// with (a suite of another release); the install uses the root's own.
	installOldScript = `set -eu
mkdir -p "$DEBS"
cd "$DEBS"
if [ -n "${SUITE_APT_CONFIG:-}" ]; then APT_CONFIG=$SUITE_APT_CONFIG apt-get download "$@"; else apt-get download "$@"; fi
set --
for f in ./*.deb; do set -- "$@" "$f"; done
apt-get install -y --no-install-recommends "$@"
install -m 0755 /usr/sbin/nginx "$TARGET"`

	// stageNewScript downloads the named package versions into $DEBS and
	// extracts the nginx executable they ship to $TARGET.
	stageNewScript = `set -eu
mkdir -p "$DEBS"
cd "$DEBS"
if [ -n "${SUITE_APT_CONFIG:-}" ]; then APT_CONFIG=$SUITE_APT_CONFIG apt-get download "$@"; else apt-get download "$@"; fi
x=$(mktemp -d)
for f in ./*.deb; do dpkg-deb -x "$f" "$x"; done
if [ ! -f "$x/usr/sbin/nginx" ]; then echo "none of the packages $* ships /usr/sbin/nginx" >&2; exit 1; fi
install -m 0755 "$x/usr/sbin/nginx" "$TARGET"
rm -rf "$x"`

	// finishScript sets up what every pair image has, and makes sure that
	// nothing a package started stays behind in the image. The base's
	// policy-rc.d (which kept package scripts from starting nginx during the
	// build) goes: in the pair image, a package upgrade (dpkg -i of the new
	// .debs) runs its init script as on a host.
	finishScript = `set -eu
S=/opt/nginx-upgrade-harness
pkill -x nginx || true
rm -f /run/nginx.pid /run/nginx.pid.oldbin
chmod 0755 "$S/old/nginx" "$S/new/nginx"
mkdir -p /var/log/nginx /var/lib/nginx/body /var/lib/nginx/proxy /var/lib/nginx/fastcgi \
	/var/lib/nginx/uwsgi /var/lib/nginx/scgi /run /etc/nginx /srv/www/slow
rm -rf /etc/nginx/sites-enabled/*
id -u www-data >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/www --shell /usr/sbin/nologin www-data
command -v ps >/dev/null
rm -rf /etc/apt/nginx-upgrade-harness /var/lib/apt/nginx-upgrade-harness
rm -f /usr/sbin/policy-rc.d`

	// compileScript builds /tmp/src.tar.gz with the configure flags given as
	// arguments.
	compileScript = `set -eu
rm -rf /tmp/build
mkdir -p /tmp/build
cd /tmp/build
tar -xzf /tmp/src.tar.gz --strip-components=1
./configure "$@"
make -j2`
)

// parseMadison returns the versions in `apt-cache madison` output, oldest
// first as apt lists them newest first.
func parseMadison(out string) []string {
	var vs []string
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != "nginx" || !strings.Contains(f[2], "Packages") {
			continue
		}
		v := strings.TrimSpace(f[1])
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
		vs[i], vs[j] = vs[j], vs[i]
	}
	return vs
}

// debianPackages returns the package set that yields nginx at version:
// nginx itself and every package it pins to its own version (nginx-common in
// bookworm, where the executable lives in nginx and nginx-core is only a
// transitional package).
func debianPackages(ctx context.Context, box *buildBox, env []string, version string) ([]string, error) {
	out, err := box.run(ctx, "apt-cache show nginx="+version, env, "apt-cache", "show", "nginx="+version)
	if err != nil {
		return nil, err
	}
	return packagesPinnedTo(out, version), nil
}

func packagesPinnedTo(show, version string) []string {
	pkgs := []string{"nginx=" + version}
	seen := map[string]bool{"nginx": true}
	for _, line := range strings.Split(show, "\n") {
		if line == "" {
			break // first stanza only
		}
		if !strings.HasPrefix(line, "Depends:") && !strings.HasPrefix(line, "Pre-Depends:") {
			continue
		}
		_, deps, _ := strings.Cut(line, ":")
		for _, alt := range strings.Split(deps, ",") {
			for _, d := range strings.Split(alt, "|") {
				name, constraint, _ := strings.Cut(strings.TrimSpace(d), " ")
				name, _, _ = strings.Cut(name, ":") // an architecture qualifier
				c := strings.Trim(strings.TrimSpace(constraint), "()")
				_, v, _ := strings.Cut(c, " ")
				v = strings.TrimSpace(v)
				if (strings.HasPrefix(c, ">=") || strings.HasPrefix(c, "=")) && v == version && !seen[name] {
					seen[name] = true
					pkgs = append(pkgs, name+"="+version)
				}
			}
		}
	}
	return pkgs
}

// checkInstalled verifies that /usr/sbin/nginx belongs to a package at version.
func checkInstalled(ctx context.Context, box *buildBox, version string) error {
	out, err := box.run(ctx, "dpkg -S /usr/sbin/nginx", nil, "dpkg-query", "-S", "/usr/sbin/nginx")
	if err != nil {
		return err
	}
	owner, _, _ := strings.Cut(strings.TrimSpace(out), ":")
	got, err := box.run(ctx, "dpkg-query "+owner, nil, "dpkg-query", "-W", "-f=${Version}", owner)
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != version {
		return fmt.Errorf("/usr/sbin/nginx comes from %s %s, not %s", owner, strings.TrimSpace(got), version)
	}
	return nil
}

var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive"}

// ---- base and builder images ----

// ensureBase returns the base image of release (BaseImage for the
// configured one), building it when absent: a root of that release (the
// local debian:RELEASE image, else debootstrap on the host from the
// configured mirror) with Debian apt sources (the host's own for the
// configured release, the same mirrors' suites of that release otherwise),
// procps, CA certificates and the run-time libraries of nginx.
func ensureBase(ctx context.Context, pool *dockertest.Pool, release string, progress io.Writer) (string, error) {
	image := baseImageFor(release)
	if imagePresent(pool, image) {
		return image, nil
	}
	sources, err := releaseSourceFiles(release)
	if err != nil {
		return "", err
	}
	start := time.Now()
	root := "debian:" + release
	if imagePresent(pool, root) {
		fmt.Fprintf(progress, "building base image %s from local %s…\n", image, root)
	} else {
		fmt.Fprintf(progress, "building base image %s (debootstrap %s)…\n", image, release)
		rootfs := rootfsRepo + ":" + release
		if err := debootstrapImport(ctx, pool, release, rootfs, progress); err != nil {
			return "", err
		}
		root = rootfs
		// The base keeps the layers; the intermediate tag is not needed.
		defer harness.Bounded(context.Background(), harness.CallTimeout, func() error {
			return pool.Client.RemoveImageExtended(rootfs, dc.RemoveImageOptions{NoPrune: true})
		})
	}
	box, err := createBox(ctx, pool, root, true)
	if err != nil {
		return "", err
	}
	defer box.remove()
	if _, err := box.script(ctx, "clear apt sources", nil, `set -eu
rm -f /etc/apt/sources.list
find /etc/apt/sources.list.d -mindepth 1 -delete
printf '#!/bin/sh\n# nginx-upgrade-harness: packages never start services in an image\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d`); err != nil {
		return "", err
	}
	var entries []tarEntry
	for _, s := range sources {
		entries = append(entries, tarEntry{name: "sources.list.d/" + s.name, mode: 0o644, data: s.data})
	}
	if err := box.upload(ctx, "/etc/apt", entries); err != nil {
		return "", fmt.Errorf("copy apt sources in: %w", err)
	}
	fmt.Fprintf(progress, "installing procps ca-certificates and nginx's run-time libraries in the base image…\n")
	if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
		return "", err
	}
	// libssl3 is virtual from trixie on (libssl3t64 provides it): apt
	// picks its only provider.
	if _, err := box.run(ctx, "apt-get install", aptEnv, "apt-get", "install", "-y", "--no-install-recommends",
		"procps", "ca-certificates", "libssl3", "libpcre2-8-0", "zlib1g", "libcrypt1"); err != nil {
		return "", err
	}
	if _, err := box.run(ctx, "apt-get clean", nil, "apt-get", "clean"); err != nil {
		return "", err
	}
	repo, tag, _ := strings.Cut(image, ":")
	if err := box.commit(ctx, repo, tag, map[string]string{harness.Label: "1"}); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "base image %s ready (%s)\n", image, since(start))
	return image, nil
}

// debootstrapImport makes a minbase root of release on the host, from the
// configured mirror, and imports it as ref.
func debootstrapImport(ctx context.Context, pool *dockertest.Pool, release, ref string, progress io.Writer) error {
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		return fmt.Errorf("debootstrap not found on this host (needed for the %s base image): run `make deps` (apt-get install -y debootstrap)", release)
	}
	mirror, err := hostDebianMirror()
	if err != nil {
		return err
	}
	tmpBase := "/var/tmp"
	if fi, err := os.Stat(tmpBase); err != nil || !fi.IsDir() {
		tmpBase = ""
	}
	tmp, err := os.MkdirTemp(tmpBase, "nginx-upgrade-harness-rootfs-")
	if err != nil {
		return fmt.Errorf("debootstrap: %s", harness.OneLine(err.Error()))
	}
	defer removeRoot(tmp)
	dir := filepath.Join(tmp, "root")
	var out tailBuffer
	cmd := exec.CommandContext(ctx, bin, "--variant=minbase", release, dir, mirror)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("debootstrap %s: %w", release, ctx.Err())
		}
		return fmt.Errorf("debootstrap --variant=minbase %s %s: %s: %s", release, mirror, harness.OneLine(err.Error()), out.Tail(5))
	}
	fmt.Fprintf(progress, "importing the %s root file system…\n", release)
	tarCmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", dir, "-cf", "-", ".")
	var tarErr tailBuffer
	tarCmd.Stderr = &tarErr
	stream, err := tarCmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("import root file system: %s", harness.OneLine(err.Error()))
	}
	if err := tarCmd.Start(); err != nil {
		return fmt.Errorf("import root file system: tar: %s", harness.OneLine(err.Error()))
	}
	repo, tag, _ := strings.Cut(ref, ":")
	ictx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	importErr := pool.Client.ImportImage(dc.ImportImageOptions{Repository: repo, Tag: tag, Source: "-",
		InputStream: stream, OutputStream: io.Discard, Context: ictx})
	cancel()
	if importErr != nil {
		io.Copy(io.Discard, stream)
	}
	waitErr := tarCmd.Wait()
	if importErr != nil {
		return fmt.Errorf("import root file system: %s", harness.OneLine(importErr.Error()))
	}
	if waitErr != nil {
		return fmt.Errorf("import root file system: tar: %s: %s", harness.OneLine(waitErr.Error()), tarErr.Tail(5))
	}
	return nil
}

// removeRoot removes a debootstrap directory, detaching first whatever a
// failed debootstrap left mounted inside it (proc, sys): RemoveAll must not
// descend into a live /proc.
func removeRoot(dir string) {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(mi), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
		for _, m := range mounts {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	os.RemoveAll(dir)
}

// ensureBuilder returns BuilderImage (the base plus a C tool chain and the
// headers nginx builds against), building it when absent.
func ensureBuilder(ctx context.Context, pool *dockertest.Pool, progress io.Writer) (string, error) {
	if imagePresent(pool, BuilderImage) {
		return BuilderImage, nil
	}
	if _, err := ensureBase(ctx, pool, suite, progress); err != nil {
		return "", err
	}
	start := time.Now()
	fmt.Fprintf(progress, "building builder image (build-essential libpcre2-dev zlib1g-dev libssl-dev)…\n")
	box, err := createBox(ctx, pool, BaseImage, true)
	if err != nil {
		return "", err
	}
	defer box.remove()
	if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
		return "", err
	}
	if _, err := box.run(ctx, "apt-get install", aptEnv, "apt-get", "install", "-y", "--no-install-recommends",
		"build-essential", "libpcre2-dev", "zlib1g-dev", "libssl-dev"); err != nil {
		return "", err
	}
	if _, err := box.run(ctx, "apt-get clean", nil, "apt-get", "clean"); err != nil {
		return "", err
	}
	repo, tag, _ := strings.Cut(BuilderImage, ":")
	if err := box.commit(ctx, repo, tag, map[string]string{harness.Label: "1"}); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "builder image %s ready (%s)\n", BuilderImage, since(start))
	return BuilderImage, nil
}

// ---- binaries that do not come from apt ----

// compileSources compiles each source build in one builder container.
func compileSources(ctx context.Context, pool *dockertest.Pool, builds []Build, progress io.Writer) (map[string]*binaryArtifact, error) {
	// Fetch first: a tarball that is not served is reported before any build.
	tarballs := map[string][]byte{}
	for _, b := range builds {
		p, err := sourceTarball(ctx, b, progress)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
		}
		tarballs[b.Spec] = data
	}
	if _, err := ensureBuilder(ctx, pool, progress); err != nil {
		return nil, err
	}
	box, err := createBox(ctx, pool, BuilderImage, true)
	if err != nil {
		return nil, err
	}
	defer box.remove()
	out := map[string]*binaryArtifact{}
	for _, b := range builds {
		start := time.Now()
		fmt.Fprintf(progress, "compiling %s…\n", b.Spec)
		if err := box.upload(ctx, "/tmp", []tarEntry{{name: "src.tar.gz", mode: 0o644, data: tarballs[b.Spec]}}); err != nil {
			return nil, fmt.Errorf("%s: copy tarball in: %w", b.Spec, err)
		}
		args := append(append([]string(nil), sourceConfigureFlags...), strings.Fields(b.Flags)...)
		if _, err := box.script(ctx, "configure && make", nil, compileScript, args...); err != nil {
			return nil, fmt.Errorf("%s: %w", b.Spec, err)
		}
		exe, _, err := box.readFile(ctx, "/tmp/build/objs/nginx")
		if err != nil {
			return nil, fmt.Errorf("%s: read the compiled binary: %w", b.Spec, err)
		}
		conf, err := box.readTree(ctx, "/tmp/build/conf", "nginx")
		if err != nil {
			return nil, fmt.Errorf("%s: read conf/: %w", b.Spec, err)
		}
		out[b.Spec] = &binaryArtifact{exe: exe, conf: conf}
		fmt.Fprintf(progress, "compiled %s (%s)\n", b.Spec, since(start))
	}
	return out, nil
}

// sourceTarball returns a local path of the build's upstream tarball,
// downloading it from the Debian pool of the configured mirror into the
// user's cache when needed.
func sourceTarball(ctx context.Context, b Build, progress io.Writer) (string, error) {
	if b.Path != "" {
		return b.Path, nil
	}
	name := "nginx_" + b.Version + ".orig.tar.gz"
	dir, err := cacheDir()
	if err != nil {
		return "", fmt.Errorf("%s: %w", b.Spec, err)
	}
	cached := filepath.Join(dir, name)
	if fi, err := os.Stat(cached); err == nil && fi.Size() > 0 {
		return cached, nil
	}
	mirror, err := hostDebianMirror()
	if err != nil {
		return "", fmt.Errorf("%s: %w", b.Spec, err)
	}
	url := strings.TrimRight(mirror, "/") + "/pool/main/n/nginx/" + name
	fmt.Fprintf(progress, "downloading %s…\n", url)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: fetch %s: %s", b.Spec, url, harness.OneLine(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: tarball not served by %s (%d)", b.Spec, url, resp.StatusCode)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
	}
	f, err := os.CreateTemp(dir, name+".part-*")
	if err != nil {
		return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: fetch %s: %s", b.Spec, url, harness.OneLine(err.Error()))
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
	}
	if err := os.Rename(f.Name(), cached); err != nil {
		return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
	}
	return cached, nil
}

func cacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "nginx-upgrade-harness"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set XDG_CACHE_HOME or HOME")
	}
	return filepath.Join(home, ".cache", "nginx-upgrade-harness"), nil
}

// binaryFromImage copies /usr/sbin/nginx out of a local image (following a
// symbolic link or two).
func binaryFromImage(ctx context.Context, pool *dockertest.Pool, b Build) ([]byte, error) {
	if _, err := inspectImage(ctx, pool, b.Ref); err != nil {
		return nil, imageMissing(b, err)
	}
	box, err := createBox(ctx, pool, b.Ref, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Spec, err)
	}
	defer box.remove()
	p := harness.DefaultBinary
	for hop := 0; hop < 8; hop++ {
		data, link, err := box.readFile(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Spec, err)
		}
		if link == "" {
			return data, nil
		}
		if !path.IsAbs(link) {
			link = path.Join(path.Dir(p), link)
		}
		p = link
	}
	return nil, fmt.Errorf("%s: %s: too many symbolic links", b.Spec, harness.DefaultBinary)
}

// ---- host apt sources ----

type sourceFile struct {
	name string
	data []byte
}

// hostDebianSources returns the host's Debian apt sources, for the images:
// the entries signed by the Debian archive keyring or naming a bookworm
// suite, from /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}.
// Third-party repositories configured on the host stay out of the images.
func hostDebianSources() ([]sourceFile, error) {
	var out []sourceFile
	var lists []string
	lists = append(lists, "/etc/apt/sources.list")
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append(lists, more...)
	var listLines []string
	for _, p := range lists {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		listLines = append(listLines, debianListLines(string(data))...)
	}
	if len(listLines) > 0 {
		out = append(out, sourceFile{name: "harness-debian.list", data: []byte(strings.Join(listLines, "\n") + "\n")})
	}
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	var stanzas []string
	for _, p := range deb822 {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		stanzas = append(stanzas, debianStanzas(string(data))...)
	}
	if len(stanzas) > 0 {
		out = append(out, sourceFile{name: "harness-debian.sources", data: []byte(strings.Join(stanzas, "\n\n") + "\n")})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Debian %s apt sources configured on this host (/etc/apt/sources.list, /etc/apt/sources.list.d/): the images take their package mirror from there", suite)
	}
	return out, nil
}

func isDebianEntry(suites []string, signedBy string) bool {
	if strings.Contains(signedBy, "debian-archive-keyring") {
		return true
	}
	for _, s := range suites {
		if s == suite || strings.HasPrefix(s, suite+"-") || strings.HasPrefix(s, suite+"/") {
			return true
		}
	}
	return false
}

// debianListLines keeps the one-line-style "deb" entries that are Debian's.
func debianListLines(data string) []string {
	var keep []string
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "deb ") && !strings.HasPrefix(line, "deb\t") {
			continue
		}
		f := strings.Fields(line)[1:]
		signedBy := ""
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			var opts []string
			for len(f) > 0 {
				opts = append(opts, f[0])
				done := strings.HasSuffix(f[0], "]")
				f = f[1:]
				if done {
					break
				}
			}
			signedBy = strings.Join(opts, " ")
		}
		if len(f) < 2 {
			continue
		}
		if isDebianEntry([]string{f[1]}, signedBy) {
			keep = append(keep, line)
		}
	}
	return keep
}

// debianStanzas keeps the deb822 stanzas of type deb that are Debian's.
func debianStanzas(data string) []string {
	var keep []string
	for _, stanza := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n\n") {
		fields := deb822Fields(stanza)
		if fields["enabled"] == "no" || !strings.Contains(" "+fields["types"]+" ", " deb ") {
			continue
		}
		if isDebianEntry(strings.Fields(fields["suites"]), fields["signed-by"]) {
			keep = append(keep, strings.TrimSpace(stanza))
		}
	}
	return keep
}

func deb822Fields(stanza string) map[string]string {
	m := map[string]string{}
	last := ""
	for _, line := range strings.Split(stanza, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				m[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		m[last] = strings.TrimSpace(v)
	}
	return m
}

// hostDebianMirror returns the URI of the configured main archive (the
// entry serving the bare suite, not -security or -updates).
func hostDebianMirror() (string, error) {
	files, err := hostDebianSources()
	if err != nil {
		return "", err
	}
	var fallback string
	for _, f := range files {
		if strings.HasSuffix(f.name, ".sources") {
			for _, st := range strings.Split(string(f.data), "\n\n") {
				fields := deb822Fields(st)
				uris := strings.Fields(fields["uris"])
				if len(uris) == 0 {
					continue
				}
				if fallback == "" {
					fallback = uris[0]
				}
				for _, s := range strings.Fields(fields["suites"]) {
					if s == suite {
						return uris[0], nil
					}
				}
			}
			continue
		}
		for _, line := range strings.Split(string(f.data), "\n") {
			fl := strings.Fields(line)
			for len(fl) > 1 && (fl[0] == "deb" || strings.HasPrefix(fl[0], "[") || strings.HasSuffix(fl[0], "]") || strings.Contains(fl[0], "=")) {
				fl = fl[1:]
			}
			if len(fl) < 2 {
				continue
			}
			if fallback == "" {
				fallback = fl[0]
			}
			if fl[1] == suite {
				return fl[0], nil
			}
		}
	}
	if fallback == "" {
		return "", fmt.Errorf("no Debian mirror URI in the host's apt sources")
	}
	return fallback, nil
}

// ---- build containers ----

// buildBox is a short-lived, labelled container that a build runs commands
// in; remove it when done, on every path.
type buildBox struct {
	pool *dockertest.Pool
	id   string
}

// createBox creates (and if start, starts) a labelled container from image.
func createBox(ctx context.Context, pool *dockertest.Pool, image string, start bool) (*buildBox, error) {
	cctx, cancel := context.WithTimeout(ctx, harness.CallTimeout)
	defer cancel()
	c, err := pool.Client.CreateContainer(dc.CreateContainerOptions{
		Context: cctx,
		Name:    buildBoxPrefix() + boxSuffix(),
		Config: &dc.Config{
			Image:      image,
			Entrypoint: []string{},
			Cmd:        []string{"sleep", "infinity"},
			Env:        []string{"PATH=" + containerPath},
			Labels:     harness.OwnerLabels(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create build container from %s: %s", image, harness.OneLine(err.Error()))
	}
	b := &buildBox{pool: pool, id: c.ID}
	if start {
		if err := pool.Client.StartContainerWithContext(c.ID, nil, cctx); err != nil {
			b.remove()
			return nil, fmt.Errorf("start build container from %s: %s", image, harness.OneLine(err.Error()))
		}
	}
	return b, nil
}

// buildBoxPrefix starts the name of every build container this process
// creates: a sweep by name finds this process's build containers and no one
// else's (the harness label alone also matches the nodes of other runs).
func buildBoxPrefix() string { return fmt.Sprintf("nginx-upgrade-harness-build-%d-", os.Getpid()) }

func boxSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// remove force-removes the container; it runs on every path out of a build,
// so it does not use the (possibly cancelled) build context.
func (b *buildBox) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), harness.CloseTimeout)
	defer cancel()
	harness.RemoveContainer(ctx, b.pool, b.id)
}

// run executes argv in the container and returns its combined output; a
// non-zero exit is an error naming what and the tail of the output.
func (b *buildBox) run(ctx context.Context, what string, env []string, argv ...string) (string, error) {
	var out tailBuffer
	sctx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	exit, err := harness.ExecIn(sctx, b.pool.Client, b.id, env, nil, &out, &out, argv...)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: %w", what, ctx.Err())
		}
		return "", fmt.Errorf("%s: %s", what, harness.OneLine(harness.CallErr(ctx, harness.BuildStepTimeout, err).Error()))
	}
	if exit != 0 {
		return out.String(), fmt.Errorf("%s: exit status %d: %s", what, exit, out.Tail(5))
	}
	return out.String(), nil
}

// script runs a constant shell script; args become its positional parameters.
func (b *buildBox) script(ctx context.Context, what string, env []string, script string, args ...string) (string, error) {
	return b.run(ctx, what, append(append([]string(nil), aptEnv...), env...), append([]string{"sh", "-c", script, "sh"}, args...)...)
}

type tarEntry struct {
	name string
	mode int64
	data []byte
	dir  bool
	link string
}

func (b *buildBox) upload(ctx context.Context, dir string, entries []tarEntry) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), ModTime: now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, e.link
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	defer cancel()
	if err := b.pool.Client.UploadToContainer(b.id, dc.UploadToContainerOptions{InputStream: &buf, Path: dir, Context: ctx}); err != nil {
		return errors.New(harness.OneLine(err.Error()))
	}
	return nil
}

// readFile returns the content of the file at p, or the target of the
// symbolic link at p.
func (b *buildBox) readFile(ctx context.Context, p string) (data []byte, link string, err error) {
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	defer cancel()
	if err := b.pool.Client.DownloadFromContainer(b.id, dc.DownloadFromContainerOptions{OutputStream: &buf, Path: p, Context: ctx}); err != nil {
		return nil, "", fmt.Errorf("%s: %s", p, harness.OneLine(err.Error()))
	}
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil {
		return nil, "", fmt.Errorf("%s: %s", p, harness.OneLine(err.Error()))
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		return nil, h.Linkname, nil
	case tar.TypeReg:
		data, err := io.ReadAll(tr)
		return data, "", err
	}
	return nil, "", fmt.Errorf("%s: not a regular file", p)
}

// readTree returns the regular files and directories under dir, renamed to
// lie under prefix.
func (b *buildBox) readTree(ctx context.Context, dir, prefix string) ([]tarEntry, error) {
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	defer cancel()
	if err := b.pool.Client.DownloadFromContainer(b.id, dc.DownloadFromContainerOptions{OutputStream: &buf, Path: dir, Context: ctx}); err != nil {
		return nil, errors.New(harness.OneLine(err.Error()))
	}
	var out []tarEntry
	tr := tar.NewReader(&buf)
	base := path.Base(dir)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(h.Name, base), "/")
		name := path.Join(prefix, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			out = append(out, tarEntry{name: name, mode: 0o755, dir: true})
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			out = append(out, tarEntry{name: name, mode: 0o644, data: data})
		}
	}
}

// commit saves the container as repo:tag with the harness's default command
// and the given labels.
func (b *buildBox) commit(ctx context.Context, repo, tag string, labels map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	defer cancel()
	_, err := b.pool.Client.CommitContainer(dc.CommitContainerOptions{
		Container: b.id, Repository: repo, Tag: tag, Context: ctx,
		Run: &dc.Config{
			Cmd:    []string{"sleep", "infinity"},
			Env:    []string{"PATH=" + containerPath},
			Labels: labels,
		},
	})
	if err != nil {
		return fmt.Errorf("commit %s:%s: %s", repo, tag, harness.OneLine(err.Error()))
	}
	return nil
}

func imagePresent(pool *dockertest.Pool, ref string) bool {
	_, err := inspectImage(context.Background(), pool, ref)
	return err == nil
}

// ---- small helpers ----

// siteEntries is the content served by the default configuration: a small
// page and a 4 MiB file with deterministic content for long downloads.
func siteEntries() []tarEntry {
	page := `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nginx-upgrade-harness</title>
</head>
<body>
<h1>nginx-upgrade-harness</h1>
<p>This page is served by the nginx under test while the harness upgrades its
binary in place (USR2, WINCH, QUIT) under load. Every request for it is
counted: a request that fails, or a connection the server closes under a
request, is a dropped request.</p>
<p>Long downloads of <a href="/slow/big.bin">/slow/big.bin</a> (4 MiB) span the
transitions, so that a worker that exits too early cuts them short.</p>
</body>
</html>
`
	return []tarEntry{
		{name: "srv/www", mode: 0o755, dir: true},
		{name: "srv/www/slow", mode: 0o755, dir: true},
		{name: "srv/www/index.html", mode: 0o644, data: []byte(page)},
		{name: "srv/www/slow/big.bin", mode: 0o644, data: bigFile()},
	}
}

// bigFile is sha256("nginx-upgrade-harness big.bin <n>") for n = 0, 1, …
// concatenated: deterministic, and not compressible.
func bigFile() []byte {
	out := make([]byte, 0, bigFileSize)
	for n := 0; len(out) < bigFileSize; n++ {
		s := sha256.Sum256([]byte(fmt.Sprintf("nginx-upgrade-harness big.bin %d", n)))
		out = append(out, s[:]...)
	}
	return out[:bigFileSize]
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReader(f)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// tailBuffer collects a command's output; Tail gives its last lines on one line.
type tailBuffer struct{ bytes.Buffer }

func (t *tailBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimSpace(t.String()), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	if len(keep) == 0 {
		return "(no output)"
	}
	return strings.Join(keep, " | ")
}

// inspectImage is InspectImage (which takes no context) under a deadline.
func inspectImage(ctx context.Context, pool *dockertest.Pool, ref string) (*dc.Image, error) {
	var img *dc.Image
	err := harness.Bounded(ctx, harness.CallTimeout, func() error {
		var err error
		img, err = pool.Client.InspectImage(ref)
		return err
	})
	return img, err
}
