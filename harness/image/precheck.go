package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// PrecheckPair finds, in seconds, what would otherwise fail only after
// minutes of image building: a Debian version the mirror does not serve, an
// upstream tarball it does not serve.
// It does nothing when the pair's image is already cached. For each
// debian: build it asks every Debian archive the host's apt sources name
// (HEAD of nginx_VERSION_ARCH.deb in the archive's pool, and in the security
// archive's pool/updates) — a version none of them has is an error; an
// archive that cannot be reached leaves the answer to the build, which
// looks again with apt.
func PrecheckPair(ctx context.Context, pool *dockertest.Pool, from, to Build) error {
	if PairCached(pool, from, to) {
		return nil
	}
	entries, err := hostAptEntries()
	if err != nil || len(entries) == 0 {
		return nil
	}
	var uris []string
	for _, e := range entries {
		if !hasString(uris, e.uri) {
			uris = append(uris, strings.TrimRight(e.uri, "/"))
		}
	}
	for _, b := range []Build{from, to} {
		if b.Kind == KindSource {
			// The tarball is fetched now, into the cache the build reads:
			// one that is not served is known in a second.
			if _, err := sourceTarball(ctx, b, io.Discard); err != nil && strings.Contains(err.Error(), "tarball not served") {
				return err
			}
			continue
		}
		if b.Kind != KindDebian {
			continue
		}
		found, conclusive := debianServes(ctx, uris, b.Version)
		if !found && conclusive {
			return fmt.Errorf("%s: no nginx %s in the Debian archives the host's apt sources name (%s), in any suite",
				b.Spec, b.Version, strings.Join(uris, ", "))
		}
	}
	return nil
}

// debianServes asks each archive for the nginx package at version; found
// when one has it, conclusive when every archive answered (200 or 404).
func debianServes(ctx context.Context, uris []string, version string) (found, conclusive bool) {
	arch := runtime.GOARCH
	file := fmt.Sprintf("nginx_%s_%s.deb", version, arch)
	client := &http.Client{Timeout: 5 * time.Second}
	conclusive = true
	for _, u := range uris {
		for _, dir := range []string{"/pool/main/n/nginx/", "/pool/updates/main/n/nginx/"} {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			req, err := http.NewRequestWithContext(cctx, http.MethodHead, u+dir+file, nil)
			if err != nil {
				cancel()
				conclusive = false
				continue
			}
			resp, err := client.Do(req)
			cancel()
			if err != nil {
				conclusive = false
				continue
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return true, true
			case http.StatusNotFound:
			default:
				conclusive = false
			}
		}
	}
	return false, conclusive
}

// CachedPairWithOld is a cached pair image whose old binary is from's, or ""
// if none is: the configuration can be tried with that binary's nginx -t
// before any image is built.
func CachedPairWithOld(pool *dockertest.Pool, from Build) string {
	imgs, err := pool.Client.ListImages(dc.ListImagesOptions{Filters: map[string][]string{"label": {labelBuilds}}})
	if err != nil {
		return ""
	}
	for _, img := range imgs {
		if len(img.RepoTags) == 0 {
			continue
		}
		if strings.Contains(img.Labels[labelBuilds], fmt.Sprintf("%q:%q", "from", from.Spec)) {
			return img.RepoTags[0]
		}
	}
	return ""
}

// PairCached says whether the image of the pair from → to is in the cache
// (then nothing needs building, and nothing needs checking early).
func PairCached(pool *dockertest.Pool, from, to Build) bool {
	key, err := cacheKey(pool, from, to)
	return err == nil && imagePresent(pool, PairRepo+":"+key[:16])
}
