package image

// Resolution: what a build spec names today (debian:bookworm-security, source:stable, or an exact
// version), fetched once into a content-addressed cache and optionally pinned by a lock file.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Origins of a resolution.
const (
	OriginArchive = "archive" // a suite served it when it was resolved
	OriginCache   = "cache"   // no suite serves it now (withdrawn, or unreadable); the cache holds it
	OriginFile    = "file"    // a local tarball
)

// Resolution is what a build's spec named when it was resolved.
type Resolution struct {
	Version string `json:"version"`           // debian: the package version; source: the upstream version
	Suite   string `json:"suite,omitempty"`   // the suite that served it ("" when only the cache has it)
	Release string `json:"release,omitempty"` // debian: the release whose root it runs on
	SHA256  string `json:"sha256"`            // debian: the nginx .deb's; source: the tarball's
	Origin  string `json:"origin"`
	Debs    []Deb  `json:"debs,omitempty"`
	Note    string `json:"note,omitempty"` // why it came from where it came from, when that is news
	tarball string // source: the tarball's path in the cache
}

// Tarball is where a source build's tarball is on this host: the cache's
// copy, checked against the archive's index, or the user's file ("" for
// other kinds).
func (r Resolution) Tarball() string { return r.tarball }

// Deb is one package file of a Debian build, as the archive's index gave it.
type Deb struct {
	Package  string `json:"package"`
	Version  string `json:"version"`
	Filename string `json:"filename"` // the archive's pool path
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// Exact is the spec of exactly what b resolved to (debian:1.22.1-9+deb12u9,
// source:1.26.3:FLAGS); the spec itself when b names a file or an image, or
// has not been resolved.
func (b Build) Exact() string {
	if b.Res == nil {
		return b.Spec
	}
	switch b.Kind {
	case KindDebian:
		return KindDebian + ":" + b.Res.Version
	case KindSource:
		if b.Path != "" {
			return b.Spec
		}
		s := KindSource + ":" + b.Res.Version
		if b.Flags != "" {
			s += ":" + b.Flags
		}
		return s
	}
	return b.Spec
}

// Resolved says what b names in one line: "debian:bookworm = 1.22.1-9+deb12u9
// (bookworm, sha256 1a2b3c4d5e6f)".
func (b Build) Resolved() string {
	if b.Res == nil {
		return b.Spec
	}
	where := b.Res.Suite
	if where == "" {
		where = b.Res.Origin
	}
	s := fmt.Sprintf("%s = %s (%s, sha256 %s)", b.Spec, b.Res.Version, where, short(b.Res.SHA256))
	if b.Res.Note != "" {
		s += ": " + b.Res.Note
	}
	return s
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// indexSource reads what a suite serves (the archive over HTTP; recorded
// answers in tests).
type indexSource interface {
	read(ctx context.Context, s suiteRef) (*suiteIndex, error)
}

// Resolver turns build specs into exact versions and files in the cache.
// One resolver reads each suite at most once.
type Resolver struct {
	cache    string
	lockPath string
	progress io.Writer
	suites   []suiteRef
	src      indexSource
	fetch    func(ctx context.Context, url string, limit int64) ([]byte, error)
	indexes  map[string]*suiteIndex
	failed   map[string]error
	done     map[string]*Resolution // lock key → its resolution in this run
	lock     *Lock
	lockNew  bool // the lock file did not exist: write it once resolved
	insecure bool // InRelease files taken without their signatures checked
}

// ResolverOption configures a Resolver.
type ResolverOption func(*Resolver)

// WithLock makes the resolver obey the lock file at path, or write it
// when it does not exist.
func WithLock(path string) ResolverOption { return func(r *Resolver) { r.lockPath = path } }

// WithProgress sends the resolver's lines (what each spec resolved to,
// suites that could not be read) to w.
func WithProgress(w io.Writer) ResolverOption { return func(r *Resolver) { r.progress = w } }

// WithInsecureArchive takes the suites' InRelease files without checking
// their signatures (--insecure-archive): an explicit choice, which every
// report then states. Without it a file Debian's archive keys did not sign
// is never used.
func WithInsecureArchive(insecure bool) ResolverOption {
	return func(r *Resolver) { r.insecure = insecure }
}

// NewResolver reads the host's apt sources; the cache is the user's.
func NewResolver(opts ...ResolverOption) (*Resolver, error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	suites, err := knownSuites()
	if err != nil {
		return nil, err
	}
	ar, err := newArchiveReader(dir)
	if err != nil {
		return nil, err
	}
	r := newResolver(dir, suites, ar, ar.get, opts...)
	ar.insecure = r.insecure
	return r, nil
}

func newResolver(cache string, suites []suiteRef, src indexSource, fetch func(context.Context, string, int64) ([]byte, error), opts ...ResolverOption) *Resolver {
	r := &Resolver{cache: cache, progress: io.Discard, suites: suites, src: src, fetch: fetch,
		indexes: map[string]*suiteIndex{}, failed: map[string]error{}, done: map[string]*Resolution{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Resolve resolves every build in place (b.Res), fetching what it names
// into the cache, and writes or obeys the lock. Builds already resolved,
// and local binaries and images, are left as they are.
func (r *Resolver) Resolve(ctx context.Context, builds ...*Build) error {
	if r.lockPath != "" && r.lock == nil {
		l, err := ReadLock(r.lockPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
			r.lock, r.lockNew = &Lock{Schema: 1, Builds: map[string]Resolution{}}, true
		case err != nil:
			return err
		default:
			r.lock = l
		}
	}
	changed := false
	for _, b := range builds {
		if b == nil || b.Res != nil || (b.Kind != KindDebian && b.Kind != KindSource) {
			continue
		}
		key := lockKey(*b)
		if res, ok := r.done[key]; ok && b.Path == "" {
			b.Res = res
			continue
		}
		var err error
		switch b.Kind {
		case KindDebian:
			err = r.resolveDebian(ctx, b)
		case KindSource:
			err = r.resolveSource(ctx, b)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(r.progress, "%s\n", b.Resolved())
		r.done[key] = b.Res
		if r.lock != nil && b.Path == "" {
			if _, ok := r.lock.Builds[key]; !ok {
				r.lock.Builds[key] = *b.Res
				changed = true
			}
		}
		if b.Suite != "" || b.Channel != "" {
			r.remember(key, *b.Res)
		}
	}
	if r.lock != nil && changed {
		if err := r.lock.write(r.lockPath); err != nil {
			return err
		}
		verb := "added to"
		if r.lockNew {
			verb = "wrote"
		}
		fmt.Fprintf(r.progress, "%s lock %s\n", verb, r.lockPath)
	}
	return nil
}

// sourceName is what a source spec names before its flags: a version or a
// channel.
func (b Build) sourceName() string {
	if b.Channel != "" {
		return b.Channel
	}
	return b.Version
}

func (r *Resolver) say(format string, args ...any) {
	fmt.Fprintf(r.progress, format+"\n", args...)
}

// index returns what s serves, reading it once. A suite that cannot be
// read (unreachable, expired) is said once and returns nil: the cache and
// the lock may stand in for it. One whose signature does not verify is the
// error: whoever altered it must not choose what the builds resolve to,
// neither through what it serves nor by making the run fall back.
func (r *Resolver) index(ctx context.Context, s suiteRef) (*suiteIndex, error) {
	if idx, ok := r.indexes[s.name]; ok {
		return idx, nil
	}
	if err, ok := r.failed[s.name]; ok {
		var sigErr *SignatureError
		if errors.As(err, &sigErr) {
			return nil, err
		}
		return nil, nil
	}
	idx, err := r.src.read(ctx, s)
	if err != nil {
		r.failed[s.name] = err
		var sigErr *SignatureError
		if errors.As(err, &sigErr) {
			return nil, err
		}
		r.say("warning: suite %s cannot be read: %s", s.name, harness.OneLine(err.Error()))
		return nil, nil
	}
	if idx.Warning != "" {
		r.say("warning: suite %s: %s", s.name, idx.Warning)
	}
	r.indexes[s.name] = idx
	return idx, nil
}

func (r *Resolver) suiteNamed(name string) (suiteRef, bool) {
	for _, s := range r.suites {
		if s.name == name {
			return s, true
		}
	}
	return suiteRef{}, false
}

func (r *Resolver) suiteNames() string {
	var n []string
	for _, s := range r.suites {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}
