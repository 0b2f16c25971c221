package image

// What the host's apt configuration says: its Debian sources and main mirror (no Docker).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// aptDir is where a Debian host keeps its apt configuration.
var aptDir = "/etc/apt"

type sourceFile struct {
	name string
	data []byte
}

// hostDebianSources returns the Debian apt sources the images are given:
// those of the archive --archive or NUH_ARCHIVE names (archive.go), else
// the host's own: the entries signed by the Debian archive keyring or
// naming a bookworm suite, from /etc/apt/sources.list and
// /etc/apt/sources.list.d/*.{list,sources}. Third-party repositories
// configured on the host stay out of the images.
func hostDebianSources() ([]sourceFile, error) {
	main, security, _, err := archiveOverride()
	if err != nil {
		return nil, err
	}
	if main != "" {
		return overrideSources(main, security), nil
	}
	var lists []string
	lists = append(lists, filepath.Join(aptDir, "sources.list"))
	more, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	lists = append(lists, more...)
	var listLines []string
	for _, p := range lists {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		listLines = append(listLines, debianListLines(string(data))...)
	}
	deb822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	var stanzas []string
	for _, p := range deb822 {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		stanzas = append(stanzas, debianStanzas(string(data))...)
	}
	out := debianSourceFiles(listLines, stanzas)
	if len(out) == 0 {
		if files, _ := sourcesFromEngine(); len(files) > 0 {
			return files, nil
		}
		return nil, fmt.Errorf("%w: pass --archive URI (or set %s), the URI of a Debian mirror's main archive (http://HOST/debian); this host has no Debian %s apt sources to take it from, and the engine's debian:%s was not asked",
			ErrNoArchive, ArchiveEnv, suite, suite)
	}
	return out, nil
}

// debianSourceFiles are the apt files the images are given: the kept
// one-line entries and deb822 stanzas, each kind in a file of its own.
func debianSourceFiles(lines, stanzas []string) []sourceFile {
	var out []sourceFile
	if len(lines) > 0 {
		out = append(out, sourceFile{name: "harness-debian.list", data: []byte(strings.Join(lines, "\n") + "\n")})
	}
	if len(stanzas) > 0 {
		out = append(out, sourceFile{name: "harness-debian.sources", data: []byte(strings.Join(stanzas, "\n\n") + "\n")})
	}
	return out
}

func isDebianEntry(suites []string, signedBy string) bool {
	if strings.Contains(signedBy, "debian-archive-keyring") {
		return true
	}
	for _, s := range suites {
		if s == suite || strings.HasPrefix(s, suite+"-") || strings.HasPrefix(s, suite+"/") {
			return true
		}
	}
	return false
}

// debianListLines keeps the one-line-style "deb" entries that are Debian's.
func debianListLines(data string) []string {
	var keep []string
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "deb ") && !strings.HasPrefix(line, "deb\t") {
			continue
		}
		f := strings.Fields(line)[1:]
		signedBy := ""
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			var opts []string
			for len(f) > 0 {
				opts = append(opts, f[0])
				done := strings.HasSuffix(f[0], "]")
				f = f[1:]
				if done {
					break
				}
			}
			signedBy = strings.Join(opts, " ")
		}
		if len(f) < 2 {
			continue
		}
		if isDebianEntry([]string{f[1]}, signedBy) {
			keep = append(keep, line)
		}
	}
	return keep
}

// debianStanzas keeps the deb822 stanzas of type deb that are Debian's.
func debianStanzas(data string) []string {
	var keep []string
	for _, stanza := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n\n") {
		fields := deb822Fields(stanza)
		if fields["enabled"] == "no" || !strings.Contains(" "+fields["types"]+" ", " deb ") {
			continue
		}
		if isDebianEntry(strings.Fields(fields["suites"]), fields["signed-by"]) {
			keep = append(keep, strings.TrimSpace(stanza))
		}
	}
	return keep
}

func deb822Fields(stanza string) map[string]string {
	m := map[string]string{}
	last := ""
	for _, line := range strings.Split(stanza, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				m[last] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		m[last] = strings.TrimSpace(v)
	}
	return m
}

// HostDebianMirror is the main Debian archive this machine's apt sources
// name (tests and the VM test host are made from it; the tool itself
// takes the archive from its user).
func HostDebianMirror() (string, error) { return hostDebianMirror() }

// hostDebianMirror returns the URI of the configured main archive (the
// entry serving the bare suite, not -security or -updates).
func hostDebianMirror() (string, error) {
	files, err := hostDebianSources()
	if err != nil {
		return "", err
	}
	var fallback string
	for _, f := range files {
		if strings.HasSuffix(f.name, ".sources") {
			for _, st := range strings.Split(string(f.data), "\n\n") {
				fields := deb822Fields(st)
				uris := strings.Fields(fields["uris"])
				if len(uris) == 0 {
					continue
				}
				if fallback == "" {
					fallback = uris[0]
				}
				for _, s := range strings.Fields(fields["suites"]) {
					if s == suite {
						return uris[0], nil
					}
				}
			}
			continue
		}
		for _, line := range strings.Split(string(f.data), "\n") {
			fl := strings.Fields(line)
			for len(fl) > 1 && (fl[0] == "deb" || strings.HasPrefix(fl[0], "[") || strings.HasSuffix(fl[0], "]") || strings.Contains(fl[0], "=")) {
				fl = fl[1:]
			}
			if len(fl) < 2 {
				continue
			}
			if fallback == "" {
				fallback = fl[0]
			}
			if fl[1] == suite {
				return fl[0], nil
			}
		}
	}
	if fallback == "" {
		return "", fmt.Errorf("no Debian mirror URI in the host's apt sources")
	}
	return fallback, nil
}
