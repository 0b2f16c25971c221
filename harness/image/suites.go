package image

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// A Debian version that the configured suites (the host's, bookworm) do not
// serve is looked for in other suites of the same configured mirror, in
// lookupSuites order. A package of another suite needs a root file system of
// its own release (its libc, libssl and pcre2 are newer), so a pair is built
// on the root of the newer of its releases: the older binary runs there, its
// .debs fetched from its own suite and installed with the newer root's
// libraries.

// lookupSuites are the suites searched, in order, after the configured ones.
var lookupSuites = []string{"trixie", "trixie-security", "sid"}

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

// Side apt configurations live here in build containers; finishScript
// removes them.
const (
	sideAptDir   = "/etc/apt/nginx-upgrade-harness"
	sideListsDir = "/var/lib/apt/nginx-upgrade-harness"
)

// sideApt writes an apt configuration named name into the box that reads
// only the given sources, with lists of its own, refreshes it, and returns
// the environment (APT_CONFIG=…) that selects it. The box's own apt state is
// left untouched.
func sideApt(ctx context.Context, box *buildBox, name string, sources []sourceFile) ([]string, error) {
	conf := fmt.Sprintf(`Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "%[1]s/%[3]s.d";
Dir::State::Lists "%[2]s/%[3]s";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
`, sideAptDir, sideListsDir, name)
	entries := []tarEntry{
		{name: strings.TrimPrefix(sideAptDir, "/"), mode: 0o755, dir: true},
		{name: strings.TrimPrefix(sideAptDir, "/") + "/" + name + ".d", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(sideAptDir, "/") + "/" + name + ".conf", mode: 0o644, data: []byte(conf)},
	}
	for _, s := range sources {
		entries = append(entries, tarEntry{name: strings.TrimPrefix(sideAptDir, "/") + "/" + name + ".d/" + s.name, mode: 0o644, data: s.data})
	}
	if err := box.upload(ctx, "/", entries); err != nil {
		return nil, fmt.Errorf("write apt configuration for %s: %w", name, err)
	}
	env := []string{"APT_CONFIG=" + sideAptDir + "/" + name + ".conf"}
	if _, err := box.run(ctx, "mkdir "+name+" lists", nil, "mkdir", "-p", sideListsDir+"/"+name+"/partial"); err != nil {
		return nil, err
	}
	if _, err := box.run(ctx, "apt-get update ("+name+")", append(append([]string(nil), aptEnv...), env...), "apt-get", "update"); err != nil {
		return nil, err
	}
	return env, nil
}

// servedVersions is what `apt-cache madison nginx` lists, per suite.
type servedVersions struct {
	order    []string            // versions, oldest first
	suiteOf  map[string]string   // version → suite that serves it (the first listed)
	bySuite  map[string][]string // suite → versions, oldest first
	suiteSeq []string            // suites in order of first appearance
}

// parseMadisonSuites reads `apt-cache madison nginx` output.
func parseMadisonSuites(out string) servedVersions {
	sv := servedVersions{suiteOf: map[string]string{}, bySuite: map[string][]string{}}
	for _, v := range parseMadison(out) {
		sv.order = append(sv.order, v)
	}
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- { // oldest first
		f := strings.Split(lines[i], "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != "nginx" || !strings.Contains(f[2], "Packages") {
			continue
		}
		v := strings.TrimSpace(f[1])
		src := strings.Fields(f[2])
		if len(src) < 2 {
			continue
		}
		s, _, _ := strings.Cut(src[1], "/")
		if _, ok := sv.suiteOf[v]; !ok {
			sv.suiteOf[v] = s
		}
		if _, ok := sv.bySuite[s]; !ok {
			sv.suiteSeq = append(sv.suiteSeq, s)
		}
		sv.bySuite[s] = append(sv.bySuite[s], v)
	}
	return sv
}

