package image

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Where the Debian archive is, in this order: --archive (UseArchive), the
// NUH_ARCHIVE variable, a Debian host's own apt sources. The tool writes no
// mirror of its own into an image: each comes from one of these.

// ArchiveEnv names the Debian archive when --archive does not: the URI of
// its main part (…/debian). ArchiveSecurityEnv names the security archive;
// by default the main URI with -security appended to its path
// (…/debian-security), the layout of Debian's own mirrors.
const (
	ArchiveEnv         = "NUH_ARCHIVE"
	ArchiveSecurityEnv = "NUH_ARCHIVE_SECURITY"
)

// archiveFlag is --archive, set by UseArchive.
var archiveFlag string

// UseArchive sets the Debian archive from the command line: it outranks
// NUH_ARCHIVE and the host's apt sources. An empty uri leaves the order as
// it is.
func UseArchive(uri string) error {
	if uri == "" {
		return nil
	}
	if err := checkArchiveURI(uri); err != nil {
		return err
	}
	archiveFlag = uri
	return nil
}

func checkArchiveURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URI of a Debian archive (want e.g. http://HOST/debian)", uri)
	}
	return nil
}

// archiveOverride is the archive named by --archive or NUH_ARCHIVE (and
// which one said so), or "" when neither does.
func archiveOverride() (main, security, from string, err error) {
	main, from = archiveFlag, "--archive"
	if main == "" {
		main, from = os.Getenv(ArchiveEnv), ArchiveEnv
	}
	if main == "" {
		return "", "", "", nil
	}
	if err := checkArchiveURI(main); err != nil {
		return "", "", "", fmt.Errorf("%s: %v", from, err)
	}
	main = strings.TrimRight(main, "/")
	security = os.Getenv(ArchiveSecurityEnv)
	if security == "" {
		security = main + "-security"
	} else if err := checkArchiveURI(security); err != nil {
		return "", "", "", fmt.Errorf("%s: %v", ArchiveSecurityEnv, err)
	}
	return main, strings.TrimRight(security, "/"), from, nil
}

// overrideSources are the apt sources of the configured release on the
// archive --archive or NUH_ARCHIVE names.
func overrideSources(main, security string) []sourceFile {
	text := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n",
		main, suite, suite, security, suite)
	return []sourceFile{{name: "harness-debian.sources", data: []byte(text)}}
}
