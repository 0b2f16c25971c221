package scenarios_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// A user's vegeta targets on the default config: two server names on 8080,
// a POST with a body file, the TLS server on 8443 (SNI and Host
// site.test) — sent over HTTP/1.1 and, the https one, as HTTP/2 streams —
// through the upgrade. Every target is accounted on its own in report.json
// and the verdict holds as without targets.
var _ = Describe("a user's targets file", Label("targets"), func() {
	It("runs the upgrade with every target accounted", func(ctx SpecContext) {
		scs, err := scenarios.Lookup([]string{"upgrade"})
		Expect(err).NotTo(HaveOccurred())
		sc := scs[0]
		p := params
		p.Load.Rate = 300
		p.Load.Traffic = []string{scenarios.TrafficHTTP1, scenarios.TrafficHTTP2}
		p.Load.Targets, err = scenarios.LoadTargets(filepath.Join("testdata", "targets", "default-site.txt"), "", "")
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Load.Validate()).To(Succeed())

		By("asking nginx for each target once, as the CLI does before any scenario")
		Expect(scenarios.CheckConfig(ctx, pool, images, p)).To(Succeed())

		dir := filepath.Join(outDir, "targets")
		By(fmt.Sprintf("running %s under %s traffic from the targets", sc.Name, strings.Join(p.Load.Kinds(), " + ")))
		s := judged(ctx, dir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, p, images.Good, dir, progress) })

		By("reading the targets' rows back from report.json")
		var lines []string
		for _, r := range s.Targets {
			lines = append(lines, fmt.Sprintf("%s: %d requests, %d ok, %d dropped, p50 %.2f ms, p99 %.2f ms", r.Target, r.Requests, r.OK, r.Dropped, r.P50Ms, r.P99Ms))
		}
		AddReportEntry("targets", fmt.Sprintf("verdict=%s dropped=%d requests=%d stall=%.0f ms\n%s", s.Verdict, s.Dropped, s.Requests.Total, s.Stall.Ms, strings.Join(lines, "\n")))
		Expect(s.Targets).To(HaveLen(len(p.Load.Targets.List)))
		want := []string{"GET http://www.site.test:8080/", "GET http://api.site.test:8080/index.html", "POST http://api.site.test:8080/post", "GET https://site.test:8443/"}
		requests, dropped := 0, 0
		for i, r := range s.Targets {
			Expect(r.Target).To(Equal(want[i]))
			Expect(r.Requests).To(BeNumerically(">", 0), "target %s was sent", r.Target)
			Expect(r.OK).To(Equal(r.Requests-r.Cancelled), "target %s: every request answered", r.Target)
			requests += r.Requests
			dropped += r.Dropped
		}
		// The https target is sent by both kinds: a third of http1's and all
		// of http2's requests.
		Expect(s.Targets[3].Requests).To(BeNumerically(">", s.Targets[0].Requests), "HTTP/2 sends the https target too")
		Expect(requests).To(Equal(s.Requests.Total), "every request is some target's")
		Expect(dropped).To(Equal(s.Dropped - s.Slow.Cut))
		for _, st := range s.Steps {
			Expect(st.Verified).To(BeTrue(), "step %s: %s", st.Name, st.Error)
		}
		Expect(s.Slow.Completed).To(Equal(p.Load.Slow), "the harness's own long downloads still run")
		Expect(s.Dropped).To(BeZero(), "drops: %v", s.Drops)
		Expect(s.Verdict).To(Equal(record.VerdictPass), "reasons: %v", s.Reasons)
	}, attemptsTimeout(4*time.Minute))
})
