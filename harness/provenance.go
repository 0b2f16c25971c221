package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/ory/dockertest/v3"
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
		return id, fmt.Errorf("inspect image %s: %s", ref, oneLine(err.Error()))
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
	id.Old, id.New = read(DefaultBinary), read(NewBinaryStage)
	return id, nil
}

// DockerVersion is the engine's version, as it reports it.
func DockerVersion(pool *dockertest.Pool) (string, error) {
	env, err := pool.Client.Version()
	if err != nil {
		return "", err
	}
	return env.Get("Version"), nil
}

// KernelRelease is the host kernel's release (uname -r).
func KernelRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
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
