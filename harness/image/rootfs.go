package image

// A Debian root file system made without debootstrap or any other host
// tool: debootstrap's first stage in Go (the suite's required packages and
// apt, with their dependencies, chosen from the signature-checked index,
// downloaded, checked against it and unpacked into one tar with a merged
// /usr), imported into the engine; its second stage (dpkg installing and
// configuring the same packages) in a container of that image, committed.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/ulikunitz/xz"
)

// rootPkg is one binary package of a suite's full index: the fields the
// first stage needs.
type rootPkg struct {
	Package    string `json:"p"`
	Version    string `json:"v"`
	Arch       string `json:"a"`
	Priority   string `json:"r,omitempty"`
	Depends    string `json:"d,omitempty"`
	PreDepends string `json:"pd,omitempty"`
	Provides   string `json:"pv,omitempty"`
	Filename   string `json:"f"`
	SHA256     string `json:"s"`
	Size       int64  `json:"z"`
}

// parseRootPackages keeps every package of a Packages index built for this
// machine or for all.
func parseRootPackages(r io.Reader) ([]rootPkg, error) {
	arch := debArch()
	var out []rootPkg
	err := stanzas(r, func(st string) {
		f := deb822Fields(st)
		if a := f["architecture"]; a != arch && a != "all" {
			return
		}
		size, _ := strconv.ParseInt(f["size"], 10, 64)
		out = append(out, rootPkg{Package: f["package"], Version: f["version"], Arch: f["architecture"],
			Priority: f["priority"], Depends: f["depends"], PreDepends: f["pre-depends"], Provides: f["provides"],
			Filename: f["filename"], SHA256: f["sha256"], Size: size})
	})
	return out, err
}

// minbase chooses debootstrap's minbase set from a suite's packages: every
// package of priority required, then apt, each with what it depends and
// pre-depends on (the first alternative the suite serves, a virtual
// package by its first provider, versions not compared: one suite is one
// consistent set). required comes first, base holds the rest, each sorted.
func minbase(pkgs []rootPkg) (required, base []rootPkg, err error) {
	by := map[string]*rootPkg{}
	providers := map[string][]string{}
	for i := range pkgs {
		p := &pkgs[i]
		if _, dup := by[p.Package]; dup {
			continue
		}
		by[p.Package] = p
		for _, v := range depNames(p.Provides) {
			providers[v] = append(providers[v], p.Package)
		}
	}
	var seeds []string
	for _, p := range pkgs {
		if p.Priority == "required" {
			seeds = append(seeds, p.Package)
		}
	}
	if len(seeds) == 0 {
		return nil, nil, errors.New("the index has no package of priority required")
	}
	if by["apt"] == nil {
		return nil, nil, errors.New("the index has no apt")
	}
	closure := func(seeds []string) (map[string]bool, error) {
		set := map[string]bool{}
		queue := append([]string(nil), seeds...)
		for _, s := range seeds {
			set[s] = true
		}
		satisfied := func(name string) bool {
			if set[name] {
				return true
			}
			for _, p := range providers[name] {
				if set[p] {
					return true
				}
			}
			return false
		}
		for len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			p := by[name]
			for _, clause := range depClauses(p.PreDepends + ", " + p.Depends) {
				done := false
				for _, alt := range clause {
					if satisfied(alt) {
						done = true
						break
					}
				}
				if done {
					continue
				}
				pick := ""
				for _, alt := range clause {
					if by[alt] != nil {
						pick = alt
						break
					}
					if ps := providers[alt]; len(ps) > 0 {
						pick = ps[0]
						break
					}
				}
				if pick == "" {
					return nil, fmt.Errorf("%s depends on %s, which the suite does not serve", name, strings.Join(clause, " | "))
				}
				set[pick] = true
				queue = append(queue, pick)
			}
		}
		return set, nil
	}
	req, err := closure(seeds)
	if err != nil {
		return nil, nil, err
	}
	all, err := closure(append(seeds, "apt"))
	if err != nil {
		return nil, nil, err
	}
	for name := range all {
		if req[name] {
			required = append(required, *by[name])
		} else {
			base = append(base, *by[name])
		}
	}
	sort.Slice(required, func(i, j int) bool { return required[i].Package < required[j].Package })
	sort.Slice(base, func(i, j int) bool { return base[i].Package < base[j].Package })
	return required, base, nil
}

