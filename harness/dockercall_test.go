package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A library call that never returns is abandoned at its deadline and named
// as such; the caller's own cancellation stays an interruption.
func TestBoundedAbandonsAHungCall(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	err := Bounded(context.Background(), 100*time.Millisecond, func() error { <-block; return nil })
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Bounded returned after %s", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Bounded(ctx, time.Minute, func() error { <-block; return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	if err := Bounded(context.Background(), time.Minute, func() error { return errors.New("refused") }); err == nil || err.Error() != "refused" {
		t.Fatalf("a call's own error must come through: %v", err)
	}
}

func TestCallErrorNamesCallContainerAndState(t *testing.T) {
	err := error(&CallError{Call: "docker exec sh", Container: "5a7cc816ebca7e84c319", Err: errNoAnswer{5 * time.Second},
		State: "docker: paused; kernel: freezer FROZEN"})
	want := "docker exec sh [container 5a7cc816ebca]: no answer within 5s (abandoned); container state: docker: paused; kernel: freezer FROZEN"
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err.Error(), want)
	}
	wrapped := errors.Join(errors.New("read process table"), err)
	if !IsDockerFault(wrapped) || ContainerEnded(wrapped) {
		t.Fatalf("IsDockerFault/ContainerEnded of %v", wrapped)
	}
	if !ContainerEnded(&CallError{Err: errors.New("x"), Ended: true}) {
		t.Fatal("an ended container is ended")
	}
}

// Where the kernel's files are absent, the state is "unknown", never a guess.
func TestKernelViewOfAnAbsentContainer(t *testing.T) {
	const id = "0000000000000000000000000000000000000000000000000000000000000000"
	if got := FreezerState(id); got != "unknown" {
		t.Fatalf("freezer of an absent container: %q", got)
	}
	if got := oomKills(id); got != -1 {
		t.Fatalf("OOM kills of an absent container: %d", got)
	}
	if err := thawFreezer(id); err == nil {
		t.Fatal("thawing an absent cgroup must fail")
	}
}
