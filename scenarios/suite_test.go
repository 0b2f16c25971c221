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

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
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

func progress(format string, args ...any) {
	GinkgoWriter.Printf("[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
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
	var err error
	pool, err = harness.Connect()
	Expect(err).NotTo(HaveOccurred(), "the scenario suite runs nginx in containers: it needs a Docker engine")
	// This process's reaper: the static CLI that `make scenarios` builds
	// (NUH_REAPER_BINARY); a test binary linked with cgo cannot be one.
	if lease, err := harness.HoldLease(ctx, pool, harness.ReaperBinary(os.Getenv("NUH_REAPER_BINARY")), harness.LeaseLog(progress)); err != nil {
		progress("%s: this process (run %s) removes its containers itself", harness.OneLine(err.Error()), harness.RunID())
	} else {
		DeferCleanup(lease.Close)
	}
	params, err = suiteParams()
	Expect(err).NotTo(HaveOccurred())
	Expect(scenarios.ResolveBuilds(ctx, &params, progress)).To(Succeed())
	outDir = processDir(string(dir))
	Expect(os.MkdirAll(outDir, 0o755)).To(Succeed())
	images, err = scenarios.PrepareImages(ctx, pool, scenarios.Catalogue(), params, progress)
	Expect(err).NotTo(HaveOccurred())
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
	image := images.Good
	if sc.Broken {
		image = images.Broken
	}
	By(fmt.Sprintf("running %s: %s", sc.Name, sc.Why))
	// The premises (a whole record, the load never silent, a stall the
	// observer could see) are the verdict's: judged asserts it is not error.
	s := judged(ctx, outDir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, params, image, outDir, progress) })

	By("reading its verdict back from report.json")
	AddReportEntry(sc.Name, fmt.Sprintf("verdict=%s dropped=%d requests=%d failed=%d retried=%d slow=%d/%d reasons=%v known=%v",
		s.Verdict, s.Dropped, s.Requests.Total, s.Requests.Failed, s.Retried, s.Slow.Completed, s.Slow.Started, s.Reasons, words.KnownLossLines(&s)))
	Expect(s.Expect).To(Equal(sc.Expect))
	Expect(s.Requests.Total).To(BeNumerically(">", 0))
	for _, st := range s.Steps {
		if st.Expected == "fail" {
			Expect(st.Verified).To(BeFalse(), "step %s was expected to fail", st.Name)
			Expect(st.Error).NotTo(BeEmpty())
		} else {
			Expect(st.Verified).To(BeTrue(), "step %s: %s", st.Name, st.Error)
		}
	}
	Expect(s.Steps).To(HaveLen(len(sc.Moves)), "every step of the scenario ran")
	switch sc.Expect {
	case scenarios.ExpectZeroDrops:
		// Nothing lost but what the scenario declares known (reuseport's
		// queue reset), each known loss counted where it was seen.
		Expect(s.Dropped).To(Equal(knownLost(s)), "drops beyond the known losses: %v", s.Drops)
		Expect(s.Slow.Cut).To(BeZero())
		Expect(s.Slow.Completed).To(Equal(params.Load.Slow))
	case scenarios.ExpectDrops:
		Expect(s.Dropped).To(BeNumerically(">", 0), "the positive control saw no drop: the detector is broken")
		for _, p := range s.Phases {
			if p.Name != sc.Drops.Phase {
				Expect(p.Dropped).To(BeZero(), "drops in %s, outside %s", p.Name, sc.Drops.Phase)
			}
		}
		Expect(s.Held).NotTo(BeNil())
		if sc.Drops.CutHeld {
			Expect(s.Held.DownloadsCut).To(Equal(s.Held.Downloads), "every download the killed workers held is cut")
		}
		if sc.Drops.KeepDownloadsBefore != "" {
			Expect(s.Held.KeptDownloadsDone).To(Equal(s.Held.KeptDownloads), "the other set's downloads complete")
		}
	}
	if sc.Expect == scenarios.ExpectZeroDrops {
		Expect(s.Stall.Ms).To(BeNumerically("<=", s.MaxStallMs), "stalled in %s", s.Stall.Phase)
	}
	Expect(s.Final).NotTo(BeNil())
	Expect(s.Final.CheckErrors).To(BeEmpty())
	Expect(s.Final.Masters).To(Equal(1))
	Expect(s.Final.ServingBinary).To(Equal(sc.Final.Binary))
	Expect(s.Final.Serving).To(BeTrue())
	Expect(s.Verdict).To(Equal(record.VerdictPass), "reasons: %v", s.Reasons)
}, entries())

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
	case kind == scenarios.TrafficHTTP1KeepAlive, kind == scenarios.TrafficProxy:
		return trafficExpect{closeRace: true}
	case kind == scenarios.TrafficWebSocket && scenario == "upgrade":
		return trafficExpect{cutWebSockets: true}
	}
	return trafficExpect{}
}

