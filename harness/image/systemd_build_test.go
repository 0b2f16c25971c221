package image

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
)

// TestBuildSystemdImage builds (or finds) the systemd variant of the pair
// named by NUH_SYSTEMD_PAIR; it is skipped without it.
func TestBuildSystemdImage(t *testing.T) {
	pair := os.Getenv("NUH_SYSTEMD_PAIR")
	if pair == "" {
		t.Skip("NUH_SYSTEMD_PAIR not set")
	}
	pool, err := dockertest.NewPool("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ref, err := EnsureSystemdImage(ctx, pool, pair, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(ref)
}
