package scenarios_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/ory/dockertest/v3"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// Faults of the harness's own environment, injected from outside while the
// upgrade scenario runs. Each must end within its deadline — far below what
// a hang would take —, with an `error` verdict that names the cause, and
// leave no container behind.

// faultRun is one scenario run that a fault is injected into.
type faultRun struct {
	lines chan string // progress lines, for the injector to wait on
	dir   string
	pool  *dockertest.Pool // the pool the harness uses (a proxy's, for the engine fault)
}

func (f *faultRun) progress(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	progress("%s", line)
	select {
	case f.lines <- line:
	default:
	}
}

// waitFor returns true once a progress line contains s, false if ctx ends
// first (the scenario ended before the fault was due).
func (f *faultRun) waitFor(ctx context.Context, s string) bool {
	for {
		select {
		case l := <-f.lines:
			if strings.Contains(l, s) {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// container is the full id of the scenario's container of this process.
func (f *faultRun) container(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-q", "--no-trunc",
		"--filter", "label="+harness.Label+".scenario=upgrade",
		"--filter", "label="+harness.Label+".owner-pid="+strconv.Itoa(os.Getpid())).Output()
	Expect(err).NotTo(HaveOccurred())
	ids := strings.Fields(string(out))
	Expect(ids).To(HaveLen(1), "one upgrade container of this process")
	return ids[0]
}

// docker runs the docker CLI from outside, bounded by d.
func docker(ctx context.Context, d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// hostPID is the host's pid of the container's process whose command line
// starts with prefix ("nginx: master"), read with `docker top`.
func hostPID(ctx context.Context, id, prefix string) int {
	out, err := docker(ctx, 10*time.Second, "top", id, "-eo", "pid,args")
	Expect(err).NotTo(HaveOccurred(), out)
	for _, l := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.HasPrefix(strings.Join(f[1:], " "), prefix) {
			pid, err := strconv.Atoi(f[0])
			Expect(err).NotTo(HaveOccurred())
			return pid
		}
	}
	Fail(fmt.Sprintf("no process %q in %.12s: %s", prefix, id, out))
	return 0
}

type envFault struct {
	// inject runs beside the scenario; it may wait for progress lines.
	inject func(ctx context.Context, f *faultRun)
	// proxied runs the harness through a socket proxy to the engine, which
	// inject may close.
	proxied  bool
	loadPath string
	// want matches the scenario's error (error.txt, or the failed step's).
	want string
	// within is the deadline the scenario must end in.
	within time.Duration
	// check, when set, looks at the records further.
	check func(f *faultRun)
}

// Each fault strikes its own container, or its own socket proxy to the
// engine, so these run beside the rest under `ginkgo -p`. The pause's race
// with an exec leaves the engine's calls on that container hanging until
// the harness thaws its freezer, and only on that one (chaos_test.go,
// sharedFaults: measured).
var _ = DescribeTable("faults of the harness's environment", Label("envfault"), func(ctx SpecContext, ef envFault) {
	sc, err := scenarios.Lookup([]string{"upgrade"})
	Expect(err).NotTo(HaveOccurred())
	f := &faultRun{lines: make(chan string, 256), pool: pool,
		dir: filepath.Join(outDir, "envfault-"+regexp.MustCompile(`[^a-z]+`).ReplaceAllString(CurrentSpecReport().LeafNodeText, "-"))}
	p := params
	if ef.loadPath != "" {
		p.LoadPath = ef.loadPath
	}
	if ef.proxied {
		px := startEngineProxy("/var/run/docker.sock")
		DeferCleanup(px.Close)
		f.pool, err = dockertest.NewPool("unix://" + px.path)
		Expect(err).NotTo(HaveOccurred())
		ctx := context.WithValue(ctx, proxyKey{}, px)
		go ef.inject(ctx, f)
	} else {
		go ef.inject(ctx, f)
	}
	DeferCleanup(func() {
		// Whatever happened, nothing of this process may be left: removed
		// through the real socket, and counted.
		n, err := harness.PruneOwn(context.Background(), pool)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeZero(), "the harness left a container behind")
	})

	start := time.Now()
	runErr := scenarios.Run(ctx, f.pool, sc[0], p, images.Good, f.dir, f.progress)
	took := time.Since(start)
	AddReportEntry("ended after", took.Round(time.Millisecond).String())
	GinkgoWriter.Printf("scenario ended after %s: %v\n", took.Round(time.Millisecond), runErr)
	Expect(took).To(BeNumerically("<", ef.within), "the scenario must end within its deadline")

	if ef.proxied {
		// The harness could not remove its container through a dead
		// engine: it said so; remove it through the real socket.
		n, err := harness.PruneOwn(context.Background(), pool)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("removed %d container(s) through the real socket\n", n)
	}

	r, err := scenarios.Render(f.dir)
	Expect(err).NotTo(HaveOccurred())
	Expect(r.Scenarios).To(HaveLen(1))
	s := r.Scenarios[0]
	AddReportEntry("verdict", fmt.Sprintf("%s: %v", s.Verdict, s.Reasons))
	// A scenario that could not run is error — unless the server had
	// already lost connections, which no error.txt hides (docs/reports.md,
	// the verdict rule): then fail, the cause kept beside the losses.
	if s.Verdict == record.VerdictFail {
		Expect(s.Reasons).To(ContainElement(HavePrefix("also: could not run: ")), "a fail must keep why the scenario could not run")
		Expect(s.Dropped).To(BeNumerically(">", 0), "a fail must rest on what the server lost: %v", s.Reasons)
	} else {
		Expect(s.Verdict).To(Equal(record.VerdictError), "reasons: %v", s.Reasons)
	}
	named := s.Error
	for _, st := range s.Steps {
		named += " | " + st.Error
	}
	Expect(named).To(MatchRegexp(ef.want), "the verdict names the cause")
	if ef.check != nil {
		ef.check(f)
	}
},
	Entry("container paused while an exec is in flight", SpecTimeout(3*time.Minute), envFault{
		// The pause lands on an exec of our own that is in flight, which is
		// what leaves Docker unable to unpause on this machine: the
		// outside unpause hangs, and the harness must thaw the freezer
		// cgroup itself to remove the container.
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master (USR2)") {
				return
			}
			// The driver polls with docker exec every 50 ms while it
			// verifies USR2; a loop of our own execs makes sure one is in
			// flight when the pause lands.
			id := f.container(ctx)
			stop := make(chan struct{})
			go func() {
				for i := 0; i < 100; i++ {
					select {
					case <-stop:
						return
					default:
					}
					docker(ctx, 10*time.Second, "exec", id, "true")
				}
			}()
			time.Sleep(300 * time.Millisecond)
			out, err := docker(ctx, 20*time.Second, "pause", id)
			close(stop)
			GinkgoWriter.Printf("docker pause: %v %s\n", err, out)
			time.Sleep(2500 * time.Millisecond)
			t := time.Now()
			out, err = docker(ctx, 60*time.Second, "unpause", id)
			GinkgoWriter.Printf("docker unpause (from outside) returned after %s: %v %s\n", time.Since(t).Round(time.Millisecond), err, out)
		},
		want:   `paused|FROZEN|FREEZING|frozen from outside`,
		within: 90 * time.Second,
	}),
	Entry("container killed", SpecTimeout(2*time.Minute), envFault{
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master verified") {
				return
			}
			out, err := docker(ctx, 20*time.Second, "kill", f.container(ctx))
			GinkgoWriter.Printf("docker kill: %v %s\n", err, out)
		},
		loadPath: scenarios.LoadPathHost,
		want:     `exited \(code 137\)|gone`,
		within:   60 * time.Second,
	}),
	Entry("container out of memory", SpecTimeout(2*time.Minute), envFault{
		// The container's memory is capped from outside (docker update)
		// and a process in it allocates past the cap; nginx's processes are
		// made the OOM killer's first choice (a raise of oom_score_adj,
		// which needs no capability), so the kernel kills nginx, as it
		// would the biggest process of a real server.
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master verified") {
				return
			}
			id := f.container(ctx)
			out, err := docker(ctx, 20*time.Second, "update", "--memory", "64m", "--memory-swap", "64m", id)
			GinkgoWriter.Printf("docker update: %v %s\n", err, out)
			out, err = docker(ctx, 20*time.Second, "exec", id, "sh", "-c",
				`for p in $(pgrep nginx); do echo 1000 > /proc/$p/oom_score_adj; done; head -c 1000000000 /dev/zero | tail`)
			GinkgoWriter.Printf("memory hog: %v %s\n", err, out)
		},
		want:   `OOM`,
		within: 60 * time.Second,
	}),
	Entry("nginx's master killed from outside", SpecTimeout(2*time.Minute), envFault{
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "steady for") {
				return
			}
			pid := hostPID(ctx, f.container(ctx), "nginx: master")
			out, err := exec.CommandContext(ctx, "kill", "-KILL", strconv.Itoa(pid)).CombinedOutput()
			GinkgoWriter.Printf("kill -KILL %d (host pid of the master): %v %s\n", pid, err, out)
		},
		want:   `no nginx master is left`,
		within: 60 * time.Second,
	}),
	Entry("container's network namespace gone", SpecTimeout(2*time.Minute), envFault{
		// The load creates each socket inside the container's network
		// namespace (setns). The namespace lives as long as a process of
		// the container does: killing the container's init (PID 1, as the
		// host sees it) from outside takes the whole container and its
		// namespace away while the load is entering it for every request.
		// (`docker network disconnect` would leave the namespace and its
		// loopback in place, so it would not exercise this.)
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master verified") {
				return
			}
			id := f.container(ctx)
			out, err := docker(ctx, 10*time.Second, "inspect", "-f", "{{.State.Pid}}", id)
			Expect(err).NotTo(HaveOccurred(), out)
			out2, err := exec.CommandContext(ctx, "kill", "-KILL", out).CombinedOutput()
			GinkgoWriter.Printf("kill -KILL %s (the container's init): %v %s\n", out, err, out2)
		},
		loadPath: scenarios.LoadPathNetns,
		want:     `exited \(code 137\)|gone`,
		within:   60 * time.Second,
		check: func(f *faultRun) {
			// The load saw the namespace vanish, named as such.
			fh, err := os.Open(filepath.Join(f.dir, "upgrade", loadgen.ResultsFile))
			Expect(err).NotTo(HaveOccurred())
			defer fh.Close()
			dec := vegeta.NewDecoder(fh)
			seen := ""
			for {
				var r vegeta.Result
				if err := dec.Decode(&r); err != nil {
					break
				}
				if strings.Contains(r.Error, "network namespace") {
					seen = r.Error
					break
				}
			}
			Expect(seen).NotTo(BeEmpty(), "no request failed naming the network namespace")
			GinkgoWriter.Printf("the load saw: %s\n", seen)
		},
	}),
	Entry("Docker engine unreachable mid-run", SpecTimeout(3*time.Minute), envFault{
		// The harness talks to the engine through a socket proxy of this
		// test, which is closed (listener and every connection) mid-run.
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master verified") {
				return
			}
			ctx.Value(proxyKey{}).(*engineProxy).Close()
			GinkgoWriter.Printf("engine proxy closed\n")
		},
		proxied: true,
		want:    `engine unreachable`,
		within:  90 * time.Second,
	}),
	Entry("Docker engine hanging mid-run", SpecTimeout(4*time.Minute), envFault{
		// The proxy keeps every connection open and accepts new ones, but
		// forwards nothing any more: every call hangs until its deadline.
		inject: func(ctx context.Context, f *faultRun) {
			defer GinkgoRecover()
			if !f.waitFor(ctx, "spawn-new-master verified") {
				return
			}
			ctx.Value(proxyKey{}).(*engineProxy).Hang()
			GinkgoWriter.Printf("engine proxy hanging\n")
		},
		proxied: true,
		want:    `no answer within`,
		within:  2 * time.Minute,
	}),
)

