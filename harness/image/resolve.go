package image

// Resolution: what a build spec names today (debian:bookworm-security, source:stable, or an exact
// version), fetched once into a content-addressed cache and optionally pinned by a lock file.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

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

// lockKey is what a lock entry is keyed by: the spec without configure
// flags (one tarball serves every flag set).
func lockKey(b Build) string {
	if b.Kind == KindSource {
		return KindSource + ":" + b.sourceName()
	}
	return b.Spec
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

// newestNginx is the newest nginx version idx serves ("" when none).
func newestNginx(idx *suiteIndex) string {
	best := ""
	for _, p := range idx.Packages {
		if p.Package == "nginx" && (best == "" || compareDebianVersions(p.Version, best) > 0) {
			best = p.Version
		}
	}
	return best
}

func (r *Resolver) resolveDebian(ctx context.Context, b *Build) error {
	version, pinned := b.Version, ""
	if l, ok := r.lockEntry(*b); ok {
		version, pinned = l.Version, l.SHA256
	}
	var note string
	if b.Suite != "" && pinned == "" {
		s, ok := r.suiteNamed(b.Suite)
		if !ok {
			return fmt.Errorf("%s: unknown suite %q (known: %s)", b.Spec, b.Suite, r.suiteNames())
		}
		idx, err := r.index(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Spec, err)
		}
		if idx != nil {
			if version = newestNginx(idx); version == "" {
				return fmt.Errorf("%s: suite %s serves no nginx", b.Spec, b.Suite)
			}
		} else if last, ok := r.recall(lockKey(*b)); ok {
			version = last.Version
			note = fmt.Sprintf("suite %s cannot be read; the last resolution (%s) is used", b.Suite, last.Version)
		} else {
			return fmt.Errorf("%s: suite %s cannot be read (%s) and the cache holds no earlier resolution of it",
				b.Spec, b.Suite, harness.OneLine(r.failed[b.Suite].Error()))
		}
	}
	// The suite the spec names first, then the others in order.
	order := r.suites
	if s, ok := r.suiteNamed(b.Suite); ok {
		order = append([]suiteRef{s}, r.suites...)
	}
	for _, s := range order {
		idx, err := r.index(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Spec, err)
		}
		if idx == nil {
			continue
		}
		debs := pinnedSet(idx, version)
		if len(debs) == 0 {
			continue
		}
		res := &Resolution{Version: version, Suite: s.name, Release: releaseOf(s.name), Origin: OriginArchive, Debs: debs, SHA256: debs[0].SHA256, Note: note}
		if pinned != "" && res.SHA256 != pinned {
			return fmt.Errorf("%s: locked nginx %s has sha256 %s, but %s serves it with sha256 %s", b.Spec, version, short(pinned), s.name, short(res.SHA256))
		}
		if err := r.fetchDebs(ctx, s, res); err != nil {
			return fmt.Errorf("%s: %w", b.Spec, err)
		}
		b.Res = res
		return r.keepManifest(*res)
	}
	// No readable suite serves it: the cache may still hold it.
	if m, ok := r.manifest(version); ok && r.debsPresent(m) && (pinned == "" || m.SHA256 == pinned) {
		m.Origin, m.Suite = OriginCache, ""
		m.Note = "no suite serves it now; built from the cache"
		if note != "" {
			m.Note = note
		}
		b.Res = &m
		return nil
	}
	what := "version"
	if pinned != "" {
		what = "locked version"
	}
	return fmt.Errorf("%s: %s %s is neither served (%s) nor in the cache", b.Spec, what, version, r.served())
}

// served lists what each suite serves of nginx now, for an error.
func (r *Resolver) served() string {
	var parts []string
	for _, s := range r.suites {
		switch idx := r.indexes[s.name]; {
		case idx != nil:
			var vs []string
			for _, p := range idx.Packages {
				if p.Package == "nginx" {
					vs = append(vs, p.Version)
				}
			}
			if len(vs) == 0 {
				vs = []string{"none"}
			}
			parts = append(parts, s.name+": "+strings.Join(vs, ", "))
		case r.failed[s.name] != nil:
			parts = append(parts, s.name+": unreadable")
		}
	}
	if len(parts) == 0 {
		return "no suite could be read"
	}
	return "served: " + strings.Join(parts, "; ")
}

