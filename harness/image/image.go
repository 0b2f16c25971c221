package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

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
	recipeVersion = "pair-recipe-3"

	labelBuilds = harness.Label + ".builds" // builds.json, so that a cached pair is read without a container
	labelKey    = harness.Label + ".key"

	rootfsRepo    = "nginx-upgrade-harness/rootfs" // tagged with the release, while a base is built
	suite         = "bookworm"                     // the configured release: the host's suites
	bigFileSize   = 32 << 20
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
// 32 MiB slow/big.bin), and `sleep infinity` as the default command.
func EnsureImage(ctx context.Context, pool *dockertest.Pool, from, to Build, progress io.Writer) (ImageInfo, error) {
	if progress == nil {
		progress = io.Discard
	}
	if from.Res == nil || to.Res == nil {
		r, err := NewResolver(WithProgress(progress))
		if err != nil {
			return ImageInfo{}, err
		}
		if err := r.Resolve(ctx, &from, &to); err != nil {
			return ImageInfo{}, err
		}
	}
	key, err := cacheKey(pool, from, to)
	if err != nil {
		return ImageInfo{}, err
	}
	ref := PairRepo + ":" + key[:16]
	cached := func() (ImageInfo, bool, error) {
		img, err := inspectImage(ctx, pool, ref)
		if err != nil {
			return ImageInfo{}, false, nil
		}
		info, err := readInfo(ctx, pool, ref, img)
		info.From, info.To = from, to
		return info, true, err
	}
	if info, ok, err := cached(); ok {
		return info, err
	}
	unlock, err := lockBuilds(ctx, pool.Client.Endpoint(), progress)
	if err != nil {
		return ImageInfo{}, err
	}
	defer unlock()
	if info, ok, err := cached(); ok { // built by whoever held the lock
		return info, err
	}
	start := time.Now()
	fmt.Fprintf(progress, "building pair image %s (%s → %s)…\n", ref, from.Exact(), to.Exact())
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
		switch {
		case b.Kind == KindDebian || b.Kind == KindSource:
			// What the spec resolved to, never the spec: debian:bookworm
			// names another version once the suite moves on.
			if b.Res == nil {
				return "", fmt.Errorf("%s: not resolved", b.Spec)
			}
			fmt.Fprintf(h, "%s %s %s\x00", b.Kind, b.Res.Version, b.Flags)
			for _, d := range b.Res.Debs {
				fmt.Fprintf(h, "deb %s\x00", d.SHA256)
			}
			fmt.Fprintf(h, "sha256 %s\x00", b.Res.SHA256)
		case b.Path != "":
			fmt.Fprintf(h, "%s\x00", b.Spec)
			sum, err := fileSHA256(b.Path)
			if err != nil {
				return "", fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
			}
			fmt.Fprintf(h, "file %s\x00", sum)
		case b.Kind == KindImage:
			fmt.Fprintf(h, "%s\x00", b.Spec)
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

	// The pair is built on the root of the newer release of its Debian
	// builds (the older binary runs there with the newer libraries).
	root := suite
	for _, b := range []Build{from, to} {
		if b.Kind == KindDebian && releaseRank[b.Res.Release] > releaseRank[root] {
			root = b.Res.Release
		}
	}
	if root != suite {
		fmt.Fprintf(progress, "building the pair on a %s root (the newer release of the pair)…\n", root)
		if _, err := ensureBase(ctx, pool, root, progress); err != nil {
			return ImageInfo{}, err
		}
	}
	box, err := createBox(ctx, pool, baseImageFor(root), true)
	if err != nil {
		return ImageInfo{}, err
	}
	defer box.remove()
	if _, err := box.script(ctx, "prepare directories", nil, `set -eu
mkdir -p /opt/nginx-upgrade-harness/old /opt/nginx-upgrade-harness/new`); err != nil {
		return ImageInfo{}, err
	}

	// The old build: installed at /usr/sbin/nginx, and copied to the stage.
	// Its .debs come from its own suite; apt installs them with the
	// dependencies the root's suites offer.
	if from.Kind == KindDebian {
		fmt.Fprintf(progress, "installing %s (old build)…\n", from.Exact())
		if err := uploadDebs(ctx, box, from, harness.StageDir+"/old/debs"); err != nil {
			return ImageInfo{}, err
		}
		env := []string{"DEBS=" + harness.StageDir + "/old/debs", "TARGET=" + harness.OldBinaryStage}
		if _, err := box.script(ctx, "install "+from.Exact(), append(env, aptEnv...), installOldScript); err != nil {
			return ImageInfo{}, fmt.Errorf("%s: %w", from.Spec, err)
		}
		if err := checkInstalled(ctx, box, from.Res.Version); err != nil {
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
		fmt.Fprintf(progress, "staging %s (new build)…\n", to.Exact())
		if err := uploadDebs(ctx, box, to, harness.StageDir+"/new/debs"); err != nil {
			return ImageInfo{}, err
		}
		env := []string{"DEBS=" + harness.StageDir + "/new/debs", "TARGET=" + harness.NewBinaryStage}
		if _, err := box.script(ctx, "stage "+to.Exact(), env, stageNewScript); err != nil {
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

	bj := harness.BuildsInfo{From: from.Exact(), To: to.Exact()}
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

// uploadDebs copies a resolved Debian build's package files from the cache
// into dir in the box.
func uploadDebs(ctx context.Context, box *buildBox, b Build, dir string) error {
	files, err := DebFiles(b)
	if err != nil {
		return err
	}
	entries := []tarEntry{{name: strings.TrimPrefix(dir, "/"), mode: 0o755, dir: true}}
	for name, data := range files {
		entries = append(entries, tarEntry{name: strings.TrimPrefix(dir, "/") + "/" + name, mode: 0o644, data: data})
	}
	if err := box.upload(ctx, "/", entries); err != nil {
		return fmt.Errorf("%s: copy packages in: %w", b.Spec, err)
	}
	return nil
}