// depClauses splits a Depends field into its clauses, each the package
// names of its alternatives (versions, architecture qualifiers and
// restrictions dropped).
func depClauses(field string) [][]string {
	var out [][]string
	for _, clause := range strings.Split(field, ",") {
		var alts []string
		for _, alt := range strings.Split(clause, "|") {
			if names := depNames(alt); len(names) > 0 {
				alts = append(alts, names[0])
			}
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out
}

// depNames is the package names of a comma-separated relation field.
func depNames(field string) []string {
	var out []string
	for _, item := range strings.Split(field, ",") {
		f := strings.Fields(item)
		if len(f) == 0 {
			continue
		}
		name, _, _ := strings.Cut(f[0], ":")
		name, _, _ = strings.Cut(name, "(")
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// mergedDirs are the top-level directories that are links into /usr in a
// merged-/usr root (Debian's layout since bookworm).
var mergedDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// mergedPath is where a package's member lands in a merged-/usr root,
// without a leading "./" or "/": bin/sh → usr/bin/sh. ok is false for the
// root itself.
func mergedPath(name string) (string, bool) {
	n := strings.TrimPrefix(strings.TrimPrefix(name, "."), "/")
	n = strings.TrimSuffix(n, "/")
	if n == "" {
		return "", false
	}
	first, _, _ := strings.Cut(n, "/")
	for _, d := range mergedDirs {
		if first == d {
			return "usr/" + n, true
		}
	}
	return n, true
}

// debMember returns the named member of a .deb (an ar archive) whose name
// starts with prefix ("data.tar"), with its full name.
func debMember(deb []byte, prefix string) (string, []byte, error) {
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(deb, []byte(magic)) {
		return "", nil, errors.New("not an ar archive")
	}
	off := len(magic)
	for off+60 <= len(deb) {
		h := deb[off : off+60]
		if string(h[58:60]) != "`\n" {
			return "", nil, fmt.Errorf("bad ar header at %d", off)
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(h[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 || int64(off+60)+size > int64(len(deb)) {
			return "", nil, fmt.Errorf("bad ar member size at %d", off)
		}
		body := deb[off+60 : off+60+int(size)]
		if strings.HasPrefix(name, prefix) {
			return name, body, nil
		}
		off += 60 + int(size)
		if off%2 == 1 {
			off++
		}
	}
	return "", nil, fmt.Errorf("no %s member", prefix)
}

// debData opens a .deb's data tar, decompressed.
func debData(deb []byte) (*tar.Reader, error) {
	name, body, err := debMember(deb, "data.tar")
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch name {
	case "data.tar":
		r = bytes.NewReader(body)
	case "data.tar.xz":
		if r, err = xz.NewReader(bytes.NewReader(body)); err != nil {
			return nil, fmt.Errorf("%s: %s", name, err)
		}
	case "data.tar.gz":
		if r, err = gzip.NewReader(bytes.NewReader(body)); err != nil {
			return nil, fmt.Errorf("%s: %s", name, err)
		}
	default:
		return nil, fmt.Errorf("%s: a compression this tool does not read", name)
	}
	return tar.NewReader(r), nil
}

// rootWriter unpacks packages' data into one tar, each path written once
// (the first package to ship it wins: dpkg puts every file in its place in
// the second stage).
type rootWriter struct {
	tw     *tar.Writer
	seen   map[string]bool
	merged map[string]bool // the merged directories some package uses
}

func newRootWriter(w io.Writer) *rootWriter {
	return &rootWriter{tw: tar.NewWriter(w), seen: map[string]bool{}, merged: map[string]bool{}}
}

// unpack writes a package's data into the root.
func (rw *rootWriter) unpack(pkg string, deb []byte) error {
	tr, err := debData(deb)
	if err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: data: %s", pkg, harness.OneLine(err.Error()))
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
		default:
			continue // devices and fifos: none in a base system's packages
		}
		name, ok := mergedPath(h.Name)
		if !ok || rw.seen[name] {
			continue
		}
		if first, _, _ := strings.Cut(strings.TrimPrefix(name, "usr/"), "/"); strings.HasPrefix(name, "usr/") {
			rw.merged[first] = true
		}
		hdr := *h
		hdr.Name = name
		if h.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			if hdr.Linkname, ok = mergedPath(h.Linkname); !ok {
				continue
			}
		}
		hdr.Format = tar.FormatPAX
		if err := rw.tw.WriteHeader(&hdr); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(rw.tw, tr); err != nil {
				return fmt.Errorf("%s: %s: %s", pkg, name, harness.OneLine(err.Error()))
			}
		}
		rw.seen[name] = true
	}
}

// file writes a regular file or a symbolic link (link != "") the tool
// itself adds to the root, unless a package shipped it.
func (rw *rootWriter) file(name string, mode int64, data []byte, link string) error {
	if rw.seen[name] {
		return nil
	}
	h := &tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if link != "" {
		h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, link
	}
	if err := rw.tw.WriteHeader(h); err != nil {
		return err
	}
	if link == "" {
		if _, err := rw.tw.Write(data); err != nil {
			return err
		}
	}
	rw.seen[name] = true
	return nil
}

// finish adds the links of the merged /usr and dpkg's starting database
// (dpkg itself feigned installed, as debootstrap does), and closes the tar.
func (rw *rootWriter) finish(dpkgVersion string) error {
	for _, d := range mergedDirs {
		if rw.merged[d] || d == "bin" || d == "sbin" || d == "lib" {
			if err := rw.file(d, 0o777, nil, "usr/"+d); err != nil {
				return err
			}
		}
	}
	// /bin/sh: dash ships it; the maintainer scripts need it before dash
	// is configured.
	if err := rw.file("usr/bin/sh", 0o777, nil, "dash"); err != nil {
		return err
	}
	status := fmt.Sprintf("Package: dpkg\nVersion: %s\nMaintainer: unknown\nStatus: install ok installed\n", dpkgVersion)
	for _, f := range []struct {
		name string
		data string
	}{
		{"var/lib/dpkg/status", status},
		{"var/lib/dpkg/available", "\n"},
		{"var/lib/dpkg/info/dpkg.list", ""},
	} {
		if err := rw.file(f.name, 0o644, []byte(f.data), ""); err != nil {
			return err
		}
	}
	return rw.tw.Close()
}

// secondStage is debootstrap's second stage for a minbase root, run as
// root in a container of the first stage's image. The package files are in
// /nginx-upgrade-harness-root/debs, listed with their names in its
// required and base files ("name file" per line).
const secondStage = `set -eu
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
R=/nginx-upgrade-harness-root
debfor() {
	for p in "$@"; do
		while read -r n f; do
			if [ "$n" = "$p" ]; then echo "$R/debs/$f"; fi
		done <"$R/required"
	done
}
core() {
	debs=$(debfor "$@")
	if [ -n "$debs" ]; then dpkg --force-depends --install $debs </dev/null; fi
}
all() { while read -r n f; do echo "$R/debs/$f"; done <"$R/$1"; }
/sbin/ldconfig
ln -sf mawk /usr/bin/awk
core base-passwd
core base-files
core dpkg
core libc6
core perl-base
rm -f /usr/bin/awk
core mawk
core debconf
dpkg --force-depends --unpack $(all required) </dev/null
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
mv /usr/sbin/start-stop-daemon /usr/sbin/start-stop-daemon.REAL
printf '#!/bin/sh\necho\necho "Warning: Fake start-stop-daemon called, doing nothing"\n' >/usr/sbin/start-stop-daemon
chmod 0755 /usr/sbin/start-stop-daemon
dpkg --configure --pending --force-configure-any --force-depends </dev/null
if [ -s "$R/base" ]; then
	dpkg --force-overwrite --force-confold --skip-same-version --unpack $(all base) </dev/null
	dpkg --force-confold --skip-same-version --configure -a </dev/null
fi
dpkg --configure -a </dev/null
mv /usr/sbin/start-stop-daemon.REAL /usr/sbin/start-stop-daemon
rm -f /usr/sbin/policy-rc.d
rm -rf "$R"
bad=$(dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' | grep -v '^ii ' || true)
if [ -n "$bad" ]; then echo "not installed and configured: $bad" >&2; exit 1; fi
`

// rootfsImport makes a minbase root of release from the archive the
// harness reads (its packages checked against the suite's signed index,
// as every build is) and saves it as ref.
func rootfsImport(ctx context.Context, pool *dockertest.Pool, release, ref string, progress io.Writer) error {
	cache, err := cacheDir()
	if err != nil {
		return err
	}
	suites, err := knownSuites()
	if err != nil {
		return err
	}
	var s suiteRef
	for _, k := range suites {
		if k.name == release {
			s = k
		}
	}
	if s.name == "" {
		return fmt.Errorf("no archive serves %s: name one with --archive", release)
	}
	a, err := newArchiveReader(cache)
	if err != nil {
		return err
	}
	start := time.Now()
	required, base, err := minbaseOf(ctx, a, s)
	if err != nil {
		return fmt.Errorf("the %s root: %w", release, err)
	}
	pkgs := append(append([]rootPkg(nil), required...), base...)
	var total int64
	for _, p := range pkgs {
		total += p.Size
	}
	fmt.Fprintf(progress, "the %s root: %d packages (%d of priority required and theirs, %d more for apt), %.1f MiB, from %s…\n",
		release, len(pkgs), len(required), len(base), float64(total)/(1<<20), s.uri)
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	for _, p := range pkgs {
		f := filepath.Join(debs, p.SHA256+".deb")
		if fileHasSHA256(f, p.SHA256) {
			continue
		}
		u := s.uri + "/" + p.Filename
		data, err := a.get(ctx, u, p.Size+1)
		if err != nil {
			return fmt.Errorf("the %s root: %w", release, err)
		}
		if got := sha256Hex(data); got != p.SHA256 || int64(len(data)) != p.Size {
			return fmt.Errorf("the %s root: %s: sha256 %s (%d bytes), the signed index says %s (%d bytes)", release, u, short(got), len(data), short(p.SHA256), p.Size)
		}
		if err := writeFileAtomic(f, data); err != nil {
			return err
		}
	}
	fmt.Fprintf(progress, "the %s root: packages checked against the signed index (%s); unpacking and importing…\n", release, since(start))

	// The first stage, streamed into the engine.
	repo, tag, _ := strings.Cut(ref, ":")
	stage1 := harness.ImportName(repo)
	files := make([][]byte, len(pkgs)) // read once: unpacked here, copied in for dpkg below
	for i, p := range pkgs {
		if files[i], err = os.ReadFile(filepath.Join(debs, p.SHA256+".deb")); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeFirstStage(pw, pkgs, files))
	}()
	ictx, cancel := context.WithTimeout(ctx, harness.BuildStepTimeout)
	importErr := pool.Client.ImportImage(dc.ImportImageOptions{Repository: stage1, Tag: tag, Source: "-",
		InputStream: pr, OutputStream: io.Discard, Context: ictx})
	cancel()
	pr.CloseWithError(errors.New("import ended"))
	if importErr != nil {
		return fmt.Errorf("the %s root: import: %s", release, harness.OneLine(importErr.Error()))
	}
	// The engine's name for it: Podman's ignores the tag asked for.
	stage1Ref, err := harness.ImportedAs(ctx, pool, stage1, tag)
	if err != nil {
		return fmt.Errorf("the %s root: import: %w", release, err)
	}
	defer harness.Bounded(context.Background(), harness.CallTimeout, func() error {
		return pool.Client.RemoveImageExtended(stage1Ref, dc.RemoveImageOptions{NoPrune: true})
	})

	// The second stage: dpkg in a container of it.
	box, err := createBox(ctx, pool, stage1Ref, true)
	if err != nil {
		return fmt.Errorf("the %s root: %w", release, err)
	}
	defer box.remove()
	var entries []tarEntry
	lists := map[string]*strings.Builder{"required": {}, "base": {}}
	for i, p := range pkgs {
		file := p.Package + ".deb"
		entries = append(entries, tarEntry{name: "debs/" + file, mode: 0o644, data: files[i]})
		list := "required"
		if i >= len(required) {
			list = "base"
		}
		fmt.Fprintf(lists[list], "%s %s\n", p.Package, file)
	}
	entries = append([]tarEntry{{name: "debs", mode: 0o755, dir: true}}, entries...)
	entries = append(entries, tarEntry{name: "required", mode: 0o644, data: []byte(lists["required"].String())},
		tarEntry{name: "base", mode: 0o644, data: []byte(lists["base"].String())})
	if _, err := box.run(ctx, "the "+release+" root: make its work directory", nil, "mkdir", "/nginx-upgrade-harness-root"); err != nil {
		return err
	}
	if err := box.upload(ctx, "/nginx-upgrade-harness-root", entries); err != nil {
		return fmt.Errorf("the %s root: copy the packages in: %w", release, err)
	}
	if _, err := box.script(ctx, "the "+release+" root: dpkg's second stage", nil, secondStage); err != nil {
		return err
	}
	if err := box.commit(ctx, repo, tag, nil); err != nil {
		return err
	}
	fmt.Fprintf(progress, "the %s root made (%s)\n", release, since(start))
	return nil
}

// minbaseOf reads s's full package index (signature and hash checked, kept
// in the cache by its hash) and chooses the minbase set from it.
func minbaseOf(ctx context.Context, a *archiveReader, s suiteRef) (required, base []rootPkg, err error) {
	_, hashes, err := a.release(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	p := s.component() + "/binary-" + debArch() + "/Packages.xz"
	h, ok := hashes[p]
	if !ok {
		return nil, nil, fmt.Errorf("its Release file lists no %s", p)
	}
	pkgs, err := readIndex(ctx, a, s, p, h, "root", parseRootPackages)
	if err != nil {
		return nil, nil, err
	}
	return minbase(pkgs)
}

// writeFirstStage writes the first stage's tar: every package's data
// (files[i] is pkgs[i]'s .deb), then the links and dpkg's database.
func writeFirstStage(w io.Writer, pkgs []rootPkg, files [][]byte) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rw := newRootWriter(bw)
	dpkgVersion := ""
	for i, p := range pkgs {
		if err := rw.unpack(p.Package, files[i]); err != nil {
			return err
		}
		if p.Package == "dpkg" {
			dpkgVersion = p.Version
		}
	}
	if dpkgVersion == "" {
		return errors.New("no dpkg among the packages")
	}
	if err := rw.finish(dpkgVersion); err != nil {
		return err
	}
	return bw.Flush()
}
