package scenarios_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

var shutdownTimeout = regexp.MustCompile(`(?m)^\s*worker_shutdown_timeout\s+[^;]*;\s*$`)

// shortShutdown is the configuration under test with its draining workers
// made to close what they hold 2 s after they start draining.
func shortShutdown(conf []byte) []byte {
	if conf == nil {
		conf = []byte(nginx.DefaultConfig)
	}
	if shutdownTimeout.Match(conf) {
		return shutdownTimeout.ReplaceAll(conf, []byte("worker_shutdown_timeout 2s;"))
	}
	return []byte(strings.Replace(string(conf), "events {", "worker_shutdown_timeout 2s;\n\nevents {", 1))
}

// The sensitivity of the graceful path: an nginx.conf whose old workers cut
// their held connections a couple of seconds after WINCH must be reported
// as the loss it is. When the long downloads ended before the drain was
// tested, this configuration passed as clean.
var _ = Describe("an nginx.conf that cuts held connections while the old workers drain", Label("sensitivity", "shutdown-timeout"), func() {
	It("is a fail with the long downloads cut in old-workers-draining", func(ctx SpecContext) {
		scs, err := scenarios.Lookup([]string{"upgrade"})
		Expect(err).NotTo(HaveOccurred())
		sc := scs[0]
		p := params
		p.Config = shortShutdown(params.Config)
		Expect(p.Load.Slow).To(BeNumerically(">", 0), "the long downloads are what the short shutdown cuts")
		dir := filepath.Join(outDir, "shutdown-timeout-2s")
		By("running upgrade with worker_shutdown_timeout 2s")
		s := judged(ctx, dir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, p, images.Good, dir, progress) })
		AddReportEntry("upgrade with worker_shutdown_timeout 2s", fmt.Sprintf("verdict=%s dropped=%d slow=%d/%d cut=%d reasons=%v",
			s.Verdict, s.Dropped, s.Slow.Completed, s.Slow.Started, s.Slow.Cut, s.Reasons))
		Expect(s.LongConnections).NotTo(BeNil(), "report.json shows the long connections against the drain")
		Expect(s.LongConnections.Drain.StartSignal).To(Equal("WINCH"))
		Expect(s.LongConnections.Drain.EndSignal).To(Equal("QUIT"))
		held := 0
		for _, c := range s.LongConnections.Connections {
			if c.Kind != "download" || !c.Held {
				continue
			}
			held++
			Expect(c.Outcome).To(Equal("cut"), "download %d, held by the old workers, is cut by their shutdown timeout", c.ID)
			Expect(c.Phase).To(Equal("old-workers-draining"))
			// Cut by the timeout, 2 s after WINCH, not by anything later.
			Expect(c.EndMs - s.LongConnections.Drain.StartSentMs).To(BeNumerically("~", 2000, 1000))
		}
		Expect(held).To(Equal(p.Load.Slow), "every long download was in flight when WINCH was sent")
		Expect(s.Slow.Cut).To(Equal(p.Load.Slow))
		Expect(s.Verdict).To(Equal(record.VerdictFail), "reasons: %v", s.Reasons)
		Expect(s.Reasons).To(ContainElement(ContainSubstring(fmt.Sprintf("%d long downloads cut in old-workers-draining", p.Load.Slow))))
	}, attemptsTimeout(3*time.Minute))
})
