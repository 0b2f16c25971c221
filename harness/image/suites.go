package image

import (
	"fmt"
	"strings"
)

// A Debian version that the configured suites (the host's, bookworm) do not
// serve is looked for in other suites of the same configured mirror, in
// lookupSuites order. A package of another suite needs a root file system of
// its own release (its libc, libssl and pcre2 are newer), so a pair is built
// on the root of the newer of its releases: the older binary runs there, its
// .debs fetched from its own suite and installed with the newer root's
// libraries.

// lookupSuites are the suites searched, in order, after the configured ones
// (and that a debian:SUITE spec may name besides them).
var lookupSuites = []string{"trixie", "trixie-updates", "trixie-security", "sid"}

// releaseRank orders releases: a pair is built on the root of the highest.
var releaseRank = map[string]int{suite: 0, "trixie": 1, "sid": 2}

// releaseOf names the release (root file system) a suite belongs to:
// trixie-security → trixie.
func releaseOf(s string) string {
	r, _, _ := strings.Cut(s, "-")
	return r
}

// baseImageFor is the base image of a release: BaseImage for the configured
// one (unchanged), a tag per release otherwise.
func baseImageFor(release string) string {
	if release == suite {
		return BaseImage
	}
	return "nginx-upgrade-harness/base:" + release
}

// aptEntry is one host apt source entry that is Debian's.
type aptEntry struct {
	uri        string
	suites     []string
	components []string
	signedBy   string
}

// hostAptEntries parses the host's Debian sources (as hostDebianSources
// keeps them) into entries.
func hostAptEntries() ([]aptEntry, error) {
	files, err := hostDebianSources()
	if err != nil {
		return nil, err
	}
	var out []aptEntry
	for _, f := range files {
		if strings.HasSuffix(f.name, ".sources") {
			for _, st := range strings.Split(string(f.data), "\n\n") {
				fl := deb822Fields(st)
				for _, u := range strings.Fields(fl["uris"]) {
					out = append(out, aptEntry{uri: u, suites: strings.Fields(fl["suites"]),
						components: strings.Fields(fl["components"]), signedBy: fl["signed-by"]})
				}
			}
			continue
		}
		for _, line := range strings.Split(string(f.data), "\n") {
			fs := strings.Fields(line)
			if len(fs) == 0 || fs[0] != "deb" {
				continue
			}
			fs = fs[1:]
			e := aptEntry{}
			if len(fs) > 0 && strings.HasPrefix(fs[0], "[") {
				for len(fs) > 0 {
					opt := strings.Trim(fs[0], "[]")
					if k, v, ok := strings.Cut(opt, "="); ok && k == "signed-by" {
						e.signedBy = v
					}
					done := strings.HasSuffix(fs[0], "]")
					fs = fs[1:]
					if done {
						break
					}
				}
			}
			if len(fs) < 3 {
				continue
			}
			e.uri, e.suites, e.components = fs[0], []string{fs[1]}, fs[2:]
			out = append(out, e)
		}
	}
	return out, nil
}

// suiteSources returns deb822 sources for the given suites of other
// releases, each served by the URI (with the components and key) the host
// uses for its counterpart: trixie and sid by the main archive's, X-security
// by the security archive's, X-updates by the updates one's. Suites without
// a counterpart on the host are left out and returned in missing.
func suiteSources(suites []string) (text string, missing []string, err error) {
	entries, err := hostAptEntries()
	if err != nil {
		return "", nil, err
	}
	var stanzas []string
	for _, s := range suites {
		counterpart := suite
		if _, tail, ok := strings.Cut(s, "-"); ok {
			counterpart = suite + "-" + tail
		}
		var found *aptEntry
		for i := range entries {
			for _, hs := range entries[i].suites {
				if hs == counterpart && found == nil {
					found = &entries[i]
				}
			}
		}
		if found == nil {
			missing = append(missing, s)
			continue
		}
		st := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\nComponents: %s", found.uri, s, strings.Join(found.components, " "))
		if found.signedBy != "" {
			st += "\nSigned-By: " + found.signedBy
		}
		stanzas = append(stanzas, st)
	}
	if len(stanzas) == 0 {
		return "", missing, nil
	}
	return strings.Join(stanzas, "\n\n") + "\n", missing, nil
}

// releaseSuites are the suites a root of release uses: the release, its
// updates and its security suite (sid has neither).
func releaseSuites(release string) []string {
	if release == "sid" {
		return []string{"sid"}
	}
	return []string{release, release + "-updates", release + "-security"}
}

// releaseSourceFiles returns the apt sources a root of release is given:
// the host's own for the configured release, derived ones otherwise.
func releaseSourceFiles(release string) ([]sourceFile, error) {
	if release == suite {
		return hostDebianSources()
	}
	text, _, err := suiteSources(releaseSuites(release))
	if err != nil {
		return nil, err
	}
	if text == "" {
		return nil, fmt.Errorf("no Debian mirror URI in the host's apt sources for %s", release)
	}
	return []sourceFile{{name: "harness-debian.sources", data: []byte(text)}}, nil
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