// pinnedSet is the package set that yields nginx at version in idx: nginx
// and every package of the index it pins to its own version (nginx-common).
func pinnedSet(idx *suiteIndex, version string) []Deb {
	var nginx *pkgStanza
	for i := range idx.Packages {
		if p := &idx.Packages[i]; p.Package == "nginx" && p.Version == version {
			nginx = p
		}
	}
	if nginx == nil {
		return nil
	}
	show := "Depends: " + nginx.Depends + "\n"
	if nginx.PreDepends != "" {
		show += "Pre-Depends: " + nginx.PreDepends + "\n"
	}
	var debs []Deb
	for _, name := range packagesPinnedTo(show, version) {
		name, _, _ = strings.Cut(name, "=")
		for _, p := range idx.Packages {
			if p.Package == name && p.Version == version {
				debs = append(debs, Deb{Package: p.Package, Version: p.Version, Filename: p.Filename, SHA256: p.SHA256, Size: p.Size})
				break
			}
		}
	}
	return debs
}

// ---- the cache ----

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

// ---- source builds ----

func (r *Resolver) srcPath(sum string) string { return filepath.Join(r.cache, "src", sum+".tar.gz") }

// resolveSource finds the build's tarball: a local file as it is; an
// upstream version (or the newest of a channel) in the suites' source
// indexes, fetched and checked against the index's hash.
func (r *Resolver) resolveSource(ctx context.Context, b *Build) error {
	if b.Path != "" {
		data, err := os.ReadFile(b.Path)
		if err != nil {
			return fmt.Errorf("%s: %s", b.Spec, harness.OneLine(err.Error()))
		}
		b.Res = &Resolution{Version: b.Version, SHA256: sha256Hex(data), Origin: OriginFile, tarball: b.Path}
		return nil
	}
	version, pinned := b.Version, ""
	if l, ok := r.lockEntry(*b); ok {
		version, pinned = l.Version, l.SHA256
	}
	// Every readable suite's tarballs, newest first.
	type served struct {
		t srcTarball
		s suiteRef
	}
	var all []served
	for _, s := range r.suites {
		idx, err := r.index(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Spec, err)
		}
		if idx != nil {
			for _, t := range idx.Tarballs {
				all = append(all, served{t, s})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return compareDebianVersions(all[i].t.Version, all[j].t.Version) > 0 })
	var names []string
	for _, a := range all {
		if !hasString(names, a.t.Version) {
			names = append(names, a.t.Version)
		}
	}
	if version == "" { // a channel, not locked
		for _, a := range all {
			if channelOf(a.t.Version) == b.Channel {
				version = a.t.Version
				break
			}
		}
		if version == "" {
			if last, ok := r.recall(lockKey(*b)); ok && len(all) == 0 {
				version = last.Version
			} else {
				return fmt.Errorf("%s: no %s nginx (an %s minor version) among the tarballs the suites serve (%s)",
					b.Spec, b.Channel, map[string]string{"stable": "even", "mainline": "odd"}[b.Channel], orNone(names))
			}
		}
	}
	for _, a := range all {
		if a.t.Version != version {
			continue
		}
		if pinned != "" && a.t.SHA256 != pinned {
			return fmt.Errorf("%s: locked tarball %s has sha256 %s, but %s serves sha256 %s", b.Spec, version, short(pinned), a.s.name, short(a.t.SHA256))
		}
		p := r.srcPath(a.t.SHA256)
		if !fileHasSHA256(p, a.t.SHA256) {
			u := a.s.uri + "/" + a.t.Filename
			r.say("downloading %s…", u)
			data, err := r.fetch(ctx, u, a.t.Size+1)
			if err != nil {
				continue // listed but not served by this archive: another may serve it
			}
			if got := sha256Hex(data); got != a.t.SHA256 {
				return fmt.Errorf("%s: %s has sha256 %s, the index says %s", b.Spec, u, short(got), short(a.t.SHA256))
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := writeFileAtomic(p, data); err != nil {
				return err
			}
		}
		res := Resolution{Version: version, Suite: a.s.name, SHA256: a.t.SHA256, Origin: OriginArchive, tarball: p}
		b.Res = &res
		return r.writeJSON(r.manifestPath(KindSource, version), res)
	}
	// Served by no readable suite: the cache may hold it.
	var m Resolution
	if r.readJSON(r.manifestPath(KindSource, version), &m) == nil && fileHasSHA256(r.srcPath(m.SHA256), m.SHA256) && (pinned == "" || pinned == m.SHA256) {
		m.Origin, m.Suite, m.tarball = OriginCache, "", r.srcPath(m.SHA256)
		m.Note = "no suite serves it now; built from the cache"
		b.Res = &m
		return nil
	}
	return fmt.Errorf("%s: tarball nginx_%s.orig.tar.gz is neither served (tarballs served: %s) nor in the cache", b.Spec, version, orNone(names))
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// channelOf names nginx's branch of an upstream version: stable (even
// minor) or mainline (odd minor).
func channelOf(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || parts[1] == "" {
		return ""
	}
	if (parts[1][len(parts[1])-1]-'0')%2 == 0 {
		return "stable"
	}
	return "mainline"
}

// ---- the lock ----

// Lock pins specs to exact versions and hashes: a run that obeys it uses
// the very same files as the run that wrote it.
type Lock struct {
	Schema  int                   `json:"schema"`
	Written string                `json:"written,omitempty"`
	Builds  map[string]Resolution `json:"builds"` // spec (source: without flags) → what it resolved to
}

// ReadLock reads a lock file.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("--lock %s: %s", path, harness.OneLine(err.Error()))
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil || l.Schema != 1 || l.Builds == nil {
		return nil, fmt.Errorf("--lock %s: not a lock file of this tool (want JSON with schema 1 and builds)", path)
	}
	return &l, nil
}

func (l *Lock) write(path string) error {
	l.Written = time.Now().UTC().Format(time.RFC3339)
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("--lock %s: %s", path, harness.OneLine(err.Error()))
	}
	return nil
}

