package harness

import (
	"os"
	"strings"

	"github.com/ory/dockertest/v3"
)

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
