package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// importSourcesImage imports an image holding only the given apt files, as
// Debian's own debian:RELEASE holds its sources (no registry here: the
// test writes the root file system).
func importSourcesImage(t *testing.T, ref string, files map[string]string) {
	t.Helper()
	pool, err := harness.Connect()
	if err != nil {
		t.Fatalf("this test reads an image on the engine: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/", "etc/apt/", "etc/apt/sources.list.d/"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755})
	}
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write([]byte(data))
	}
	tw.Close()
	repo, tag, _ := strings.Cut(ref, ":")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pool.Client.ImportImage(dc.ImportImageOptions{Context: ctx, Repository: repo, Tag: tag, Source: "-", InputStream: &buf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Client.RemoveImage(ref) })
}

// With no --archive, NUH_ARCHIVE nor host apt sources, the archive comes
// from the apt sources inside Debian's image on the engine; an image
// without them, or none at all, is one line naming the three places.
func TestArchiveFromTheEnginesDebianImage(t *testing.T) {
	pool, err := harness.Connect()
	if err != nil {
		t.Fatalf("this test reads an image on the engine: %v", err)
	}
	old := aptDir
	aptDir = t.TempDir() // a host with no apt at all
	t.Setenv(ArchiveEnv, "")
	t.Cleanup(func() {
		aptDir = old
		engineSources.Lock()
		engineSources.files, engineSources.from = nil, ""
		engineSources.Unlock()
	})
	if err := CheckArchive(); !errors.Is(err, ErrNoArchive) {
		t.Fatalf("no archive anywhere: %v, want ErrNoArchive", err)
	}
	ctx := context.Background()

	ref := "nginx-upgrade-harness/test-debian-sources:" + harness.RunID()
	importSourcesImage(t, ref, map[string]string{"etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: http://mirror.example.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: http://mirror.example.test/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: http://other.example.test/apt\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/other.gpg\n"})
	if err := useSourcesOf(ctx, pool, ref, false); err != nil {
		t.Fatal(err)
	}
	if err := CheckArchive(); err != nil {
		t.Fatalf("the image's sources are the archive: %v", err)
	}
	mirror, err := hostDebianMirror()
	if err != nil || mirror != "http://mirror.example.test/debian" {
		t.Fatalf("the main archive is %q (%v), want the image's", mirror, err)
	}
	files, _ := hostDebianSources()
	if len(files) != 1 || strings.Contains(string(files[0].data), "other.example.test") {
		t.Fatalf("the image's Debian sources only: %+v", files)
	}

	empty := "nginx-upgrade-harness/test-debian-sources-none:" + harness.RunID()
	importSourcesImage(t, empty, map[string]string{"etc/apt/sources.list": "# nothing\n"})
	for _, tc := range []struct{ ref, want string }{
		{empty, "holds no Debian bookworm apt sources"},
		{"nginx-upgrade-harness/no-such-image:" + harness.RunID(), "the engine has no nginx-upgrade-harness/no-such-image"},
	} {
		err := useSourcesOf(ctx, pool, tc.ref, false)
		if !errors.Is(err, ErrNoArchive) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--archive") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q and --archive", tc.ref, err, tc.want)
		}
	}
}