func (r *Resolver) lockEntry(b Build) (Resolution, bool) {
	if r.lock == nil {
		return Resolution{}, false
	}
	e, ok := r.lock.Builds[lockKey(b)]
	return e, ok && e.Version != ""
}

// ---- Debian version order ----

// compareDebianVersions orders two Debian versions as dpkg does:
// epoch, then upstream and revision by dpkg's character rules.
func compareDebianVersions(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	ua, va := splitRevision(ra)
	ub, vb := splitRevision(rb)
	if c := compareVersionPart(ua, ub); c != 0 {
		return c
	}
	return compareVersionPart(va, vb)
}

func splitEpoch(v string) (int, string) {
	if i := strings.IndexByte(v, ':'); i > 0 {
		n := 0
		for _, c := range v[:i] {
			if c < '0' || c > '9' {
				return 0, v
			}
			n = n*10 + int(c-'0')
		}
		return n, v[i+1:]
	}
	return 0, v
}

func splitRevision(v string) (string, string) {
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

// order is dpkg's weight of a non-digit character: ~ sorts before
// everything, letters before other characters.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	}
	return int(c) + 256
}

func compareVersionPart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			var ca, cb int
			if i < len(a) && !isDigit(a[i]) {
				ca = order(a[i])
			}
			if j < len(b) && !isDigit(b[j]) {
				cb = order(b[j])
			}
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			if i < len(a) && !isDigit(a[i]) {
				i++
			}
			if j < len(b) && !isDigit(b[j]) {
				j++
			}
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if d := (i - si) - (j - sj); d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

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
