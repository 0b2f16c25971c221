// Command harness-bench measures the harness's own load generator against
// one nginx container: its highest sustained rate next to the vegeta CLI's,
// its peak memory over a million requests, and the time to render the
// reports of that million; and the rate its load holds while the steps of
// an upgrade run, phase by phase. `make bench` runs it; figures, not
// assertions.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/judge"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

func main() {
	mode := flag.String("mode", "rate", "rate: harness vs vegeta CLI at -rate=0; memory: peak memory over --requests requests, then the render time of their reports; "+
		"steps: the rate the load holds in every phase of the upgrade scenario (GET, keep-alive) at each of --rates")
	rates := flag.String("rates", "2000,4000,6000", "steps: the rates to try, in order; it stops at the first one a phase falls below 80% of")
	toBuild := flag.String("to", image.DefaultTo, "the new build of the pair (steps, and the image the other modes run)")
	workers := flag.Uint64("workers", 32, "concurrent workers for both load generators")
	duration := flag.Duration("duration", 10*time.Second, "length of each rate measurement")
	requests := flag.Uint64("requests", 1_000_000, "requests for the memory measurement")
	vegetaBin := flag.String("vegeta", "vegeta", "the vegeta CLI")
	out := flag.String("out", filepath.Join("reports-out", "bench"), "where the measurement's records go")
	inNetns := flag.Bool("netns", os.Geteuid() == 0, "send both loads from inside the container's network namespace (vegeta through nsenter), not through Docker's port proxy")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *mode, *workers, *duration, *requests, *vegetaBin, *out, *inNetns, *rates, *toBuild); err != nil {
		fmt.Fprintf(os.Stderr, "harness-bench: %v\n", err)
		os.Exit(2)
	}
}

// target is where both loads go: the container's own loopback (entered
// with setns for the harness, nsenter for the vegeta CLI) or the port
// published on the host's loopback.
type target struct {
	url   string
	netns string // "" : the host's network namespace
}

func (t target) opts() []loadgen.Option {
	if t.netns == "" {
		return nil
	}
	return []loadgen.Option{loadgen.InNetns(t.netns)}
}

func (t target) String() string {
	if t.netns == "" {
		return t.url + " through Docker's port proxy"
	}
	return t.url + " inside the container's network namespace"
}

