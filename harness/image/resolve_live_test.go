package image

import (
	"context"
	"os"
	"testing"
	"time"
)

// The archive as it is today: the default specs resolve to versions the
// suites serve, with their package files fetched and checked.
func TestResolveLiveArchive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := NewResolver(WithProgress(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	var bs []*Build
	for _, spec := range []string{DefaultFrom, DefaultTo, "source:stable", "debian:trixie"} {
		b, err := ParseBuild(spec)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, &b)
	}
	start := time.Now()
	if err := r.Resolve(ctx, bs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("resolved in %s", time.Since(start))
	for _, b := range bs {
		if b.Res == nil || b.Res.Version == "" || len(b.Res.SHA256) != 64 {
			t.Errorf("%s: resolution %+v", b.Spec, b.Res)
		}
		t.Logf("%s → %s", b.Spec, b.Exact())
	}
}
