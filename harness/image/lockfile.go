package image

// The lock file (--lock): specs pinned to exact versions and hashes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Lock pins specs to exact versions and hashes: a run that obeys it uses
// the very same files as the run that wrote it.
type Lock struct {
	Schema  int                   `json:"schema"`
	Written string                `json:"written,omitempty"`
	Builds  map[string]Resolution `json:"builds"` // spec (source: without flags) → what it resolved to
}

// ReadLock reads a lock file.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("--lock %s: %s", path, harness.OneLine(err.Error()))
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil || l.Schema != 1 || l.Builds == nil {
		return nil, fmt.Errorf("--lock %s: not a lock file of this tool (want JSON with schema 1 and builds)", path)
	}
	return &l, nil
}

func (l *Lock) write(path string) error {
	l.Written = time.Now().UTC().Format(time.RFC3339)
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("--lock %s: %s", path, harness.OneLine(err.Error()))
	}
	return nil
}

func (r *Resolver) lockEntry(b Build) (Resolution, bool) {
	if r.lock == nil {
		return Resolution{}, false
	}
	e, ok := r.lock.Builds[lockKey(b)]
	return e, ok && e.Version != ""
}

// lockKey is what a lock entry is keyed by: the spec without configure
// flags (one tarball serves every flag set).
func lockKey(b Build) string {
	if b.Kind == KindSource {
		return KindSource + ":" + b.sourceName()
	}
	return b.Spec
}