func run(ctx context.Context, mode string, workers uint64, d time.Duration, requests uint64, vegetaBin, out string, inNetns bool, rates, toBuild string) error {
	pool, err := harness.Connect()
	if err != nil {
		return err
	}
	from, _ := image.ParseBuild(image.DefaultFrom)
	to, err := image.ParseBuild(toBuild)
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	info, err := image.EnsureImage(ctx, pool, from, to, os.Stderr)
	if err != nil {
		return err
	}
	if mode == "steps" {
		return steps(ctx, pool, scenarios.Params{From: from, To: to}, info.Ref, rates, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if mode != "rate" && mode != "memory" {
		return fmt.Errorf("unknown mode %q", mode)
	}
	// The server's log (the second witness) is part of what nginx does
	// under the harness's configuration: the rate is measured with it on
	// and off, the memory with it on.
	configs := []struct {
		name string
		conf []byte
	}{{"server log on", []byte(nginx.DefaultConfig)}, {"server log off", nginx.WithoutWitness([]byte(nginx.DefaultConfig))}}
	if mode == "memory" {
		configs = configs[:1]
	}
	for _, c := range configs {
		if err := func() error {
			node, err := nginx.StartNode(ctx, pool, nginx.WithImage(info.Ref), nginx.WithConfig(c.conf))
			if err != nil {
				return err
			}
			defer node.Close()
			tg := target{url: node.URL()}
			if inNetns {
				tg = target{url: node.InnerURL(), netns: node.NetnsPath()}
			}
			fmt.Printf("== %s; load target: %s\n", c.name, tg)
			if mode == "memory" {
				return memory(ctx, tg, workers, requests, out)
			}
			if err := rate(ctx, tg, workers, d, vegetaBin, out); err != nil {
				return err
			}
			if node.Witness() {
				return logSize(ctx, node)
			}
			return nil
		}(); err != nil {
			return err
		}
	}
	return nil
}

// logSize says how large the server's log grew per 100,000 of the
// harness's requests (the lines with an id: the vegeta CLI sends none).
func logSize(ctx context.Context, node *nginx.Node) error {
	r, err := node.Exec(ctx, "awk", `/"id":"[^"]/ {n++; b += length($0) + 1} END {print n+0, b+0}`, nginx.WitnessLog)
	if err != nil || r.Exit != 0 {
		return fmt.Errorf("measure the server's log: %v %s", err, r.Stderr)
	}
	f := strings.Fields(r.Stdout)
	if len(f) != 2 {
		return fmt.Errorf("measure the server's log: %q", r.Stdout)
	}
	lines, _ := strconv.ParseFloat(f[0], 64)
	size, _ := strconv.ParseFloat(f[1], 64)
	if lines == 0 {
		return fmt.Errorf("the server's log is empty")
	}
	fmt.Printf("server log: %.0f lines, %.1f MB; %.1f MB per 100,000 requests (%.0f bytes a line)\n",
		lines, size/(1<<20), size/lines*100000/(1<<20), size/lines)
	return nil
}

// rate runs the vegeta CLI and the harness's load, each at -rate=0 with the
// same workers and keep-alive, against the same nginx, twice in alternation.
func rate(ctx context.Context, tg target, workers uint64, d time.Duration, vegetaBin, out string) error {
	var best [2]float64
	for round := 0; round < 2; round++ {
		v, err := vegetaRate(ctx, tg, workers, d, vegetaBin)
		if err != nil {
			return err
		}
		h, err := harnessRate(ctx, tg, workers, d, filepath.Join(out, "rate-"+strconv.Itoa(round)))
		if err != nil {
			return err
		}
		fmt.Printf("round %d: vegeta CLI %.0f req/s, harness %.0f req/s\n", round+1, v, h)
		best[0], best[1] = max(best[0], v), max(best[1], h)
	}
	fmt.Printf("highest sustained rate (best of 2, %d workers, keep-alive, %s each): harness %.0f req/s, vegeta CLI %.0f req/s, ratio %.2f (target >= 0.9)\n",
		workers, d, best[1], best[0], best[1]/best[0])
	return nil
}

func vegetaRate(ctx context.Context, tg target, workers uint64, d time.Duration, bin string) (float64, error) {
	w := strconv.FormatUint(workers, 10)
	argv := []string{bin, "attack", "-rate=0", "-workers=" + w, "-max-workers=" + w,
		"-duration=" + d.String(), "-keepalive=true", "-max-body=0"}
	if tg.netns != "" {
		argv = append([]string{"nsenter", "--net=" + tg.netns}, argv...)
	}
	attack := exec.CommandContext(ctx, argv[0], argv[1:]...)
	attack.Stdin = strings.NewReader("GET " + tg.url + "/\n")
	var results bytes.Buffer
	attack.Stdout = &results
	attack.Stderr = os.Stderr
	if err := attack.Run(); err != nil {
		return 0, fmt.Errorf("vegeta attack: %w", err)
	}
	report := exec.CommandContext(ctx, bin, "report", "-type=json")
	report.Stdin = &results
	b, err := report.Output()
	if err != nil {
		return 0, fmt.Errorf("vegeta report: %w", err)
	}
	var m struct {
		Throughput float64 `json:"throughput"`
		Success    float64 `json:"success"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	if m.Success < 0.999 {
		return 0, fmt.Errorf("vegeta CLI: success ratio %.4f: the measurement is not of a healthy nginx", m.Success)
	}
	return m.Throughput, nil
}

func harnessRate(ctx context.Context, tg target, workers uint64, d time.Duration, dir string) (float64, error) {
	os.RemoveAll(dir)
	l, err := loadgen.RunWithOptions(ctx, tg.url, loadgen.NewClock(), dir,
		[]loadgen.Profile{{Name: "max", Rate: 0, Workers: workers, KeepAlive: true, Duration: d}}, loadgen.Slow{}, tg.opts()...)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		return 0, err
	}
	p := s.Profiles[0]
	if p.Failed > 0 {
		return 0, fmt.Errorf("harness: %d of %d requests failed", p.Failed, p.Requests)
	}
	return p.Rate, nil
}

// steps runs the upgrade scenario under GET keep-alive at each rate and
// prints the rate the load achieved in each phase of a second or more —
// the figure the verdict's rate premise judges, taken while USR2, WINCH and
// QUIT run, not in a steady state. It stops at the first rate a phase fell
// below judge.MinRateFraction of: above it the load measures this
// machine, not nginx.
func steps(ctx context.Context, pool *dockertest.Pool, p scenarios.Params, ref, rates, out string) error {
	scs, err := scenarios.Lookup([]string{"upgrade"})
	if err != nil {
		return err
	}
	held := 0
	for _, f := range strings.Split(rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || rate <= 0 {
			return fmt.Errorf("-rates: %q is not a rate", f)
		}
		p.Load = scenarios.Load{Rate: rate, Method: "GET", KeepAlive: true, Slow: scenarios.DefaultLoad.Slow}
		dir := filepath.Join(out, "steps-"+strconv.Itoa(rate))
		os.RemoveAll(dir)
		if err := scenarios.Run(ctx, pool, scs[0], p, ref, dir, func(string, ...any) {}); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// Measured at 8000 req/s here: the load starves the Docker
			// exec a step needs. That rate did not hold either.
			fmt.Printf("upgrade at %d req/s GET keep-alive: could not run: %v\n", rate, err)
			fmt.Printf("rate held while steps run: %d req/s\n", held)
			return nil
		}
		r, err := scenarios.Render(dir)
		if err != nil {
			return err
		}
		s := r.Scenarios[0]
		lowest, where := 0.0, ""
		var each []string
		for _, ph := range s.Phases {
			if ph.LoadMs < judge.MinRatePhaseMs {
				continue
			}
			each = append(each, fmt.Sprintf("%s %.0f", ph.Name, ph.Rate))
			if where == "" || ph.Rate < lowest {
				lowest, where = ph.Rate, ph.Name
			}
		}
		fmt.Printf("upgrade at %d req/s GET keep-alive: lowest %.0f req/s in %s (%s); verdict %s\n",
			rate, lowest, where, strings.Join(each, ", "), s.Verdict)
		if lowest < judge.MinRateFraction*float64(rate) {
			fmt.Printf("rate held while steps run: %d req/s (at %d the load fell to %.0f in %s, below %.0f%%)\n",
				held, rate, lowest, where, judge.MinRateFraction*100)
			return nil
		}
		held = rate
	}
	fmt.Printf("rate held while steps run: at least %d req/s (every rate tried held in every phase)\n", held)
	return nil
}

// memory sends requests through the harness's load and samples the
// process's resident memory as it goes; then it times the three reports.
func memory(ctx context.Context, tg target, workers, requests uint64, out string) error {
	dir := filepath.Join(out, "million")
	os.RemoveAll(dir)
	sdir := filepath.Join(dir, "memory")
	clock := loadgen.NewClock()
	meta := record.Meta{Scenario: "memory", Expect: scenarios.ExpectZeroDrops, From: image.DefaultFrom, To: image.DefaultFrom,
		Load: record.Load{Rate: 0, Method: "GET", KeepAlive: true}, StartWall: clock.Start().Format(time.RFC3339Nano),
		LoadPath: "benchmark: " + tg.String()}
	os.MkdirAll(sdir, 0o755)
	b, _ := json.Marshal(meta)
	os.WriteFile(filepath.Join(sdir, record.MetaFile), b, 0o644)
	os.WriteFile(filepath.Join(sdir, record.EventsFile), nil, 0o644)
	start := time.Now()
	l, err := loadgen.RunWithOptions(ctx, tg.url, clock, sdir,
		[]loadgen.Profile{{Name: "max", Rate: 0, Workers: workers, KeepAlive: true, MaxRequests: requests, Duration: 30 * time.Minute}}, loadgen.Slow{}, tg.opts()...)
	if err != nil {
		return err
	}
	var peak uint64
	next := uint64(0)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		rss := rssBytes()
		peak = max(peak, rss)
		n := uint64(l.Snapshot().Profiles[0].Requests)
		if n >= next {
			fmt.Printf("%8d requests  rss %6.1f MB  heap in use %6.1f MB\n", n, mb(rss), mb(heapInUse()))
			next += requests / 10
		}
		if n >= requests || ctx.Err() != nil {
			break
		}
		<-tick.C
	}
	l.StopAttack()
	s, err := l.Close()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Printf("memory: %d requests (%d failed) in %s (%.0f req/s); peak resident memory %.1f MB (VmHWM %.1f MB) (target < 150 MB and flat)\n",
		s.Profiles[0].Requests, s.Profiles[0].Failed, elapsed.Round(time.Second), s.Profiles[0].Rate, mb(peak), mb(hwmBytes()))
	t0 := time.Now()
	if _, err := scenarios.Render(dir); err != nil {
		return err
	}
	fmt.Printf("render: report.json, report.md and report.html from %d results in %s (target < 10 s)\n",
		s.Profiles[0].Requests, time.Since(t0).Round(time.Millisecond))
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func rssBytes() uint64 { return procStatus("VmRSS:") }
func hwmBytes() uint64 { return procStatus("VmHWM:") }

func procStatus(key string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), key) {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 {
				kb, _ := strconv.ParseUint(fs[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
