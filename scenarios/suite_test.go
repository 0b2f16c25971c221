package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "nginx upgrade scenarios")
}

// The suite is pointed at builds, a configuration and a load through the
// environment, so that CI can gate another pair without code changes:
// NUH_FROM, NUH_TO, NUH_BROKEN, NUH_CONFIG, NUH_RATE, NUH_METHOD,
// NUH_KEEPALIVE, NUH_SLOW, NUH_TRAFFIC (kinds, comma-separated) for the
// default table, and NUH_OUT for the report directory.
var (
	pair   *upgradetest.Pair
	pool   *dockertest.Pool
	params scenarios.Params
	images scenarios.Images
	outDir string
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func suiteParams() (scenarios.Params, error) {
	var p scenarios.Params
	var err error
	if p.From, err = image.ParseBuild(env("NUH_FROM", image.DefaultFrom)); err != nil {
		return p, err
	}
	if p.To, err = image.ParseBuild(env("NUH_TO", image.DefaultTo)); err != nil {
		return p, err
	}
	if p.Broken, err = image.ParseBuild(env("NUH_BROKEN", scenarios.DefaultBroken)); err != nil {
		return p, err
	}
	if c := os.Getenv("NUH_CONFIG"); c != "" {
		if p.Config, err = os.ReadFile(c); err != nil {
			return p, err
		}
	}
	p.Load = scenarios.DefaultLoad
	// The static CLI runs as the heartbeat in nginx's container too.
	p.Heartbeat = os.Getenv("NUH_REAPER_BINARY")
	if v := os.Getenv("NUH_RATE"); v != "" {
		if p.Load.Rate, err = strconv.Atoi(v); err != nil {
			return p, fmt.Errorf("NUH_RATE: %w", err)
		}
	}
	p.Load.Method = env("NUH_METHOD", p.Load.Method)
	if v := os.Getenv("NUH_KEEPALIVE"); v != "" {
		if p.Load.KeepAlive, err = strconv.ParseBool(v); err != nil {
			return p, fmt.Errorf("NUH_KEEPALIVE: %w", err)
		}
	}
	if v := os.Getenv("NUH_SLOW"); v != "" {
		if p.Load.Slow, err = strconv.Atoi(v); err != nil {
			return p, fmt.Errorf("NUH_SLOW: %w", err)
		}
	}
	if v := os.Getenv("NUH_TRAFFIC"); v != "" {
		if p.Load.Traffic, err = scenarios.ParseTraffic(strings.Split(v, ",")); err != nil {
			return p, fmt.Errorf("NUH_TRAFFIC: %w", err)
		}
	}
	return p, p.Load.Validate()
}

// progress writes a line, stamped; upgradetest's lines come with their
// newline, the harness's without.
func progress(format string, args ...any) {
	GinkgoWriter.Printf("[%s] %s\n", time.Now().Format("15:04:05.000"), strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
}

// Under `ginkgo -p` the first process builds the images (once, for all)
// and picks the report directory; every process then connects on its own,
// finds the images cached, and writes into its own folder of that
// directory (pN), so that no two processes render one report. Containers
// carry their process's pid: each process sweeps and checks only its own.
var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	p, err := harness.Connect()
	Expect(err).NotTo(HaveOccurred(), "the scenario suite runs nginx in containers: it needs a Docker engine")
	_, err = harness.Prune(ctx, p)
	Expect(err).NotTo(HaveOccurred())
	sp, err := suiteParams()
	Expect(err).NotTo(HaveOccurred())
	Expect(scenarios.ResolveBuilds(ctx, &sp, progress)).To(Succeed())
	By("building (or finding in the cache) the images of " + sp.From.Spec + " -> " + sp.To.Spec + " and -> " + sp.Broken.Spec)
	im, err := scenarios.PrepareImages(ctx, p, scenarios.Catalogue(), sp, progress)
	Expect(err).NotTo(HaveOccurred())
	// The systemd variants too, once, so that the systemd specs need not
	// run alone to keep two processes from building them side by side. A
	// machine that cannot run systemd in a container fails those specs,
	// saying so (ensureSystemdImages), not the whole suite.
	if nginx.CheckSystemdHost(ctx, p) == nil {
		By("building (or finding in the cache) their systemd variants")
		_, err = scenarios.PrepareSystemdImages(ctx, p, im, progress)
		Expect(err).NotTo(HaveOccurred())
	}
	return []byte(env("NUH_OUT", filepath.Join("..", "reports-out", "suite-"+time.Now().Format("2006-01-02T15-04-05"))))
}, func(ctx SpecContext, dir []byte) {
	// This process's engine, with its reaper: the static CLI that `make
	// scenarios` builds (NUH_REAPER_BINARY, upgradetest's default); a test
	// binary linked with cgo cannot be one.
	engine, err := upgradetest.NewEngine(ctx, upgradetest.Log(progress))
	Expect(err).NotTo(HaveOccurred(), "the scenario suite runs nginx in containers: it needs a Docker engine")
	DeferCleanup(engine.Close)
	pool = engine.Pool()
	sp, err := suiteParams()
	Expect(err).NotTo(HaveOccurred())
	outDir = processDir(string(dir))
	pair, err = engine.Pair(ctx, sp.From.Spec, sp.To.Spec, upgradetest.BrokenBuild(sp.Broken.Spec),
		upgradetest.Config(sp.Config), upgradetest.Load(sp.Load), upgradetest.ReportDir(outDir))
	Expect(err).NotTo(HaveOccurred())
	// The tables that drive package scenarios themselves need every build
	// resolved and every image (found in the cache the first process filled).
	params = pair.Params()
	Expect(scenarios.ResolveBuilds(ctx, &params, progress)).To(Succeed())
	images, err = scenarios.PrepareImages(ctx, pool, scenarios.Catalogue(), params, progress)
	Expect(err).NotTo(HaveOccurred())
	// Runs before engine.Close's sweep: nothing may be left for it.
	DeferCleanup(func() {
		n, err := harness.PruneOwn(context.Background(), pool)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeZero(), "every scenario removes its own container")
	})
}, NodeTimeout(30*time.Minute))

