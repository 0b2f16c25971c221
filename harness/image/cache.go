package image

// The build cache: package files and tarballs by content, the package
// sets of Debian versions, and the last resolution of each suite or
// channel spec.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// cacheDir is the user's build cache.
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

func (r *Resolver) debPath(sum string) string { return filepath.Join(r.cache, "debs", sum+".deb") }

// fetchDebs downloads each package file not yet in the cache, checking it
// against the index's hash and size.
func (r *Resolver) fetchDebs(ctx context.Context, s suiteRef, res *Resolution) error {
	if err := os.MkdirAll(filepath.Join(r.cache, "debs"), 0o755); err != nil {
		return err
	}
	for _, d := range res.Debs {
		p := r.debPath(d.SHA256)
		if fileHasSHA256(p, d.SHA256) {
			continue
		}
		u := s.uri + "/" + d.Filename
		r.say("downloading %s…", u)
		data, err := r.fetch(ctx, u, d.Size+1)
		if err != nil {
			return err
		}
		if got := sha256Hex(data); got != d.SHA256 || int64(len(data)) != d.Size {
			return fmt.Errorf("%s: sha256 %s (%d bytes), the index says %s (%d bytes)", u, short(got), len(data), short(d.SHA256), d.Size)
		}
		if err := writeFileAtomic(p, data); err != nil {
			return err
		}
	}
	return nil
}

func (r *Resolver) debsPresent(m Resolution) bool {
	for _, d := range m.Debs {
		if !fileHasSHA256(r.debPath(d.SHA256), d.SHA256) {
			return false
		}
	}
	return len(m.Debs) > 0
}

// DebFiles returns the cached package files of a resolved Debian build:
// file name (as the archive names it) → content.
func DebFiles(b Build) (map[string][]byte, error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	return DebFilesIn(dir, b)
}

// DebFilesIn is DebFiles from the cache at dir.
func DebFilesIn(dir string, b Build) (map[string][]byte, error) {
	if b.Res == nil || b.Kind != KindDebian {
		return nil, fmt.Errorf("%s: not a resolved Debian build", b.Spec)
	}
	out := map[string][]byte{}
	for _, d := range b.Res.Debs {
		data, err := os.ReadFile(filepath.Join(dir, "debs", d.SHA256+".deb"))
		if err != nil {
			return nil, fmt.Errorf("%s: %s from the cache: %s", b.Spec, path.Base(d.Filename), harness.OneLine(err.Error()))
		}
		if sha256Hex(data) != d.SHA256 {
			return nil, fmt.Errorf("%s: cached %s does not match its sha256 %s", b.Spec, path.Base(d.Filename), short(d.SHA256))
		}
		out[path.Base(d.Filename)] = data
	}
	return out, nil
}

func fileHasSHA256(p, sum string) bool {
	data, err := os.ReadFile(p)
	return err == nil && sha256Hex(data) == sum
}

func (r *Resolver) manifestPath(kind, version string) string {
	return filepath.Join(r.cache, kind, url.PathEscape(version)+".json")
}

// keepManifest records a Debian version's package set, so that the version
// still builds once the archive has withdrawn it.
func (r *Resolver) keepManifest(res Resolution) error {
	return r.writeJSON(r.manifestPath(KindDebian, res.Version), res)
}

func (r *Resolver) manifest(version string) (Resolution, bool) {
	var m Resolution
	return m, r.readJSON(r.manifestPath(KindDebian, version), &m) == nil && m.Version == version
}

// remember keeps the last resolution of a suite or channel spec: when the
// suite cannot be read later, the run goes on with it (and says so).
func (r *Resolver) remember(key string, res Resolution) {
	_ = r.writeJSON(filepath.Join(r.cache, "resolved", url.PathEscape(key)+".json"), res)
}

func (r *Resolver) recall(key string) (Resolution, bool) {
	var m Resolution
	return m, r.readJSON(filepath.Join(r.cache, "resolved", url.PathEscape(key)+".json"), &m) == nil && m.Version != ""
}

func (r *Resolver) writeJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, append(data, '\n'))
}

func (r *Resolver) readJSON(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func (r *Resolver) srcPath(sum string) string { return filepath.Join(r.cache, "src", sum+".tar.gz") }

// ClearCache removes the build cache and says where it was and how many
// files it held.
func ClearCache() (string, int, error) {
	dir, err := cacheDir()
	if err != nil {
		return "", 0, err
	}
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return dir, 0, fmt.Errorf("remove the build cache %s: %s", dir, harness.OneLine(err.Error()))
	}
	return dir, n, nil
}
