package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "nginx upgrade scenarios")
}

// The suite is pointed at builds, a configuration and a load through the
// environment, so that CI can gate another pair without code changes:
// NUH_FROM, NUH_TO, NUH_BROKEN, NUH_CONFIG, NUH_RATE, NUH_METHOD,
// NUH_KEEPALIVE, NUH_SLOW, and NUH_OUT for the report directory.
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
	return p, p.Load.Validate()
}

func progress(format string, args ...any) {
	GinkgoWriter.Printf("[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	pool, err = harness.Connect()
	Expect(err).NotTo(HaveOccurred(), "the scenario suite runs nginx in containers: it needs a Docker engine")
	_, err = harness.Prune(ctx, pool)
	Expect(err).NotTo(HaveOccurred())
	params, err = suiteParams()
	Expect(err).NotTo(HaveOccurred())
	outDir = env("NUH_OUT", filepath.Join("..", "reports-out", "suite-"+time.Now().Format("2006-01-02T15-04-05")))
	Expect(os.MkdirAll(outDir, 0o755)).To(Succeed())
	By("building (or finding in the cache) the images of " + params.From.Spec + " -> " + params.To.Spec + " and -> " + params.Broken.Spec)
	images, err = scenarios.PrepareImages(ctx, pool, scenarios.Catalogue(), params, progress)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		n, err := harness.PruneOwn(context.Background(), pool)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeZero(), "every scenario removes its own container")
	})
}, NodeTimeout(30*time.Minute))

// reportOf reads the scenario's entry back from the report.json that was
// written: what CI archives is what is asserted.
func reportOf(name string) reports.Scenario {
	r, err := reports.ReadReport(filepath.Join(outDir, "report.json"))
	Expect(err).NotTo(HaveOccurred())
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	Fail("report.json has no scenario " + name)
	return reports.Scenario{}
}

func entries() []TableEntry {
	var out []TableEntry
	for _, sc := range scenarios.Catalogue() {
		out = append(out, Entry(sc.Name, Label(sc.Labels()...), SpecTimeout(4*time.Minute), sc))
	}
	return out
}

var _ = DescribeTable("upgrade paths under load", func(ctx SpecContext, sc scenarios.Scenario) {
	image := images.Good
	if sc.Broken {
		image = images.Broken
	}
	By(fmt.Sprintf("running %s: %s", sc.Name, sc.Why))
	err := scenarios.Run(ctx, pool, sc, params, image, outDir, progress)
	_, rerr := scenarios.Render(outDir)
	Expect(rerr).NotTo(HaveOccurred())
	Expect(err).NotTo(HaveOccurred(), "the scenario could not run")

	By("reading its verdict back from report.json")
	s := reportOf(sc.Name)
	AddReportEntry(sc.Name, fmt.Sprintf("verdict=%s dropped=%d requests=%d failed=%d retried=%d slow=%d/%d reasons=%v",
		s.Verdict, s.Dropped, s.Requests.Total, s.Requests.Failed, s.Retried, s.Slow.Completed, s.Slow.Started, s.Reasons))
	Expect(s.Problems).To(BeEmpty(), "the record is incomplete")
	Expect(s.Ended).To(BeTrue(), "the run left its end-of-run marker")
	Expect(s.SilentCount).To(BeZero(), "the load never fell silent")
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
		Expect(s.Dropped).To(BeZero(), "drops: %v", s.Drops)
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
	Expect(s.Verdict).To(Equal(reports.VerdictPass), "reasons: %v", s.Reasons)
}, entries())
