// Command harness-soak runs the default suite back to back in one process
// and prints, after each run, what this process holds: containers left,
// goroutines, open file descriptors and resident memory. Nothing may grow.
// `make soak` runs it (SOAK_N runs, 20 by default).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

func main() {
	n := flag.Int("n", 20, "runs of the default suite")
	out := flag.String("out", filepath.Join("reports-out", "soak-"+time.Now().Format("2006-01-02T15-04-05")), "where each run's report goes (run-N/)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := soak(ctx, *n, *out); err != nil {
		fmt.Fprintf(os.Stderr, "harness-soak: %v\n", err)
		os.Exit(1)
	}
}

type sample struct {
	containers, goroutines, fds int
	rssMB                       float64
}

func soak(ctx context.Context, n int, out string) error {
	pool, err := harness.Connect()
	if err != nil {
		return err
	}
	var p scenarios.Params
	if p.From, err = image.ParseBuild(image.DefaultFrom); err != nil {
		return err
	}
	if p.To, err = image.ParseBuild(image.DefaultTo); err != nil {
		return err
	}
	if p.Broken, err = image.ParseBuild(scenarios.DefaultBroken); err != nil {
		return err
	}
	p.Load = scenarios.DefaultLoad
	if err := scenarios.ResolveBuilds(ctx, &p, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }); err != nil {
		return err
	}
	scs, err := scenarios.Lookup(nil)
	if err != nil {
		return err
	}
	quiet := func(string, ...any) {}
	im, err := scenarios.PrepareImages(ctx, pool, scs, p, quiet)
	if err != nil {
		return err
	}
	base := measure(ctx)
	fmt.Printf("%-5s %-9s %8s %11s %11s %5s %8s\n", "RUN", "VERDICTS", "SECONDS", "CONTAINERS", "GOROUTINES", "FDS", "RSS_MB")
	fmt.Printf("%-5s %-9s %8s %11d %11d %5d %8.1f\n", "start", "-", "-", base.containers, base.goroutines, base.fds, base.rssMB)
	var first, last sample
	for i := 1; i <= n && ctx.Err() == nil; i++ {
		t := time.Now()
		r, err := scenarios.RunSuite(ctx, pool, scs, p, im, filepath.Join(out, "run-"+strconv.Itoa(i)), quiet)
		if err != nil {
			return err
		}
		pass := 0
		var notPass []string
		for _, s := range r.Scenarios {
			if s.Verdict == record.VerdictPass {
				pass++
			} else {
				notPass = append(notPass, s.Name+"="+s.Verdict)
			}
		}
		last = measure(ctx)
		if i == 1 {
			first = last
		}
		fmt.Printf("%-5d %-9s %8.1f %11d %11d %5d %8.1f %s\n", i, fmt.Sprintf("%d/%d", pass, len(r.Scenarios)),
			time.Since(t).Seconds(), last.containers, last.goroutines, last.fds, last.rssMB, strings.Join(notPass, " "))
	}
	// Growth is judged against the first run (what a run leaves warmed up:
	// connection pools, buffers), with a small allowance for noise.
	var grew []string
	if last.containers > 0 {
		grew = append(grew, fmt.Sprintf("%d container(s) left", last.containers))
	}
	if last.goroutines > first.goroutines+5 {
		grew = append(grew, fmt.Sprintf("goroutines %d -> %d", first.goroutines, last.goroutines))
	}
	if last.fds > first.fds+5 {
		grew = append(grew, fmt.Sprintf("open fds %d -> %d", first.fds, last.fds))
	}
	if last.rssMB > first.rssMB*1.5+20 {
		grew = append(grew, fmt.Sprintf("resident memory %.1f -> %.1f MB", first.rssMB, last.rssMB))
	}
	if len(grew) > 0 {
		return fmt.Errorf("grew over the runs: %s", strings.Join(grew, "; "))
	}
	fmt.Println("flat: no container left, goroutines, fds and resident memory did not grow")
	return nil
}

// measure samples this process after letting the last run's goroutines end.
func measure(ctx context.Context) sample {
	time.Sleep(2 * time.Second)
	runtime.GC()
	var s sample
	s.goroutines = runtime.NumGoroutine()
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.Atoi(f[1])
				s.rssMB = float64(kb) / 1024
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if left, err := harness.OwnContainers(cctx); err == nil {
		s.containers = len(left)
	} else {
		s.containers = -1
	}
	return s
}
