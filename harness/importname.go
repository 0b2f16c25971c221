package harness

import (
	"context"
	"fmt"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Engines differ in what an image import is named: Docker honours the
// tag asked for, Podman's Docker-compatible API (4.3) ignores it and names
// the image REPO:latest. So an import is asked for a name of its own
// (ImportName) and then renamed to the name wanted (Imported): the same
// on every engine, and two imports into one repository at once cannot
// take each other's name.

// ImportName is a name of its own for importing into repo.
func ImportName(repo string) string { return repo + "-import-" + randomHex(4) }

// Imported names the image an import into tmp made repo:tag, and removes
// the import's own name (never the image: it now has the name wanted).
func Imported(ctx context.Context, pool *dockertest.Pool, tmp, repo, tag string) error {
	src, err := ImportedAs(ctx, pool, tmp, tag)
	if err != nil {
		return fmt.Errorf("import %s:%s: %w", repo, tag, err)
	}
	if err := Bounded(ctx, CallTimeout, func() error {
		return pool.Client.TagImage(src, dc.TagImageOptions{Repo: repo, Tag: tag, Force: true, Context: ctx})
	}); err != nil {
		return fmt.Errorf("import %s:%s: tag %s: %s", repo, tag, src, OneLine(err.Error()))
	}
	if err := Bounded(ctx, CallTimeout, func() error { return pool.Client.RemoveImage(src) }); err != nil {
		return fmt.Errorf("import %s:%s: untag %s: %s", repo, tag, src, OneLine(err.Error()))
	}
	return nil
}

// ImportedAs is the name the engine gave an import asked for as tmp:tag:
// tmp:tag (Docker) or tmp:latest (Podman), for an image used under its
// import's own name (and removed by it).
func ImportedAs(ctx context.Context, pool *dockertest.Pool, tmp, tag string) (string, error) {
	for _, cand := range []string{tmp + ":" + tag, tmp + ":latest"} {
		if Bounded(ctx, CallTimeout, func() error { _, err := pool.Client.InspectImage(cand); return err }) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("the engine named the imported image neither %s:%s nor %s:latest", tmp, tag, tmp)
}
