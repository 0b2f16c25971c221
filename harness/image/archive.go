package image

// The Debian archive as the host reads it: a suite's signed Release file,
// its package and source indexes, each checked against the hash the
// Release file gives (no Docker).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ulikunitz/xz"
)

// maxIndexSize bounds what one index download may hold (bookworm main's
// Packages.xz is about 9 MiB, decompressed about 45 MiB).
const (
	maxIndexSize   = 64 << 20
	maxIndexPlain  = 256 << 20
	maxReleaseSize = 4 << 20
	fetchTimeout   = 2 * time.Minute
)

// suiteRef is one suite and the archive that serves it.
type suiteRef struct {
	name       string // bookworm, bookworm-security, trixie, …
	uri        string // the archive's root, no trailing slash
	components []string
	signedBy   string // for the images' apt; the host reads with the keys it ships
	configured bool   // named by the host's apt sources (not derived)
}

// knownSuites lists the suites a debian: build may name or be found in:
// the host's Debian suites in the order its apt sources give them, then
// lookupSuites, each served by the archive the host uses for its
// counterpart (trixie by bookworm's, trixie-security by bookworm-security's).
func knownSuites() ([]suiteRef, error) {
	entries, err := hostAptEntries()
	if err != nil {
		return nil, err
	}
	var out []suiteRef
	seen := map[string]bool{}
	add := func(name string, e aptEntry, configured bool) {
		if seen[name] {
			return
		}
		seen[name] = true
		out = append(out, suiteRef{name: name, uri: strings.TrimRight(e.uri, "/"), components: e.components,
			signedBy: e.signedBy, configured: configured})
	}
	for _, e := range entries {
		for _, s := range e.suites {
			if isDebianEntry([]string{s}, e.signedBy) {
				add(s, e, true)
			}
		}
	}
	for _, s := range lookupSuites {
		counterpart := suite
		if _, tail, ok := strings.Cut(s, "-"); ok {
			counterpart = suite + "-" + tail
		}
		for _, e := range entries {
			if hasString(e.suites, counterpart) {
				add(s, e, false)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Debian suite in the host's apt sources")
	}
	return out, nil
}

// debArch is Debian's name for this machine's architecture.
func debArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}

// pkgStanza is one binary package of an index, the fields the harness uses.
type pkgStanza struct {
	Package    string `json:"package"`
	Version    string `json:"version"`
	Arch       string `json:"arch"`
	Source     string `json:"source,omitempty"`
	Filename   string `json:"filename"`
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	Depends    string `json:"depends,omitempty"`
	PreDepends string `json:"pre_depends,omitempty"`
}

// srcTarball is an upstream tarball a source index names.
type srcTarball struct {
	Version  string `json:"version"` // upstream: 1.26.3
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// suiteIndex is what a suite serves of nginx.
type suiteIndex struct {
	Suite    string       `json:"suite"`
	URI      string       `json:"uri"`
	Date     string       `json:"date"`
	Packages []pkgStanza  `json:"packages"` // nginx and the binary packages built from its source
	Tarballs []srcTarball `json:"tarballs"`
	Warning  string       `json:"-"` // something the reader noticed and went on with
}

// archiveReader reads suites' indexes over HTTP, keeping what it parsed in
// dir keyed by the index's hash, so that an unchanged suite costs one
// Release file.
type archiveReader struct {
	client   *http.Client
	dir      string // the cache's index directory
	now      func() time.Time
	keys     openpgp.EntityList // Debian's archive keys, embedded
	insecure bool               // --insecure-archive: InRelease taken without its signature checked
}

func newArchiveReader(cache string) (*archiveReader, error) {
	keys, err := archiveKeyring()
	if err != nil {
		return nil, err
	}
	return &archiveReader{client: &http.Client{Timeout: fetchTimeout}, dir: filepath.Join(cache, "index"), now: time.Now, keys: keys}, nil
}

// read returns what s serves of nginx. An expired or unreachable suite is
// an error naming why; one whose InRelease is not signed by Debian's
// archive keys is a *SignatureError.
func (a *archiveReader) read(ctx context.Context, s suiteRef) (*suiteIndex, error) {
	fields, hashes, err := a.release(ctx, s)
	if err != nil {
		return nil, err
	}
	comp := s.component()
	idx := &suiteIndex{Suite: s.name, URI: s.uri, Date: fields["date"]}
	pkgPath := comp + "/binary-" + debArch() + "/Packages.xz"
	srcPath := comp + "/source/Sources.xz"
	if h, ok := hashes[pkgPath]; ok {
		if idx.Packages, err = readIndex(ctx, a, s, pkgPath, h, "", parsePackages); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("its Release file lists no %s", pkgPath)
	}
	if h, ok := hashes[srcPath]; ok {
		// The source index only tells which upstream tarballs are served:
		// a suite without one still serves its packages.
		if idx.Tarballs, err = readIndex(ctx, a, s, srcPath, h, "", parseSources); err != nil {
			idx.Tarballs = nil
		}
	}
	return idx, nil
}

// release fetches s's InRelease, checks its signature against Debian's
// archive keys (unless --insecure-archive) and its date, and returns its
// fields and the hashes it gives its indexes.
func (a *archiveReader) release(ctx context.Context, s suiteRef) (map[string]string, map[string]indexHash, error) {
	raw, err := a.get(ctx, s.uri+"/dists/"+s.name+"/InRelease", maxReleaseSize)
	if err != nil {
		return nil, nil, err
	}
	var release []byte
	if a.insecure {
		release = releaseText(raw)
	} else if release, err = verifyRelease(s.name, raw, a.keys, a.now()); err != nil {
		return nil, nil, err
	}
	fields := deb822Fields(string(release))
	if vu := fields["valid-until"]; vu != "" {
		if t, err := time.Parse(time.RFC1123, vu); err == nil && a.now().After(t) {
			return nil, nil, fmt.Errorf("Release file expired on %s", t.UTC().Format("2006-01-02"))
		}
	}
	return fields, releaseHashes(string(release)), nil
}

// component is the component of s the harness reads: main, else the first
// its sources name.
func (s suiteRef) component() string {
	if len(s.components) > 0 && !hasString(s.components, "main") {
		return s.components[0]
	}
	return "main"
}

type indexHash struct {
	sum  string
	size int64
}

// readIndex fetches one index (or finds it parsed in the cache by its
// hash and what parse keeps of it, kind), checks its hash and size and
// parses it.
func readIndex[T any](ctx context.Context, a *archiveReader, s suiteRef, path string, h indexHash, kind string, parse func(io.Reader) ([]T, error)) ([]T, error) {
	name := h.sum + ".json"
	if kind != "" {
		name = h.sum + "." + kind + ".json"
	}
	cached := filepath.Join(a.dir, name)
	if data, err := os.ReadFile(cached); err == nil {
		var out []T
		if json.Unmarshal(data, &out) == nil {
			return out, nil
		}
	}
	if h.size > maxIndexSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d this reader takes", path, h.size, maxIndexSize)
	}
	data, err := a.get(ctx, s.uri+"/dists/"+s.name+"/"+path, maxIndexSize)
	if err != nil {
		return nil, err
	}
	if got := sha256Hex(data); got != h.sum || int64(len(data)) != h.size {
		return nil, fmt.Errorf("%s: sha256 %s (%d bytes), the Release file says %s (%d bytes)", path, got, len(data), h.sum, h.size)
	}
	zr, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, harness.OneLine(err.Error()))
	}
	out, err := parse(io.LimitReader(zr, maxIndexPlain))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, harness.OneLine(err.Error()))
	}
	if enc, err := json.Marshal(out); err == nil && os.MkdirAll(a.dir, 0o755) == nil {
		_ = writeFileAtomic(cached, enc)
	}
	return out, nil
}

