package image

// The build box: a short-lived, labelled container a build runs commands in.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

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
			Env:        append([]string{"PATH=" + containerPath}, proxyEnv()...),
			Labels:     harness.OwnerLabels(pool),
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
			Labels: harness.ImageLabels(labels),
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

// proxyVars are the proxy variables a build container inherits from the
// tool's environment, so that apt inside it reaches the archive the way the
// tool does. The committed image keeps none of them.
var proxyVars = []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

func proxyEnv() []string {
	var env []string
	for _, k := range proxyVars {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
