package upgradetest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// TestMyBuild runs the README's spec (example_test.go) against the build
// NGINX_BINARY names, or when it names none, against a stand-in: the
// default pair's new nginx copied out of its image.
func TestMyBuild(t *testing.T) {
	if os.Getenv("NGINX_BINARY") == "" {
		path := filepath.Join(os.TempDir(), "nginx-upgrade-harness-upgradetest", "nginx")
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
		defer cancel()
		if err := upgradetest.StandInBuild(ctx, path); err != nil {
			t.Fatalf("a stand-in for a user's build: %v", err)
		}
		t.Setenv("NGINX_BINARY", path)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "a user's own build")
}
