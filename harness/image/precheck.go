package image

import (
	"fmt"
	"strings"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

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
		if strings.Contains(img.Labels[labelBuilds], fmt.Sprintf("%q:%q", "from", from.Exact())) {
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
