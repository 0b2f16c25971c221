package image

// The base images: a debootstrap root imported into Docker, or a local debian image.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

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
	fmt.Fprintf(progress, "installing procps ca-certificates iproute2 and nginx's run-time libraries in the base image…\n")
	if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
		return "", err
	}
	// libssl3 is virtual from trixie on (libssl3t64 provides it): apt
	// picks its only provider. With iproute2 (which nginx depends on) every
	// dependency of nginx's packages is in the base, so that a pair is
	// built from the cached package files without reading the archive.
	if _, err := box.run(ctx, "apt-get install", aptEnv, "apt-get", "install", "-y", "--no-install-recommends",
		"procps", "ca-certificates", "libssl3", "libpcre2-8-0", "zlib1g", "libcrypt1", "iproute2"); err != nil {
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
	importAs := harness.ImportName(repo)
	importErr := pool.Client.ImportImage(dc.ImportImageOptions{Repository: importAs, Tag: tag, Source: "-",
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
	return harness.Imported(ctx, pool, importAs, repo, tag)
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

// CheckArchive says in one line when no Debian archive is named
// (--archive, NUH_ARCHIVE or a Debian host's apt sources), or wrongly.
func CheckArchive() error {
	_, err := hostDebianSources()
	return err
}

// CheckNeeds says in one line what a run on pool's engine would miss
// before it builds anything: debootstrap on the host when the engine has
// neither the base image nor a local debian:bookworm to make it from.
func CheckNeeds(pool *dockertest.Pool) error {
	if imagePresent(pool, BaseImage) || imagePresent(pool, "debian:"+suite) {
		return nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap not found on this host: the engine has no %s nor debian:%s to build it from; install debootstrap (apt-get install debootstrap, or `make deps`) or load debian:%s into the engine", BaseImage, suite, suite)
	}
	return nil
}
