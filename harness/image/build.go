package image

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Default builds: what bookworm's point release serves today, upgraded to
// what its security suite serves today — the upgrade a bookworm host
// actually performs. Both are resolved at run time: a security suite keeps
// only its newest upload, so an exact version would stop being served.
const (
	DefaultFrom = "debian:bookworm"
	DefaultTo   = "debian:bookworm-security"
)

// Kinds of build.
const (
	KindDebian = "debian" // a Debian package version, from the configured apt suites
	KindSource = "source" // an upstream tarball compiled with configure flags
	KindBinary = "binary" // a local nginx executable
	KindImage  = "image"  // /usr/sbin/nginx taken from a local image
)

// Build names one nginx binary and where it comes from.
type Build struct {
	Kind    string // KindDebian, KindSource, KindBinary or KindImage
	Version string // debian: package version; source: upstream version (from the file name for a tarball, if it says)
	Flags   string // source: extra configure flags, split on white space
	Path    string // binary: the executable; source: a local tarball (absolute paths)
	Ref     string // image: the image reference
	Suite   string // debian: the suite named instead of a version (debian:bookworm-security)
	Channel string // source: "stable" or "mainline", named instead of a version
	Spec    string // the spec as given, which names the build in reports
	// Res is what the spec resolved to (Resolver.Resolve): the exact
	// version and its files. Image caches are keyed by it, never by Spec.
	Res *Resolution
}

func (b Build) String() string { return b.Spec }

var (
	debianVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)
	debianSuiteRE   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	sourceVersionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+$`)
	tarballVersion  = regexp.MustCompile(`nginx[-_]([0-9]+(?:\.[0-9]+)+)(?:\.orig)?\.tar\.gz$`)
)

// ParseBuild parses a build spec: debian:SUITE, debian:VERSION,
// source:stable, source:mainline, source:VERSION, each source spec with
// :CONFIGURE-FLAGS (VERSION may be a local .tar.gz), binary:PATH or
// image:REF. Local files must exist. Suites and channels are resolved to
// exact versions later, by a Resolver.
func ParseBuild(spec string) (Build, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	usage := fmt.Errorf("unknown build %q: want debian:SUITE|VERSION, source:stable|mainline|VERSION[:CONFIGURE-FLAGS], binary:PATH or image:REF", spec)
	if !ok {
		return Build{}, usage
	}
	b := Build{Kind: kind, Spec: spec}
	switch kind {
	case KindDebian:
		switch {
		case debianSuiteRE.MatchString(rest):
			b.Suite = rest
		case debianVersionRE.MatchString(rest):
			b.Version = rest
		default:
			return Build{}, fmt.Errorf("%s: %q is neither a Debian suite (e.g. bookworm-security) nor a package version (e.g. 1.22.1-9)", spec, rest)
		}
	case KindSource:
		// A tarball path may itself hold a colon: split after ".tar.gz" when
		// there is one, else at the first colon.
		var version, flags string
		if i := strings.Index(rest, ".tar.gz"); i >= 0 {
			version, flags = rest[:i+len(".tar.gz")], rest[i+len(".tar.gz"):]
			if flags != "" && !strings.HasPrefix(flags, ":") {
				return Build{}, fmt.Errorf("%s: want source:TARBALL.tar.gz[:CONFIGURE-FLAGS]", spec)
			}
			flags = strings.TrimPrefix(flags, ":")
		} else {
			version, flags, _ = strings.Cut(rest, ":")
		}
		b.Flags = strings.Join(strings.Fields(flags), " ")
		if strings.HasSuffix(version, ".tar.gz") {
			p, err := localFile(spec, version)
			if err != nil {
				return Build{}, err
			}
			b.Path = p
			if m := tarballVersion.FindStringSubmatch(filepath.Base(p)); m != nil {
				b.Version = m[1]
			}
			break
		}
		if version == "stable" || version == "mainline" {
			b.Channel = version
			break
		}
		if !sourceVersionRE.MatchString(version) {
			return Build{}, fmt.Errorf("%s: %q is neither stable, mainline, an upstream version (e.g. 1.26.3) nor a .tar.gz file", spec, version)
		}
		b.Version = version
	case KindBinary:
		if rest == "" {
			return Build{}, fmt.Errorf("%s: want binary:PATH", spec)
		}
		p, err := localFile(spec, rest)
		if err != nil {
			return Build{}, err
		}
		b.Path = p
	case KindImage:
		if rest == "" || strings.ContainsAny(rest, " \t\n") {
			return Build{}, fmt.Errorf("%s: want image:REF", spec)
		}
		b.Ref = rest
	default:
		return Build{}, usage
	}
	return b, nil
}

// localFile checks that path names a regular file and returns it absolute.
func localFile(spec, path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
		return "", fmt.Errorf("%s: no such file", spec)
	case err != nil:
		return "", fmt.Errorf("%s: %s", spec, harness.OneLine(err.Error()))
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s: not a regular file", spec)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%s: %s", spec, harness.OneLine(err.Error()))
	}
	return abs, nil
}