// longSpec ranks the suite's few specs that take minutes where the rest
// take seconds (a higher rank is longer): under `ginkgo -p` they start
// first and the short ones fill the processes around them, instead of one
// of them starting last and running on alone.
func longSpec(rank int) SpecPriority { return SpecPriority(rank) }

// processDir is this process's report directory: dir itself in a serial
// run, dir/pN under `ginkgo -p`.
func processDir(dir string) string {
	if cfg, _ := GinkgoConfiguration(); cfg.ParallelTotal > 1 {
		return filepath.Join(dir, "p"+strconv.Itoa(GinkgoParallelProcess()))
	}
	return dir
}

func entries() []TableEntry {
	var out []TableEntry
	for _, sc := range scenarios.Catalogue() {
		out = append(out, Entry(sc.Name, Label(sc.Labels()...), attemptsTimeout(4*time.Minute), sc))
	}
	return out
}

var _ = DescribeTable("upgrade paths under load", func(ctx SpecContext, sc scenarios.Scenario) {
	By(fmt.Sprintf("running %s: %s", sc.Name, sc.Why))
	r, err := pair.Run(ctx, sc.Name)
	addEntries(sc.Name, r)
	Expect(err).NotTo(HaveOccurred())

	By("asking the judge's verdict, then each claim it rests on")
	Expect(r).To(upgradetest.PassVerdict())
	Expect(r).To(upgradetest.CompleteEveryStep())
	Expect(r).To(upgradetest.EndServing(sc.Final.Binary))
	switch sc.Expect {
	case scenarios.ExpectZeroDrops:
		Expect(r).To(upgradetest.DropOnlyKnownLosses())
	case scenarios.ExpectDrops:
		Expect(r).To(upgradetest.HaveLost("", sc.Drops.Phase), "the positive control lost nothing: the detector is broken")
	}
}, entries())

// addEntries puts a run's attempts and figures in the spec's report.
func addEntries(name string, r *upgradetest.Result) {
	if r == nil {
		return
	}
	s := r.Scenario
	AddReportEntry(name+" attempts", strings.Join(r.AttemptLines(), "\n"))
	AddReportEntry(name, fmt.Sprintf("verdict=%s dropped=%d requests=%d failed=%d retried=%d slow=%d/%d reasons=%v known=%v",
		s.Verdict, s.Dropped, s.Requests.Total, s.Requests.Failed, s.Retried, s.Slow.Completed, s.Slow.Started, s.Reasons, words.KnownLossLines(&s)))
}

// trafficExpect is what one traffic kind was measured to do on the graceful
// paths of stock nginx (README: "Traffic kinds"). The drop count is never
// loosened: an entry that expects losses names which, where and why, and
// asserts exactly that.
type trafficExpect struct {
	// closeRace: the keep-alive close race may lose requests (replayed or
	// failed with eof/reset) in the phases a worker shut down in, and
	// nothing else: a known loss, so a pass whether it struck or not.
	closeRace bool
	// cutWebSockets: on upgrade, every WebSocket (all opened on the old
	// workers) is cut without a close frame (1006) when
	// worker_shutdown_timeout ends the draining workers, after QUIT; at
	// most the one message each had in flight is lost (a drop each), and
	// nothing else drops. The verdict is fail.
	cutWebSockets bool
}

