package image

// Source builds resolved: an upstream version, or the newest of a channel,
// found in the suites' source indexes; or a local tarball.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

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
