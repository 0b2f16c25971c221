package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockBuilds takes the machine-wide lock on image builds for one engine,
// so that two runs (or two test binaries) that miss the same image build it
// once, one after the other, instead of twice side by side. It is taken
// only when a build is needed; the caller looks the image up again once it
// holds it. The wait honours ctx; unlock releases the lock.
func lockBuilds(ctx context.Context, endpoint string, progress io.Writer) (unlock func(), err error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	sum := sha256.Sum256([]byte(endpoint))
	path := filepath.Join(dir, "build-"+hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	for said := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("build lock %s: %w", path, err)
		}
		if !said {
			fmt.Fprintf(progress, "waiting for another build on %s to end (lock %s)…\n", endpoint, path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another build on %s: %w", endpoint, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