// measuredTraffic is, per kind and scenario, what was measured here.
func measuredTraffic(kind, scenario string) trafficExpect {
	switch {
	case kind == scenarios.TrafficWebSocket && scenario == "upgrade":
		return trafficExpect{cutWebSockets: true}
	case scenarios.KeepsConnections(kind):
		// The catalogue's keep-alive kinds, HTTP/2 among them (its
		// connections always persist): beside a busy core, rollback ×
		// http2 lost 47 requests to the race in rolled-back.
		return trafficExpect{closeRace: true}
	}
	return trafficExpect{}
}

type trafficCase struct {
	scenario string
	kind     string
}

func trafficEntries() []TableEntry {
	var out []TableEntry
	for _, name := range []string{"upgrade", "rollback"} {
		for _, k := range scenarios.TrafficNames() {
			out = append(out, Entry(name+" × "+k, Label("traffic", "traffic-"+k), attemptsTimeout(3*time.Minute), trafficCase{name, k}))
		}
	}
	return out
}

var _ = DescribeTable("traffic kinds on the graceful paths", func(ctx SpecContext, tc trafficCase) {
	scs, err := scenarios.Lookup([]string{tc.scenario})
	Expect(err).NotTo(HaveOccurred())
	sc := scs[0]
	By(fmt.Sprintf("running %s under %s traffic", sc.Name, tc.kind))
	r, err := pair.Run(ctx, sc.Name, upgradetest.Traffic(tc.kind), upgradetest.Subdir("traffic-"+tc.kind))
	addEntries(sc.Name+" × "+tc.kind, r)
	Expect(err).NotTo(HaveOccurred())
	Expect(r).To(upgradetest.CompleteEveryStep())
	Expect(r).To(upgradetest.EndServing(sc.Final.Binary))

	By("reading the kind's row back from report.json: the kind was exercised")
	s := r.Scenario
	var row *record.TrafficRow
	total := 0
	for i := range s.Traffic {
		total += s.Traffic[i].Dropped
		if s.Traffic[i].Kind == tc.kind {
			row = &s.Traffic[i]
		}
	}
	Expect(row).NotTo(BeNil(), "report.json has a row for %s", tc.kind)
	AddReportEntry(sc.Name+" × "+tc.kind+" row", fmt.Sprintf("%s: %d dropped, %v", tc.kind, row.Dropped, row.Drops))
	Expect(s.Dropped).To(Equal(total+s.Slow.Cut), "dropped is the kinds' drops and the cut downloads, nothing hidden")
	switch {
	case tc.kind == scenarios.TrafficHTTP2:
		Expect(row.HandshakesFull+row.HandshakesResumed).To(BeNumerically(">", 0), "TLS handshakes are counted")
	case tc.kind == scenarios.TrafficWebSocket:
		Expect(row.WebSockets).NotTo(BeNil())
		Expect(row.WebSockets.Opened).To(Equal(scenarios.WebSocketCount))
		Expect(row.WebSockets.Sent).To(BeNumerically(">", 0))
	case tc.kind == scenarios.TrafficUpload:
		Expect(row.Uploads).NotTo(BeNil())
		Expect(row.Uploads.Started).To(BeNumerically(">=", 2*scenarios.UploadCount), "uploads were on the wire across the steps")
	}

	By("asking the judge what was measured of this kind here")
	exp := measuredTraffic(tc.kind, sc.Name)
	switch {
	case exp.cutWebSockets:
		// The finding itself, as measured: every WebSocket cut without a
		// close frame after QUIT, at most the message in flight on each
		// lost, nothing else.
		ws := row.WebSockets
		Expect(ws.Dropped).To(Equal(scenarios.WebSocketCount), "every WebSocket the old workers held is cut")
		Expect(ws.ClosedByCode).To(Equal(map[string]int{"1006": scenarios.WebSocketCount}), "without a close frame")
		Expect(ws.Mismatched).To(BeZero())
		Expect(ws.LostMessages).To(BeNumerically("<=", scenarios.WebSocketCount), "at most the message in flight on each")
		Expect(row.Dropped).To(Equal(ws.Dropped + ws.LostMessages))
		Expect(s.Dropped).To(Equal(row.Dropped), "nothing else drops")
		Expect(r).To(upgradetest.HaveLost("", "after-quit"))
		Expect(r).To(upgradetest.HaveVerdict(record.VerdictFail))
	case exp.closeRace:
		// The race is a known loss of these kinds: a pass whether it
		// struck or not, the loss counted beside it.
		Expect(r).To(upgradetest.PassVerdict())
		Expect(r).To(upgradetest.DropOnlyKnownLosses())
	default:
		Expect(r).To(upgradetest.PassVerdict())
		Expect(r).To(upgradetest.DropNothing())
	}
}, trafficEntries())

// reportIn reads a scenario's entry from dir/report.json.
func reportIn(dir, name string) record.Scenario {
	r, err := record.ReadReport(filepath.Join(dir, "report.json"))
	Expect(err).NotTo(HaveOccurred())
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	Fail("report.json has no scenario " + name)
	return record.Scenario{}
}