func (sv servedVersions) describe() string {
	var parts []string
	for _, v := range sv.order {
		parts = append(parts, fmt.Sprintf("%s (%s)", v, sv.suiteOf[v]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// debianPlan says, for each Debian build of a pair, the release whose suite
// serves it, and the release whose root the pair is built on.
type debianPlan struct {
	release map[string]string // build spec → release (suite for the configured ones)
	root    string
}

// lookupDebian refreshes the configured suites in box (a container of the
// configured release's base) and finds every Debian build: first in the
// configured suites, then in lookupSuites. A version served nowhere is a
// one-line error listing what each suite serves.
func lookupDebian(ctx context.Context, box *buildBox, builds []Build, progress io.Writer) (debianPlan, error) {
	plan := debianPlan{release: map[string]string{}, root: suite}
	fmt.Fprintf(progress, "reading the configured apt suites…\n")
	if _, err := box.run(ctx, "apt-get update", aptEnv, "apt-get", "update"); err != nil {
		return plan, err
	}
	out, err := box.run(ctx, "apt-cache madison nginx", nil, "apt-cache", "madison", "nginx")
	if err != nil {
		return plan, err
	}
	configured := parseMadisonSuites(out)
	other := map[string]servedVersions{} // lookup suite → what it serves, read lazily
	var unconfigured []string            // lookup suites the host has no counterpart for
	unreadable := map[string]string{}    // lookup suite → why its index could not be read
	for _, b := range builds {
		if b.Kind != KindDebian {
			continue
		}
		if s, ok := configured.suiteOf[b.Version]; ok {
			plan.release[b.Spec] = suite
			fmt.Fprintf(progress, "%s: found in %s\n", b.Spec, s)
			continue
		}
		for _, s := range lookupSuites {
			sv, done := other[s]
			if !done {
				text, missing, err := suiteSources([]string{s})
				if err != nil {
					return plan, err
				}
				if len(missing) > 0 {
					unconfigured = append(unconfigured, s)
					other[s] = servedVersions{}
					continue
				}
				fmt.Fprintf(progress, "%s: not in the configured suites; reading %s…\n", b.Spec, s)
				env, err := sideApt(ctx, box, "lookup-"+s, []sourceFile{{name: "lookup.sources", data: []byte(text)}})
				if err != nil {
					// A fallback suite the mirror serves badly (an expired
					// Release file, say) is reported, not fatal: the
					// others may still serve the version.
					unreadable[s] = aptFailure(err)
					fmt.Fprintf(progress, "%s: cannot read %s: %s\n", b.Spec, s, unreadable[s])
					other[s] = servedVersions{}
					continue
				}
				out, err := box.run(ctx, "apt-cache madison nginx ("+s+")", env, "apt-cache", "madison", "nginx")
				if err != nil {
					return plan, err
				}
				sv = parseMadisonSuites(out)
				other[s] = sv
			}
			if _, ok := sv.suiteOf[b.Version]; ok {
				plan.release[b.Spec] = releaseOf(s)
				fmt.Fprintf(progress, "%s: found in %s\n", b.Spec, s)
				break
			}
		}
		if _, ok := plan.release[b.Spec]; !ok {
			var nor []string
			for _, s := range lookupSuites {
				switch vs := other[s].order; {
				case hasString(unconfigured, s):
					nor = append(nor, s+" (no mirror configured for it)")
				case unreadable[s] != "":
					nor = append(nor, s+" (unreadable: "+unreadable[s]+")")
				case len(vs) == 0:
					nor = append(nor, s+" (none)")
				default:
					nor = append(nor, s+" ("+strings.Join(vs, ", ")+")")
				}
			}
			return plan, fmt.Errorf("%s: version not served by the configured apt suites (served: %s) nor by %s",
				b.Spec, configured.describe(), strings.Join(nor, ", "))
		}
	}
	for _, r := range plan.release {
		if releaseRank[r] > releaseRank[plan.root] {
			plan.root = r
		}
	}
	return plan, nil
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// aptConfigOf returns the APT_CONFIG value of a side configuration's
// environment ("" for the root's own configuration).
func aptConfigOf(env []string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "APT_CONFIG="); ok {
			return v
		}
	}
	return ""
}

// aptFailure shortens a failed apt command's error to apt's own error
// lines ("E: …"), or the whole error if it has none.
func aptFailure(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "E: "); i >= 0 {
		return strings.TrimSpace(msg[i:])
	}
	return msg
}
