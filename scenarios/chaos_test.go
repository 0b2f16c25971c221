package scenarios_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// chaosPaths are the graceful paths every fault strikes.
var chaosPaths = []string{"upgrade", "rollback"}

// sharedFaults strike beyond their container and would make a spec running
// beside them stall: under `ginkgo -p` they run alone. cpu-starve takes
// the machine's CPU from every process. netem is refused by this machine's
// kernel, so whether its qdisc reaches beyond the container is unmeasured
// here: it stays alone. A freeze (docker pause) that races an exec leaves
// the engine's calls on that container hanging until the harness thaws its
// freezer, and only on that one: measured here, an exec into another
// container took 69 ms and a listing 17 ms while the unpause hung, so it
// runs beside the rest.
var sharedFaults = map[string]bool{"cpu-starve": true, "netem": true}

// chaosEntries is the matrix path × fault, generated from the catalogues:
// a new fault is a new row with nothing to add here.
func chaosEntries() []TableEntry {
	var out []TableEntry
	for _, path := range chaosPaths {
		for _, f := range fault.Catalogue() {
			args := []any{Label("chaos", path, "fault-"+f.Name()), attemptsTimeout(5 * time.Minute)}
			if sharedFaults[f.Name()] {
				args = append(args, Serial)
			}
			out = append(out, Entry(path+"+"+f.Name(), append(args, path, f.Name())...))
		}
	}
	return out
}

var _ = DescribeTable("faults during every transition", func(ctx SpecContext, path, name string) {
	chosen, err := fault.Parse(name)
	Expect(err).NotTo(HaveOccurred())
	if why := fault.Available(chosen.Fault); why != nil {
		// Not a skip: what this machine can check is that the harness
		// refuses the fault, naming why, before any container starts.
		By("checking that the fault is refused on this machine: " + why.Error())
		Expect(why.Error()).To(ContainSubstring("kernel"))
		AddReportEntry(path+"+"+name, "refused on this machine: "+why.Error())
		return
	}
	scs, err := scenarios.Lookup([]string{path})
	Expect(err).NotTo(HaveOccurred())
	sc, err := scenarios.WithFaults(scs[0], []fault.Chosen{chosen})
	Expect(err).NotTo(HaveOccurred())
	e := chosen.Expect(path)
	By(fmt.Sprintf("running %s: %s", sc.Name, e.Why))
	s := judged(ctx, outDir, sc.Name, func() error { return scenarios.Run(ctx, pool, sc, params, images.Good, outDir, progress) })

	By("reading its verdict back from report.json")
	AddReportEntry(sc.Name, fmt.Sprintf("verdict=%s dropped=%d stall=%.0fms in %s faults=%+v final.wrong=%q reasons=%v",
		s.Verdict, s.Dropped, s.Stall.Ms, s.Stall.Phase, s.Faults, s.Final.Wrong, s.Reasons))
	Expect(s.Faults).To(HaveLen(1))
	f := s.Faults[0]
	Expect(f.Error).To(BeEmpty(), "the fault was injected and healed")
	Expect(f.Step).To(Equal(chosen.Step))
	if chosen.HealAfter() > 0 {
		Expect(f.HealedMs).NotTo(BeNil())
		Expect(*f.HealedMs - f.InjectedMs).To(BeNumerically(">=", float64(chosen.HealAfter().Milliseconds())*0.9))
	}
	if e.FailStep != "" {
		last := s.Steps[len(s.Steps)-1]
		Expect(last.Name).To(Equal(e.FailStep), "the run stops at the step the fault makes fail")
		Expect(last.Verified).To(BeFalse())
		Expect(last.Error + strings.Join(last.LogLines, "\n")).To(MatchRegexp(e.FailCause))
	}
	if e.Orphans {
		Expect(s.Final.Orphans).NotTo(BeEmpty(), "the fault leaves orphans, as measured")
	} else {
		Expect(s.Final.Orphans).To(BeEmpty())
	}
	if !e.Drops {
		Expect(s.Dropped).To(BeZero(), "drops: %v", s.Drops)
	}
	Expect(s.Verdict).To(Equal(record.VerdictPass), "reasons: %v", s.Reasons)
}, chaosEntries())
