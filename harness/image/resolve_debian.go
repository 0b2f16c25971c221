package image

// Debian builds resolved: the newest nginx a suite serves, or an exact
// version, with the package set that pins it.

import (
	"context"
	"fmt"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

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
