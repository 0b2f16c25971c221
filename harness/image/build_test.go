package image

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseBuild(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "nginx")
	tarball := filepath.Join(dir, "nginx-1.26.3.tar.gz")
	for _, p := range []string{bin, tarball} {
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		spec    string
		want    Build
		wantErr string // substring of the error; "" means success
	}{
		{spec: DefaultFrom, want: Build{Kind: "debian", Suite: "bookworm", Spec: DefaultFrom}},
		{spec: DefaultTo, want: Build{Kind: "debian", Suite: "bookworm-security", Spec: DefaultTo}},
		{spec: "debian:1.22.1-9+deb12u9", want: Build{Kind: "debian", Version: "1.22.1-9+deb12u9", Spec: "debian:1.22.1-9+deb12u9"}},
		{spec: "debian:1:1.2-3", want: Build{Kind: "debian", Version: "1:1.2-3", Spec: "debian:1:1.2-3"}},
		{spec: "source:stable", want: Build{Kind: "source", Channel: "stable", Spec: "source:stable"}},
		{spec: "source:mainline:--with-debug", want: Build{Kind: "source", Channel: "mainline", Flags: "--with-debug", Spec: "source:mainline:--with-debug"}},
		{spec: "source:1.26.3", want: Build{Kind: "source", Version: "1.26.3", Spec: "source:1.26.3"}},
		{spec: "source:1.26.3:--without-http_gzip_module  --with-debug",
			want: Build{Kind: "source", Version: "1.26.3", Flags: "--without-http_gzip_module --with-debug", Spec: "source:1.26.3:--without-http_gzip_module  --with-debug"}},
		{spec: "source:1.26.3:--with-cc-opt=-DX=a:b",
			want: Build{Kind: "source", Version: "1.26.3", Flags: "--with-cc-opt=-DX=a:b", Spec: "source:1.26.3:--with-cc-opt=-DX=a:b"}},
		{spec: "source:" + tarball, want: Build{Kind: "source", Version: "1.26.3", Path: tarball, Spec: "source:" + tarball}},
		{spec: "source:" + tarball + ":--with-debug", want: Build{Kind: "source", Version: "1.26.3", Path: tarball, Flags: "--with-debug", Spec: "source:" + tarball + ":--with-debug"}},
		{spec: "binary:" + bin, want: Build{Kind: "binary", Path: bin, Spec: "binary:" + bin}},
		{spec: "image:nginx:1.27", want: Build{Kind: "image", Ref: "nginx:1.27", Spec: "image:nginx:1.27"}},

		{spec: "x", wantErr: `unknown build "x": want debian:SUITE|VERSION, source:stable|mainline|VERSION[:CONFIGURE-FLAGS], binary:PATH or image:REF`},
		{spec: "rpm:1.0", wantErr: `unknown build "rpm:1.0"`},
		{spec: "", wantErr: `unknown build ""`},
		{spec: "debian:", wantErr: "debian:: \"\" is neither a Debian suite"},
		{spec: "debian:Bookworm!", wantErr: "is neither a Debian suite"},
		{spec: "source:", wantErr: "neither stable, mainline, an upstream version"},
		{spec: "source:main", wantErr: "neither stable, mainline, an upstream version"},
		{spec: "source:/nope/nginx-1.2.3.tar.gz", wantErr: "source:/nope/nginx-1.2.3.tar.gz: no such file"},
		{spec: "binary:/nope", wantErr: "binary:/nope: no such file"},
		{spec: "binary:", wantErr: "want binary:PATH"},
		{spec: "binary:" + dir, wantErr: "not a regular file"},
		{spec: "image:", wantErr: "want image:REF"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseBuild(tc.spec)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseBuild(%q) = %+v, want error containing %q", tc.spec, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseBuild(%q) error = %q, want one line containing %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBuild(%q): %v", tc.spec, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseBuild(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
		})
	}
}

func TestPackagesPinnedTo(t *testing.T) {
	show := `Package: nginx
Version: 1.22.1-9+deb12u11
Depends: libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.0), zlib1g (>= 1:1.1.4), iproute2, nginx-common (<< 1.22.1-9+deb12u11.1~), nginx-common (>= 1.22.1-9+deb12u11)
Breaks: nginx-core (<< 1.22.1-6~)

Package: nginx
Version: 1.22.1-9+deb12u11
Depends: other (= 1.22.1-9+deb12u11)
`
	got := packagesPinnedTo(show, "1.22.1-9+deb12u11")
	want := []string{"nginx=1.22.1-9+deb12u11", "nginx-common=1.22.1-9+deb12u11"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("packagesPinnedTo = %v, want %v", got, want)
	}
}

func TestDebianSourcesFilter(t *testing.T) {
	deb822 := `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
`
	got := debianStanzas(deb822)
	if len(got) != 1 || !strings.Contains(got[0], "bookworm-updates") {
		t.Fatalf("debianStanzas kept %q, want the bookworm stanza only", got)
	}
	list := `deb http://mirror.example/debian bookworm main
deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.example/apt cloud-sdk main
# deb http://mirror.example/debian bookworm-backports main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security bookworm-security main
`
	lines := debianListLines(list)
	if len(lines) != 2 || strings.Contains(strings.Join(lines, "\n"), "cloud") {
		t.Fatalf("debianListLines kept %q", lines)
	}
}