// get fetches url, at most limit bytes.
func (a *archiveReader) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %s", url, harness.OneLine(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %s", url, harness.OneLine(err.Error()))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetch %s: more than %d bytes", url, limit)
	}
	return data, nil
}

// releaseHashes reads the SHA256 section of a Release file.
func releaseHashes(release string) map[string]indexHash {
	out := map[string]indexHash{}
	in := false
	for _, line := range strings.Split(release, "\n") {
		if !strings.HasPrefix(line, " ") {
			in = strings.HasPrefix(line, "SHA256:")
			continue
		}
		if !in {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		out[f[2]] = indexHash{sum: f[0], size: size}
	}
	return out
}

// stanzas calls fn with each stanza of a deb822 stream, as raw text.
func stanzas(r io.Reader, fn func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if b.Len() > 0 {
				fn(b.String())
				b.Reset()
			}
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if b.Len() > 0 {
		fn(b.String())
	}
	return sc.Err()
}

// fromNginxSource says whether a package stanza's fields are nginx's or one
// of the packages built from its source.
func fromNginxSource(f map[string]string) bool {
	src, _, _ := strings.Cut(f["source"], " ")
	return f["package"] == "nginx" || src == "nginx"
}

// parsePackages keeps the stanzas of nginx's packages in a Packages index.
func parsePackages(r io.Reader) ([]pkgStanza, error) {
	var out []pkgStanza
	err := stanzas(r, func(st string) {
		// Cheap filter before parsing: most of the 60,000 stanzas are not nginx's.
		if !strings.Contains(st, "nginx") {
			return
		}
		f := deb822Fields(st)
		if !fromNginxSource(f) {
			return
		}
		size, _ := strconv.ParseInt(f["size"], 10, 64)
		out = append(out, pkgStanza{Package: f["package"], Version: f["version"], Arch: f["architecture"],
			Source: f["source"], Filename: f["filename"], SHA256: f["sha256"], Size: size,
			Depends: f["depends"], PreDepends: f["pre-depends"]})
	})
	return out, err
}

// parseSources keeps the upstream tarballs of nginx's source package(s) in
// a Sources index.
func parseSources(r io.Reader) ([]srcTarball, error) {
	var out []srcTarball
	err := stanzas(r, func(st string) {
		if !strings.HasPrefix(st, "Package: nginx\n") {
			return
		}
		dir := ""
		in := false
		var found []srcTarball
		for _, line := range strings.Split(st, "\n") {
			if strings.HasPrefix(line, "Directory:") {
				dir = strings.TrimSpace(strings.TrimPrefix(line, "Directory:"))
			}
			if !strings.HasPrefix(line, " ") {
				in = strings.HasPrefix(line, "Checksums-Sha256:")
				continue
			}
			if !in {
				continue
			}
			fs := strings.Fields(line)
			if len(fs) != 3 || !strings.HasSuffix(fs[2], ".orig.tar.gz") {
				continue
			}
			m := tarballVersion.FindStringSubmatch(fs[2])
			if m == nil {
				continue
			}
			size, _ := strconv.ParseInt(fs[1], 10, 64)
			found = append(found, srcTarball{Version: m[1], Filename: fs[2], SHA256: fs[0], Size: size})
		}
		for _, t := range found {
			if dir != "" {
				t.Filename = dir + "/" + t.Filename
			}
			out = append(out, t)
		}
	})
	return out, err
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// writeFileAtomic writes data to path through a temporary file beside it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
