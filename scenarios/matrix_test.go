package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios/matrix"
)

// A matrix of 2 builds × 2 configurations × 2 traffic kinds of the upgrade
// scenario runs whole, then as two shards merged: the two reports agree
// cell by cell, each verdict recomputed from the cell's records. It runs
// sixteen scenarios back to back and is the suite's longest spec: under
// `ginkgo -p` it starts first (longSpec), beside the rest.
var _ = Describe("a matrix that shards", Label("matrix"), longSpec(3), func() {
	It("gives the same verdicts whole and as two shards merged", func(ctx SpecContext) {
		m, err := matrix.Read(filepath.Join("testdata", "matrix", "small.yaml"), params.Load)
		Expect(err).NotTo(HaveOccurred())
		Expect(resolveMatrix(ctx, m)).To(Succeed())
		Expect(m.Cells).To(HaveLen(8), "2 builds × 2 configs × 2 traffic kinds")
		engines, err := matrix.Connect(ctx, []string{pool.Client.Endpoint()})
		Expect(err).NotTo(HaveOccurred())
		Expect(matrix.Reachable(engines)).To(HaveLen(1))
		base := params
		base.Load = m.Load
		dir := filepath.Join(outDir, "matrix")
		Expect(os.RemoveAll(dir)).To(Succeed())

		By("running the whole matrix")
		start := time.Now()
		whole, wholeDir := matrixJudged(ctx, filepath.Join(dir, "whole"), func(out string) (*reports.MatrixReport, error) {
			return m.Run(ctx, engines, nil, base, out, progress)
		})
		took := time.Since(start)

		var shards []string
		for i := 1; i <= 2; i++ {
			By(fmt.Sprintf("running shard %d/2", i))
			r, sdir := matrixJudged(ctx, filepath.Join(dir, fmt.Sprintf("shard-%d", i)), func(out string) (*reports.MatrixReport, error) {
				return m.Run(ctx, engines, &reports.Shard{Index: i, Count: 2}, base, out, progress)
			})
			Expect(r.Cells).To(HaveLen(4), "shard %d/2 runs half the cells", i)
			shards = append(shards, sdir)
		}
		By("merging the shards")
		merged, err := reports.MergeMatrix(filepath.Join(dir, "merged"), shards)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("matrix", fmt.Sprintf("whole: %s in %s (%.0f cells/hour on one engine); merged: %s",
			whole.Verdict, took.Round(time.Second), float64(len(whole.Cells))/took.Hours(), merged.Verdict))

		By("comparing the two reports cell by cell")
		Expect(merged.Cells).To(HaveLen(len(whole.Cells)))
		Expect(merged.Matrix.Digest).To(Equal(whole.Matrix.Digest))
		for i, w := range whole.Cells {
			mc := merged.Cells[i]
			AddReportEntry(w.ID, fmt.Sprintf("whole %s dropped=%d stall=%s; merged %s dropped=%d stall=%s",
				w.Verdict, w.Dropped, reports.StallCell(w.StallMs), mc.Verdict, mc.Dropped, reports.StallCell(mc.StallMs)))
			Expect(mc.ID).To(Equal(w.ID))
			Expect(w.Verdict).NotTo(Equal(record.VerdictError), "cell %s was measured whole: %v", w.ID, w.Reasons)
			Expect(mc.Verdict).NotTo(Equal(record.VerdictError), "cell %s was measured in its shard: %v", mc.ID, mc.Reasons)
			Expect(mc.Verdict).To(Equal(w.Verdict), "cell %s: whole %v, merged %v", w.ID, w.Reasons, mc.Reasons)
			for _, d := range []string{wholeDir, filepath.Join(dir, "merged")} {
				cdir := reports.CellDir(d, w.ID)
				Expect(filepath.Join(cdir, "upgrade", loadgen.ResultsFile)).To(BeARegularFile(), "the cell's records are on disk")
				Expect(filepath.Join(cdir, "upgrade", record.EndFile)).To(BeARegularFile())
				Expect(filepath.Join(cdir, record.ReportJSON)).To(BeARegularFile(), "the drill-down report")
				// The cell's plan, written before it ran: its record is held against it.
				var cellPlan record.RunPlan
				Expect(record.ReadJSON(filepath.Join(cdir, record.PlanFile), &cellPlan)).To(Succeed(), "the cell's run.json")
				var meta record.Meta
				Expect(record.ReadJSON(filepath.Join(cdir, "upgrade", record.MetaFile), &meta)).To(Succeed())
				Expect(cellPlan.PlanFor("upgrade")).NotTo(BeNil(), "the cell's run.json plans upgrade")
				Expect(cellPlan.PlanFor("upgrade").Digest).To(Equal(meta.PlanDigest), "meta.json names the cell's plan")
			}
		}
		Expect(merged.Verdict).To(Equal(whole.Verdict))
		Expect(merged.Counts).To(Equal(whole.Counts))
	}, SpecTimeout(20*time.Minute))

	It("runs a configuration that is a directory as a whole /etc/nginx tree", func(ctx SpecContext) {
		m, err := matrix.Read(filepath.Join("testdata", "matrix", "trees.yaml"), params.Load)
		Expect(err).NotTo(HaveOccurred())
		Expect(resolveMatrix(ctx, m)).To(Succeed())
		Expect(m.Cells).To(HaveLen(2), "the harness's config and Debian's stock tree")
		engines, err := matrix.Connect(ctx, []string{pool.Client.Endpoint()})
		Expect(err).NotTo(HaveOccurred())
		base := params
		base.Load = m.Load
		dir := filepath.Join(outDir, "matrix-trees")
		Expect(os.RemoveAll(dir)).To(Succeed())
		r, dir := matrixJudged(ctx, dir, func(out string) (*reports.MatrixReport, error) {
			return m.Run(ctx, engines, nil, base, out, progress)
		})
		for _, c := range r.Cells {
			Expect(c.Verdict).To(Equal(record.VerdictPass), "cell %s: %v", c.ID, c.Reasons)
		}
		tree := m.Cells[1]
		Expect(tree.MatrixCell.Config).To(Equal("debian-stock"))
		cr, err := record.ReadReport(filepath.Join(reports.CellDir(dir, tree.ID), record.ReportJSON))
		Expect(err).NotTo(HaveOccurred())
		Expect(cr.Site).NotTo(BeNil(), "the cell ran the tree, not one nginx.conf")
		var ports []int
		for _, l := range cr.Site.Listeners {
			ports = append(ports, l.Port)
		}
		Expect(ports).To(ContainElement(80), "the stock tree's listener, read from nginx -T")
		Expect(cr.Site.SkippedProfiles).NotTo(BeEmpty(), "what the stock site cannot serve is named in the cell's report")
	}, SpecTimeout(4*time.Minute*maxAttempts))
})

// resolveMatrix resolves the cells' builds as the CLI does.
func resolveMatrix(ctx context.Context, m *matrix.Matrix) error {
	r, err := image.NewResolver(image.WithProgress(GinkgoWriter))
	if err != nil {
		return err
	}
	return m.Resolve(ctx, r)
}
