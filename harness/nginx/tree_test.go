package nginx

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTreeKeepsLinksAndModes(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "sites-available"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "sites-enabled"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("events {}\nhttp { include sites-enabled/*; }\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sites-available", "default"), []byte("server { listen 80; }\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "conf.d", ".gitkeep"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "key.pem"), []byte("secret"), 0o600))
	must(os.Symlink("/etc/nginx/sites-available/default", filepath.Join(dir, "sites-enabled", "default")))

	tree, err := ReadTree(dir)
	must(err)
	if string(tree.Main()) != "events {}\nhttp { include sites-enabled/*; }\n" {
		t.Errorf("Main = %q", tree.Main())
	}
	buf, err := tree.archive("nginx")
	must(err)
	got := map[string]*tar.Header{}
	tr := tar.NewReader(buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		got[h.Name] = h
	}
	if h := got["nginx/sites-enabled/default"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/nginx/sites-available/default" {
		t.Errorf("the link is not kept as a link: %+v", h)
	}
	if h := got["nginx/key.pem"]; h == nil || h.Mode != 0o600 {
		t.Errorf("the key's mode is not kept: %+v", h)
	}
	if got["nginx/conf.d/"] == nil || got["nginx/conf.d/.gitkeep"] != nil {
		t.Error("want the empty directory, without its .gitkeep")
	}
	sum := tree.SHA256()
	edited, changed, err := tree.Edited(func(_ string, b []byte) ([]byte, error) {
		return []byte(strings.ReplaceAll(string(b), "listen 80;", "listen 80 reuseport;")), nil
	})
	must(err)
	if len(changed) != 1 || changed[0] != "sites-available/default" {
		t.Errorf("changed %v", changed)
	}
	if edited.SHA256() == sum || tree.SHA256() != sum {
		t.Error("an edit changes the copy's identity, never the original's")
	}

	if _, err := ReadTree(filepath.Join(dir, "conf.d")); err == nil || !strings.Contains(err.Error(), "no nginx.conf") {
		t.Errorf("a directory without nginx.conf: %v", err)
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	m, err := ParseMount(dir + ":/var/www")
	if err != nil || m.Src != dir || m.Dst != "/var/www" {
		t.Errorf("ParseMount = %+v, %v", m, err)
	}
	for _, bad := range []string{dir, dir + ":relative", "/no/such/dir:/x", ":/x"} {
		if _, err := ParseMount(bad); err == nil {
			t.Errorf("ParseMount(%q): want an error", bad)
		}
	}
}
