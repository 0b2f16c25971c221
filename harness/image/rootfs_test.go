package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	dc "github.com/ory/dockertest/v3/docker"
)

func names(ps []rootPkg) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Package)
	}
	return strings.Join(out, " ")
}

// The minbase set: the required packages and apt, closed over Depends and
// Pre-Depends; an alternative already chosen satisfies a clause; a virtual
// package is met by its provider; versions and qualifiers are read past.
func TestMinbaseChoosesRequiredAptAndTheirDependencies(t *testing.T) {
	idx := []rootPkg{
		{Package: "dash", Priority: "required", PreDepends: "libc6 (>= 2.34)"},
		{Package: "libc6", Priority: "optional", Depends: "libgcc-s1"},
		{Package: "libgcc-s1", Priority: "optional", Depends: "gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)"},
		{Package: "gcc-12-base", Priority: "optional"},
		{Package: "mawk", Priority: "required", PreDepends: "libc6"},
		{Package: "debconf", Priority: "required", PreDepends: "perl-base (>= 5.20.1-3~)"},
		{Package: "perl-base", Priority: "required", PreDepends: "libc6, dpkg (>= 1.17.17)"},
		{Package: "dpkg", Priority: "required", PreDepends: "libc6 (>= 2.34), tar (>= 1.28-1)"},
		{Package: "tar", Priority: "required"},
		{Package: "apt", Priority: "important", Depends: "adduser, gpgv | gpgv2, libapt-pkg6.0 (>= 2.6.1), debian-archive-keyring, libstdc++6:any"},
		{Package: "adduser", Priority: "important", Depends: "passwd"},
		{Package: "passwd", Priority: "required", Depends: "awk"}, // virtual: mawk provides it
		{Package: "gpgv", Priority: "important"},
		{Package: "gpgv2", Priority: "optional"},
		{Package: "libapt-pkg6.0", Priority: "optional", Depends: "libc6"},
		{Package: "debian-archive-keyring", Priority: "important"},
		{Package: "libstdc++6", Priority: "optional"},
		{Package: "gawk", Priority: "optional", Provides: "awk"},
		{Package: "unrelated", Priority: "optional", Depends: "libc6"},
	}
	idx[4].Provides = "awk"
	req, base, err := minbase(idx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(req), "dash debconf dpkg gcc-12-base libc6 libgcc-s1 mawk passwd perl-base tar"; got != want {
		t.Errorf("required:\n got %s\nwant %s", got, want)
	}
	if got, want := names(base), "adduser apt debian-archive-keyring gpgv libapt-pkg6.0 libstdc++6"; got != want {
		t.Errorf("base:\n got %s\nwant %s", got, want)
	}
}

func TestMinbaseNamesAMissingDependency(t *testing.T) {
	_, _, err := minbase([]rootPkg{
		{Package: "dash", Priority: "required", Depends: "libc6 | musl"},
		{Package: "apt", Priority: "important"},
	})
	if err == nil || !strings.Contains(err.Error(), "dash depends on libc6 | musl, which the suite does not serve") {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := minbase([]rootPkg{{Package: "dash", Priority: "required"}}); err == nil || !strings.Contains(err.Error(), "no apt") {
		t.Fatalf("without apt: err = %v", err)
	}
}

func TestMergedPath(t *testing.T) {
	for in, want := range map[string]string{
		"./bin/sh":                      "usr/bin/sh",
		"./bin/":                        "usr/bin",
		"./lib64/ld-linux-x86-64.so.2":  "usr/lib64/ld-linux-x86-64.so.2",
		"./lib/x86_64-linux-gnu/libc.6": "usr/lib/x86_64-linux-gnu/libc.6",
		"./libexec/x":                   "libexec/x",
		"./usr/bin/dpkg":                "usr/bin/dpkg",
		"./etc/passwd":                  "etc/passwd",
		"/sbin/ldconfig":                "usr/sbin/ldconfig",
		"./binary/x":                    "binary/x",
	} {
		if got, _ := mergedPath(in); got != want {
			t.Errorf("mergedPath(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := mergedPath("./"); ok {
		t.Error("the root itself is written")
	}
}

// fakeDeb is a .deb holding data (a tar, uncompressed).
func fakeDeb(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	for name, body := range files {
		if target, ok := strings.CutPrefix(body, "->"); ok {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
			continue
		}
		if strings.HasSuffix(name, "/") {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	var deb bytes.Buffer
	deb.WriteString("!<arch>\n")
	member := func(name string, body []byte) {
		fmt.Fprintf(&deb, "%-16s%-12s%-6s%-6s%-8s%-10d`\n", name, "0", "0", "0", "100644", len(body))
		deb.Write(body)
		if len(body)%2 == 1 {
			deb.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar", []byte("odd")) // an odd size: the padding byte is skipped
	member("data.tar", data.Bytes())
	return deb.Bytes()
}

// The first stage's tar: each package's files under a merged /usr, each
// path once (the first package's), the links into /usr, and dpkg feigned
// installed.
func TestFirstStageTar(t *testing.T) {
	var out bytes.Buffer
	rw := newRootWriter(&out)
	if err := rw.unpack("dash", fakeDeb(t, map[string]string{"./bin/": "", "./bin/dash": "dash", "./bin/sh": "->dash", "./usr/share/doc/dash/copyright": "c"})); err != nil {
		t.Fatal(err)
	}
	if err := rw.unpack("libc6", fakeDeb(t, map[string]string{"./lib64/ld-linux-x86-64.so.2": "->/lib/x86_64-linux-gnu/ld.so", "./usr/share/doc/dash/copyright": "other"})); err != nil {
		t.Fatal(err)
	}
	if err := rw.finish("1.21.22"); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("%s written twice", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "->" + h.Linkname
		case tar.TypeDir:
			got[h.Name] = "dir"
		default:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
	}
	for name, want := range map[string]string{
		"usr/bin/":                       "dir",
		"usr/bin/dash":                   "dash",
		"usr/bin/sh":                     "->dash",
		"usr/share/doc/dash/copyright":   "c",
		"usr/lib64/ld-linux-x86-64.so.2": "->/lib/x86_64-linux-gnu/ld.so",
		"bin":                            "->usr/bin",
		"sbin":                           "->usr/sbin",
		"lib":                            "->usr/lib",
		"lib64":                          "->usr/lib64",
		"var/lib/dpkg/status":            "Package: dpkg\nVersion: 1.21.22\nMaintainer: unknown\nStatus: install ok installed\n",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "lib64/") || strings.HasPrefix(name, "./") {
			t.Errorf("%s: not under the merged /usr", name)
		}
	}
	if _, ok := got["lib32"]; ok {
		t.Error("lib32 linked although no package uses it")
	}
}

func TestDebMemberRefusesWhatIsNotADeb(t *testing.T) {
	if _, _, err := debMember([]byte("PK\x03\x04 a zip"), "data.tar"); err == nil {
		t.Error("a zip read as a .deb")
	}
	deb := fakeDeb(t, map[string]string{"./a": "a"})
	if _, _, err := debMember(deb[:len(deb)-10], "data.tar"); err == nil {
		t.Error("a truncated .deb read")
	}
	if _, _, err := debMember(deb, "data.tar.zst"); err == nil {
		t.Error("a member that is not there found")
	}
}

// Live: the bookworm root the tool bootstraps from the archive this host
// names, with no debootstrap; every package installed and configured by
// dpkg (the second stage checks it), apt at hand, /usr merged. The package
// files are cached by content, so a warm run only unpacks and installs.
func TestBootstrappedRoot(t *testing.T) {
	pool, err := harness.Connect()
	if err != nil {
		t.Fatalf("container tests need a reachable engine: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ref := fmt.Sprintf("%s:test-%d", rootfsRepo, os.Getpid())
	start := time.Now()
	var progress bytes.Buffer
	if err := rootfsImport(ctx, pool, suite, ref, &progress); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Cleanup(func() {
		harness.Bounded(context.Background(), harness.CallTimeout, func() error {
			return pool.Client.RemoveImageExtended(ref, dc.RemoveImageOptions{Force: true})
		})
	})
	t.Logf("the %s root in %s:\n%s", suite, time.Since(start).Round(time.Second), progress.String())
	box, err := createBox(ctx, pool, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	defer box.remove()
	out, err := box.script(ctx, "inspect the root", nil, `set -eu
readlink /bin; readlink /lib
apt-get --version | head -n1
dpkg-query -W -f='${Package}\n' | wc -l
dpkg-query -W -f='${db:Status-Abbrev}\n' | sort -u
test -s /etc/passwd && grep -c '^root:' /etc/passwd
test ! -e /nginx-upgrade-harness-root && echo clean`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || lines[0] != "usr/bin" || lines[1] != "usr/lib" || !strings.HasPrefix(lines[2], "apt ") ||
		strings.TrimSpace(lines[4]) != "ii" || lines[5] != "1" || lines[6] != "clean" {
		t.Fatalf("the root is not what a minbase bootstrap makes:\n%s", out)
	}
	t.Logf("%s packages, %s", lines[3], lines[2])
}
