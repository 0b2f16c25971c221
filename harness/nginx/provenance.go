package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ory/dockertest/v3"
	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// BinaryIdentity is one nginx executable in a pair image: its path, SHA-256
// and what `nginx -V` prints (version, compiler, configure arguments).
type BinaryIdentity struct {
	Path, SHA256, V string
}

// ImageIdentity is a pair image's id and its two binaries (nil where they
// could not be read).
type ImageIdentity struct {
	ID       string
	Old, New *BinaryIdentity
}

// DescribeImage reads a pair image's id, and the SHA-256 and `nginx -V` of
// its old (installed) and new (staged) binaries, in a throwaway container.
func DescribeImage(ctx context.Context, pool *dockertest.Pool, ref string) (ImageIdentity, error) {
	var id ImageIdentity
	img, err := pool.Client.InspectImage(ref)
	if err != nil {
		return id, fmt.Errorf("inspect image %s: %s", ref, harness.OneLine(err.Error()))
	}
	id.ID = img.ID
	n, err := StartNode(ctx, pool, WithImage(ref), WithoutStart())
	if err != nil {
		return id, fmt.Errorf("describe image %s: %w", ref, err)
	}
	defer n.Close()
	read := func(path string) *BinaryIdentity {
		sum, err := n.Exec(ctx, "sha256sum", path)
		if err != nil || sum.Exit != 0 {
			return nil
		}
		v, err := n.Exec(ctx, path, "-V")
		if err != nil || v.Exit != 0 {
			return nil
		}
		return &BinaryIdentity{Path: path, SHA256: strings.Fields(sum.Stdout)[0],
			V: strings.TrimSpace(v.Stderr + v.Stdout)}
	}
	id.Old, id.New = read(harness.DefaultBinary), read(harness.NewBinaryStage)
	return id, nil
}

// ConfigSHA256 is the SHA-256 of the configuration under test (the
// harness's own when conf is nil).
func ConfigSHA256(conf []byte) string {
	if conf == nil {
		conf = []byte(DefaultConfig)
	}
	sum := sha256.Sum256(conf)
	return hex.EncodeToString(sum[:])
}