type proxyKey struct{}

// engineProxy forwards a Unix socket of its own to the engine's; Close
// makes the engine unreachable through it at once.
type engineProxy struct {
	path   string
	ln     net.Listener
	mu     sync.Mutex
	conn   []net.Conn
	closed bool
	// Hang makes the engine hang instead: connections are accepted and
	// requests read, but nothing is forwarded any more, either way.
	hung    chan struct{}
	release chan struct{}
	hangOne sync.Once
}

// Hang stops forwarding, both ways, on every connection, old and new.
func (px *engineProxy) Hang() { px.hangOne.Do(func() { close(px.hung) }) }

// relay copies src to dst until Hang, then holds what it reads.
func (px *engineProxy) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-px.hung:
			<-px.release
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if uc, ok := dst.(*net.UnixConn); ok {
				uc.CloseWrite()
			}
			return
		}
	}
}

func startEngineProxy(target string) *engineProxy {
	dir, err := os.MkdirTemp("", "nuh-proxy-")
	Expect(err).NotTo(HaveOccurred())
	px := &engineProxy{path: filepath.Join(dir, "docker.sock"), hung: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("unix", px.path)
	Expect(err).NotTo(HaveOccurred())
	px.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("unix", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			if !px.track(c, up) {
				return
			}
			go px.relay(up, c)
			go px.relay(c, up)
		}
	}()
	return px
}

func (px *engineProxy) track(cs ...net.Conn) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	px.conn = append(px.conn, cs...)
	return true
}

func (px *engineProxy) Close() {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		return
	}
	px.closed = true
	close(px.release)
	px.ln.Close()
	for _, c := range px.conn {
		c.Close()
	}
	px.conn = nil
	os.RemoveAll(filepath.Dir(px.path))
}
