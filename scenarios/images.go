package scenarios

import (
	"context"
	"strings"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
)

// DefaultBroken is the default broken new build: nginx compiled without the
// gzip module, which the default nginx.conf uses, so its master exits with
// `[emerg] unknown directive "gzip"`.
const DefaultBroken = "source:stable:--without-http_gzip_module"

// ResolveBuilds resolves the run's builds (From, To, Broken) in place with
// one resolver: what debian:SUITE and source:stable name today, their
// files fetched into the cache. Each resolution is a progress line.
func ResolveBuilds(ctx context.Context, p *Params, progress Progress, opts ...image.ResolverOption) error {
	r, err := image.NewResolver(append([]image.ResolverOption{image.WithProgress(progressWriter{progress})}, opts...)...)
	if err != nil {
		return err
	}
	return r.Resolve(ctx, &p.From, &p.To, &p.Broken)
}

// Images are the pair images a run needs: old→new, and old→broken when a
// scenario runs against the broken build.
type Images struct {
	Good, Broken string
	// GoodSystemd and BrokenSystemd are their systemd variants (empty
	// until PrepareSystemdImages), for procedures that run under systemd.
	GoodSystemd, BrokenSystemd string
}

// PrepareImages builds (or finds in the cache) the images the scenarios need.
func PrepareImages(ctx context.Context, pool *dockertest.Pool, scs []Scenario, p Params, progress Progress) (Images, error) {
	var im Images
	needGood, needBroken := false, false
	for _, s := range scs {
		if s.Broken {
			needBroken = true
		} else {
			needGood = true
		}
	}
	w := progressWriter{progress}
	if needGood {
		info, err := image.EnsureImage(ctx, pool, p.From, p.To, w)
		if err != nil {
			return im, err
		}
		im.Good = info.Ref
	}
	if needBroken {
		info, err := image.EnsureImage(ctx, pool, p.From, p.Broken, w)
		if err != nil {
			return im, err
		}
		im.Broken = info.Ref
	}
	return im, nil
}

type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			w.p("%s", l)
		}
	}
	return len(b), nil
}
