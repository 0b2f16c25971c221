package nginx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSystemdHost(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1")
	os.MkdirAll(filepath.Join(v1, "systemd"), 0o755)
	os.WriteFile(filepath.Join(v1, "systemd", "cgroup.procs"), nil, 0o644)
	v2 := filepath.Join(dir, "v2")
	os.MkdirAll(v2, 0o755)
	os.WriteFile(filepath.Join(v2, "cgroup.controllers"), nil, 0o644)
	bare := filepath.Join(dir, "bare")
	os.MkdirAll(bare, 0o755)
	for root, want := range map[string]string{
		v1:                           "",
		v2:                           "is cgroup v2",
		bare:                         "no name=systemd hierarchy",
		filepath.Join(dir, "absent"): "no cgroup tree at",
	} {
		err := CheckSystemdHost(root)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", root, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: got %v, want one line with %q", root, err, want)
		}
	}
}
