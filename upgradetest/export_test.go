package upgradetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

// StandInBuild writes the default pair's new nginx (bookworm-security's,
// from its cached image) to path: a user's own build for the README's
// spec to run against when NGINX_BINARY names none. The path is kept from
// one run to the next, so that the pair image it makes is found in the
// cache again (the image's key holds the spec).
func StandInBuild(ctx context.Context, path string) error {
	e, err := NewEngine(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	p, err := e.Pair(ctx, image.DefaultFrom, image.DefaultTo)
	if err != nil {
		return err
	}
	defer os.RemoveAll(p.Dir())
	n, err := nginx.StartNode(ctx, e.pool, nginx.WithImage(p.images.Good), nginx.WithoutStart())
	if err != nil {
		return err
	}
	defer n.Close()
	exe, err := n.ReadFile(ctx, harness.NewBinaryStage)
	if err != nil {
		return err
	}
	r, err := n.Exec(ctx, "sha256sum", harness.NewBinaryStage)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(exe)
	if got := hex.EncodeToString(sum[:]); !strings.HasPrefix(r.Stdout, got) {
		return fmt.Errorf("%s read back with sha256 %s, the container says %s", harness.NewBinaryStage, got, r.Stdout)
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(exe) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, exe, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