// closeRacePhases are the phases that open with a worker shutting down.
var closeRacePhases = map[string]bool{"old-workers-draining": true, "after-quit": true, "rolled-back": true}

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
	p := params
	p.Load.Traffic = []string{tc.kind}
	Expect(p.Load.Validate()).To(Succeed())
	dir := filepath.Join(outDir, "traffic-"+tc.kind)
	By(fmt.Sprintf("running %s under %s traffic", sc.Name, strings.Join(p.Load.Kinds(), " + ")))
	start := time.Now()
	s := judged(ctx, dir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, p, images.Good, dir, progress) })

	By("reading the kind's row back from report.json")
	var row *record.TrafficRow
	total := 0
	for i := range s.Traffic {
		total += s.Traffic[i].Dropped
		if s.Traffic[i].Kind == tc.kind {
			row = &s.Traffic[i]
		}
	}
	Expect(row).NotTo(BeNil(), "report.json has a row for %s", tc.kind)
	AddReportEntry(sc.Name+" × "+tc.kind, fmt.Sprintf("verdict=%s dropped=%d (%s: %d, %v) stall=%.0f ms in %s, took %s, reasons=%v",
		s.Verdict, s.Dropped, tc.kind, row.Dropped, row.Drops, s.Stall.Ms, s.Stall.Phase, time.Since(start).Round(time.Second), s.Reasons))
	for _, st := range s.Steps {
		Expect(st.Verified).To(BeTrue(), "step %s: %s", st.Name, st.Error)
	}
	Expect(s.Steps).To(HaveLen(len(sc.Moves)))
	Expect(s.Final).NotTo(BeNil())
	Expect(s.Final.CheckErrors).To(BeEmpty())
	Expect(s.Final.ServingBinary).To(Equal(sc.Final.Binary))
	Expect(s.Dropped).To(Equal(total+s.Slow.Cut), "dropped is the kinds' drops and the cut downloads, nothing hidden")
	Expect(s.Slow.Cut).To(BeZero())
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

	exp := measuredTraffic(tc.kind, sc.Name)
	switch {
	case exp.cutWebSockets:
		ws := row.WebSockets
		Expect(ws.Dropped).To(Equal(scenarios.WebSocketCount), "every WebSocket the old workers held is cut")
		Expect(ws.ClosedByCode).To(Equal(map[string]int{"1006": scenarios.WebSocketCount}), "without a close frame")
		Expect(ws.Mismatched).To(BeZero())
		Expect(ws.LostMessages).To(BeNumerically("<=", scenarios.WebSocketCount), "at most the message in flight on each")
		Expect(row.Drops).To(Equal([]string{fmt.Sprintf("%d in after-quit", row.Dropped)}))
		Expect(row.Dropped).To(Equal(ws.Dropped + ws.LostMessages))
		Expect(s.Dropped).To(Equal(row.Dropped), "nothing else drops")
		Expect(s.Verdict).To(Equal(record.VerdictFail))
	case exp.closeRace:
		for _, p := range s.Phases {
			if p.Dropped == 0 {
				continue
			}
			Expect(closeRacePhases).To(HaveKey(p.Name), "drops only where a worker shut down, not in %s", p.Name)
			for c := range p.ByClass {
				Expect([]string{record.ClassEOF, record.ClassReset, record.ClassCancelled}).To(ContainElement(c), "the close race fails with eof or reset, not %s", c)
			}
		}
		Expect(s.Dropped).To(Equal(row.Dropped), "only this kind drops")
		// The race is a known loss of these kinds: a pass either way, the
		// loss counted beside it.
		Expect(s.Verdict).To(Equal(record.VerdictPass), "reasons: %v", s.Reasons)
		Expect(knownLost(s)).To(Equal(s.Dropped), "every drop is the known close race: %v", s.KnownLossSeen)
	default:
		Expect(s.Dropped).To(BeZero(), "drops: %v", s.Drops)
		Expect(s.Stall.Ms).To(BeNumerically("<=", s.MaxStallMs), "stalled in %s", s.Stall.Phase)
		Expect(s.Verdict).To(Equal(record.VerdictPass), "reasons: %v", s.Reasons)
	}
}, trafficEntries())

// knownLost is how many requests the scenario's known losses account for.
func knownLost(s record.Scenario) int {
	n := 0
	for _, k := range s.KnownLossSeen {
		n += k.Count
	}
	return n
}

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
