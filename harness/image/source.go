package image

// Source builds: the builder image, the upstream tarball, the compile, and binaries taken from images.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
)

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
	tarballs := map[string][]byte{}
	for _, b := range builds {
		if b.Res == nil || b.Res.tarball == "" {
			return nil, fmt.Errorf("%s: not resolved", b.Spec)
		}
		data, err := os.ReadFile(b.Res.tarball)
		if err != nil {
			return nil, fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
		}
		if sha256Hex(data) != b.Res.SHA256 {
			return nil, fmt.Errorf("%s: %s does not match its sha256 %s", b.Spec, b.Res.tarball, short(b.Res.SHA256))
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
