package image

// The base images: a root the tool bootstraps from the archive's packages
// (rootfs.go), or a local debian image.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// ensureBase returns the base image of release (BaseImage for the
// configured one), building it when absent: a root of that release (the
// local debian:RELEASE image, else one the tool bootstraps from the
// configured archive's packages) with Debian apt sources (the host's own for the
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
		fmt.Fprintf(progress, "building base image %s (a %s root from the archive's packages)…\n", image, release)
		rootfs := rootfsRepo + ":" + release
		if err := rootfsImport(ctx, pool, release, rootfs, progress); err != nil {
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

// CheckArchive says in one line when no Debian archive is named
// (--archive, NUH_ARCHIVE or a Debian host's apt sources), or wrongly.
func CheckArchive() error {
	_, err := hostDebianSources()
	return err
}
