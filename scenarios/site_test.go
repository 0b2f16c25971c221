package scenarios_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// The user's own site (run --config-dir): trees in testdata, unchanged.
var _ = Describe("a user's configuration tree", Label("site"), func() {
	siteParams := func(dir string) scenarios.Params {
		tree, err := nginx.ReadTree(dir)
		Expect(err).NotTo(HaveOccurred())
		p := params
		p.Config = nil
		p.Site = &scenarios.Site{Tree: tree}
		p.Load.Rate = 200
		p.Load.Traffic = nil
		return p
	}

	DescribeTable("a bad tree is named in one line before any scenario starts", func(ctx SpecContext, dir, cause string) {
		p := siteParams(dir)
		err := scenarios.CheckSite(ctx, pool, images, &p)
		Expect(err).To(HaveOccurred())
		AddReportEntry(dir, err.Error())
		Expect(err.Error()).NotTo(ContainSubstring("\n"))
		Expect(err.Error()).To(MatchRegexp(cause))
		var rejects *scenarios.NewBuildRejectsError
		Expect(errors.As(err, &rejects)).To(BeFalse(), "the old build's rejection is bad input, not the broken-build finding")
	},
		Entry("a missing include", "testdata/bad-trees/missing-include",
			`\[emerg\] \d+#\d+: open\(\) "/etc/nginx/snippets/site-defaults.conf" failed \(2: No such file or directory\) in /etc/nginx/nginx.conf:4`, SpecTimeout(time.Minute)),
		Entry("a certificate nginx cannot read", "testdata/bad-trees/unreadable-certificate",
			`\[emerg\] \d+#\d+: cannot load certificate "/etc/nginx/tls/site.crt"`, SpecTimeout(time.Minute)),
		Entry("a listener the load cannot reach", "testdata/bad-trees/unreachable-listener",
			`no listener the load can reach: its only listeners are listen unix:/run/nginx-site.sock: a unix socket`, SpecTimeout(time.Minute)),
	)

	It("runs every scenario of the catalogue against a site with TLS and HTTP/2 on 443, two names on 80 and a proxied upstream", longSpec(2),
		func(ctx SpecContext) {
			p := siteParams("testdata/site-tree")
			p.Load.Traffic = []string{scenarios.TrafficHTTP1, scenarios.TrafficHTTP2}
			p.Load.Slow = 2
			targets, terr := scenarios.LoadTargets(filepath.Join("testdata", "targets", "site-tree.txt"), "", "")
			Expect(terr).NotTo(HaveOccurred())
			p.Load.Targets = targets
			By("checking the tree with both builds and reading its listeners from nginx -T")
			Expect(scenarios.CheckSite(ctx, pool, images, &p)).To(Succeed())
			Expect(p.Site.Skipped).To(BeEmpty(), "the site serves / and the long downloads, and HTTP/2 on 443")
			Expect(p.Site.Backends).To(Equal([]string{"127.0.0.3:9000"}), "a stand-in on the upstream the tree names")

			dir := filepath.Join(outDir, "site-tree")
			By("running the catalogue against it")
			r, err := scenarios.RunSuite(ctx, pool, scenarios.Catalogue(), p, images, dir, progress)
			Expect(err).NotTo(HaveOccurred())

			By("reading the listeners back from report.json")
			r, err = record.ReadReport(filepath.Join(dir, "report.json"))
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Site).NotTo(BeNil())
			Expect(r.Site.Added).To(BeEmpty(), "the harness adds nothing to the user's tree")
			byAddr := map[string]record.SiteListener{}
			for _, l := range r.Site.Listeners {
				byAddr[l.Address+":"+itoa(l.Port)] = l
				Expect(l.HostAddress).To(HavePrefix("127.0.0.1:"), "listener %s:%d published on the host's loopback", l.Address, l.Port)
			}
			Expect(byAddr).To(HaveLen(2))
			Expect(byAddr["*:80"].ServerNames).To(Equal([]string{"www.example.test", "api.example.test"}))
			Expect(byAddr["*:80"].DefaultServer).To(BeTrue())
			Expect(byAddr["*:443"].SSL).To(BeTrue())
			Expect(byAddr["*:443"].HTTP2).To(BeTrue())
			Expect(byAddr["*:443"].ServerNames).To(Equal([]string{"secure.example.test"}))
			Expect(r.Site.Proxied).To(ConsistOf(
				ContainSubstring("GET /app/ (Host www.example.test) on port 80, proxied to 127.0.0.3:9000: answered 200 OK by the stand-in"),
				ContainSubstring("GET / (Host api.example.test) on port 80, proxied to 127.0.0.3:9000: answered 200 OK by the stand-in")))
			md, err := readFile(filepath.Join(dir, "report.md"))
			Expect(err).NotTo(HaveOccurred())
			Expect(md).To(ContainSubstring("*:443 ssl http2"))
			Expect(md).To(ContainSubstring("www.example.test api.example.test"))

			Expect(r.Scenarios).To(HaveLen(len(scenarios.Catalogue())), "every scenario of the catalogue ran")
			for _, s := range suiteJudged(ctx, dir, scenarios.Catalogue(), p, images) {
				AddReportEntry("site-tree "+s.Name, "verdict="+s.Verdict+" reasons="+strings.Join(s.Reasons, "; "))
				Expect(s).To(upgradetest.PassVerdict(), s.Name)
				By("reading " + s.Name + "'s results per target")
				Expect(s.Targets).To(HaveLen(6), "%s: a row per target of site-tree.txt", s.Name)
				seen := map[string]bool{}
				for _, t := range s.Targets {
					seen[t.Target] = true
					Expect(t.Requests).To(BeNumerically(">", 0), "%s: %s was sent", s.Name, t.Target)
					Expect(t.OK).To(BeNumerically(">", 0), "%s: %s was answered", s.Name, t.Target)
				}
				Expect(seen).To(HaveKey("GET https://secure.example.test/"), "the TLS server on 443")
				Expect(seen).To(HaveKey("GET http://api.example.test/v1/items"), "the second name on 80, proxied")
				Expect(seen).To(HaveKey("POST http://api.example.test/v1/items"), "a POST with a body")
			}
			Expect(md).To(ContainSubstring("| GET http://www.example.test/app/orders |"), "report.md names each target's results")
		}, SpecTimeout(8*time.Minute))

	// The default suite (the catalogue), less what a site without long
	// downloads cannot prove, named: about 100 s here.
	It("runs Debian's stock /etc/nginx tree, unmodified, through the default suite", longSpec(1), func(ctx SpecContext) {
		p := siteParams("testdata/debian-etc-nginx")
		Expect(scenarios.CheckSite(ctx, pool, images, &p)).To(Succeed())
		scs := scenarios.SiteScenarios(scenarios.Catalogue(), &p)
		var profiles []string
		for _, sk := range p.Site.Skipped {
			profiles = append(profiles, sk.Profile)
		}
		Expect(profiles).To(ConsistOf("4 long downloads (/slow/big.bin)", "scenario term-fallback", "scenario kill-fallback"),
			"the stock site has no /slow/big.bin: named, not run")
		dir := filepath.Join(outDir, "debian-etc-nginx")
		_, err := scenarios.RunSuite(ctx, pool, scs, p, images, dir, progress)
		Expect(err).NotTo(HaveOccurred())
		r, err := record.ReadReport(filepath.Join(dir, "report.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Site).NotTo(BeNil())
		Expect(r.Site.SkippedProfiles).To(HaveLen(3))
		Expect(r.Scenarios).To(HaveLen(len(scs)))
		for _, s := range suiteJudged(ctx, dir, scs, p, images) {
			Expect(s).To(upgradetest.PassVerdict(), s.Name)
		}
	}, SpecTimeout(10*time.Minute))
})

func itoa(n int) string { return strconv.Itoa(n) }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
