package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
)

// cleanupTimeout bounds what the first Ctrl-C (or SIGTERM) sets off: the
// load stops, the containers are removed, the report is written. Every
// Docker call in it has its own deadline; this is the backstop.
const cleanupTimeout = 90 * time.Second

// interrupts is what a command registers for the case it cannot finish on
// its own: the report directory to render from what is on disk.
type interrupts struct {
	mu  sync.Mutex
	out string
}

type interruptsKey struct{}

// reportDirOnExit records the directory whose report must be written even
// when the process exits on a second signal.
func reportDirOnExit(ctx context.Context, dir string) {
	if in, ok := ctx.Value(interruptsKey{}).(*interrupts); ok {
		in.mu.Lock()
		in.out = dir
		in.mu.Unlock()
	}
}

// runInterruptible runs fn with a context that the first SIGINT or SIGTERM
// cancels (fn then stops the load, removes its containers and writes the
// report, itself under deadlines). A second signal, or a cleanup that
// outlasts cleanupTimeout, ends the wait at once: the report is rendered
// from what is on disk, the containers still there are named for `prune`,
// and the exit code is 2.
func runInterruptible(stderr io.Writer, fn func(ctx context.Context) int) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	in := &interrupts{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), interruptsKey{}, in))
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- fn(ctx) }()
	var sig os.Signal
	select {
	case code := <-done:
		return code
	case sig = <-sigs:
	}
	fmt.Fprintf(stderr, "nginx-upgrade-harness: %s: stopping the load, removing the containers, writing the report (send it again to exit at once)\n", sig)
	cancel()
	select {
	case code := <-done:
		return code
	case sig = <-sigs:
		fmt.Fprintf(stderr, "nginx-upgrade-harness: %s again: exiting now\n", sig)
	case <-time.After(cleanupTimeout):
		fmt.Fprintf(stderr, "nginx-upgrade-harness: clean-up did not end within %s: exiting now\n", cleanupTimeout)
	}
	in.mu.Lock()
	out := in.out
	in.mu.Unlock()
	if out != "" {
		if _, err := renderAny(out); err != nil {
			fmt.Fprintf(stderr, "nginx-upgrade-harness: report: %s\n", oneLine(err.Error()))
		} else {
			fmt.Fprintf(stderr, "report: %s (what was measured until now)\n", filepath.Join(out, "report.md"))
		}
	}
	printLeftBehind(stderr)
	return exitBadInput
}

// renderAny re-renders a run or a compare directory from its records.
func renderAny(dir string) (any, error) {
	if reports.IsMatrixDir(dir) {
		return reports.RenderMatrix(dir, reports.MatrixOptions{Write: true})
	}
	if _, err := os.Stat(filepath.Join(dir, reports.CompareFile)); err == nil {
		return reports.RenderCompare(dir)
	}
	return reports.Render(dir)
}

// printLeftBehind names this process's containers that are still there,
// for `nginx-upgrade-harness prune`, within a few seconds.
func printLeftBehind(stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	left, err := harness.OwnContainers(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "nginx-upgrade-harness: could not list the containers left behind (%s): run `nginx-upgrade-harness prune --run %s` once Docker answers\n", oneLine(err.Error()), harness.RunID())
	case len(left) > 0:
		for _, c := range left {
			fmt.Fprintf(stderr, "left behind: %s\n", c)
		}
		fmt.Fprintf(stderr, "nginx-upgrade-harness: %d container(s) left behind: this run's reaper, if it has one, removes them within %s; else `nginx-upgrade-harness prune --run %s` does\n",
			len(left), harness.ReaperGrace, harness.RunID())
	}
}
