package image

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// Two builds on one engine take turns; on two engines they do not wait for
// each other; a wait ends with its context.
func TestBuildLockTakesTurns(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx := context.Background()
	unlock, err := lockBuilds(ctx, "unix:///one.sock", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	other, err := lockBuilds(ctx, "unix:///two.sock", io.Discard)
	if err != nil {
		t.Fatalf("another engine's builds wait: %v", err)
	}
	other()

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	var said strings.Builder
	if _, err := lockBuilds(short, "unix:///one.sock", &said); err == nil {
		t.Fatal("a second build on the same engine did not wait")
	}
	if !strings.Contains(said.String(), "waiting for another build on unix:///one.sock") {
		t.Errorf("the wait was not said: %q", said.String())
	}

	got := make(chan error, 1)
	go func() {
		u, err := lockBuilds(ctx, "unix:///one.sock", io.Discard)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting build never got the lock once it was released")
	}
}
