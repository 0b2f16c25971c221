package image

import (
	"strings"
	"testing"
)

// Where the archive is: --archive, then NUH_ARCHIVE, then the host's apt
// sources; with none of them, one line asks for the flag.
func TestArchiveOrder(t *testing.T) {
	hostMirror := func(t *testing.T) string {
		t.Helper()
		m, err := hostDebianMirror()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	reset := func() { archiveFlag = "" }
	t.Cleanup(reset)

	t.Run("the variable outranks the host", func(t *testing.T) {
		reset()
		t.Setenv(ArchiveEnv, "http://env.invalid/debian/")
		if got := hostMirror(t); got != "http://env.invalid/debian" {
			t.Fatalf("mirror %q, want the variable's", got)
		}
		files, err := hostDebianSources()
		if err != nil {
			t.Fatal(err)
		}
		text := string(files[0].data)
		for _, want := range []string{"URIs: http://env.invalid/debian\nSuites: bookworm bookworm-updates", "URIs: http://env.invalid/debian-security\nSuites: bookworm-security"} {
			if !strings.Contains(text, want) {
				t.Errorf("sources lack %q:\n%s", want, text)
			}
		}
	})
	t.Run("the flag outranks the variable", func(t *testing.T) {
		reset()
		t.Setenv(ArchiveEnv, "http://env.invalid/debian")
		if err := UseArchive("https://flag.invalid/debian"); err != nil {
			t.Fatal(err)
		}
		if got := hostMirror(t); got != "https://flag.invalid/debian" {
			t.Fatalf("mirror %q, want the flag's", got)
		}
	})
	t.Run("the security archive from its own variable", func(t *testing.T) {
		reset()
		t.Setenv(ArchiveEnv, "http://env.invalid/debian")
		t.Setenv(ArchiveSecurityEnv, "http://sec.invalid/security")
		text, missing, err := suiteSources([]string{"trixie-security"})
		if err != nil || len(missing) > 0 {
			t.Fatalf("suiteSources: %v, missing %v", err, missing)
		}
		if !strings.Contains(text, "URIs: http://sec.invalid/security\nSuites: trixie-security") {
			t.Fatalf("trixie-security not from the security archive:\n%s", text)
		}
	})
	t.Run("a bad URI is named", func(t *testing.T) {
		reset()
		if err := UseArchive("ftp://x/debian"); err == nil || !strings.Contains(err.Error(), "not an http(s) URI") {
			t.Fatalf("UseArchive(ftp) = %v", err)
		}
		t.Setenv(ArchiveEnv, "not a uri")
		if _, err := hostDebianSources(); err == nil || !strings.Contains(err.Error(), ArchiveEnv) {
			t.Fatalf("a bad %s: %v", ArchiveEnv, err)
		}
	})
	t.Run("nothing names it: one line asks for the flag", func(t *testing.T) {
		reset()
		t.Setenv(ArchiveEnv, "")
		old := aptDir
		aptDir = t.TempDir()
		t.Cleanup(func() { aptDir = old })
		_, err := hostDebianSources()
		if err == nil || !strings.Contains(err.Error(), "pass --archive URI") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("no archive anywhere: %v", err)
		}
	})
}
