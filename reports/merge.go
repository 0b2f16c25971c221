package reports

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// MergeMatrix gathers the cells of shard directories of one matrix into out
// and builds the merged report from the records: every verdict is
// recomputed, none is copied. Shards of different matrices, and a cell two
// shards both ran, are refused. A cell no shard ran is an error cell
// ("not run by any shard").
func MergeMatrix(out string, shards []string) (*MatrixReport, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("report merge: want one or more shard directories")
	}
	var base *MatrixPlan
	from := map[string]string{} // cell id → the shard directory it comes from
	for _, dir := range shards {
		plan, ok, err := ReadMatrixPlan(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: not a matrix run directory (no %s)", dir, MatrixFile)
		}
		if base == nil {
			base = plan
		} else if plan.Digest != base.Digest {
			return nil, fmt.Errorf("%s is a run of another matrix than %s (digest %.12s, not %.12s): merge shards of one matrix file", dir, shards[0], plan.Digest, base.Digest)
		}
		known := map[string]bool{}
		for _, c := range plan.Cells {
			known[c.ID] = true
		}
		for _, id := range plan.Run {
			if !known[id] {
				return nil, fmt.Errorf("%s: %s names cell %s, which its matrix does not have", dir, MatrixFile, id)
			}
			if _, err := os.Stat(CellDir(dir, id)); err != nil {
				continue // planned, never ran: the merged report says so
			}
			if prev, dup := from[id]; dup {
				return nil, fmt.Errorf("cell %s was run by both %s and %s: merge the shards of one run (each --shard I/N once)", id, prev, dir)
			}
			from[id] = dir
		}
	}
	if err := os.MkdirAll(filepath.Join(out, CellsDir), 0o755); err != nil {
		return nil, err
	}
	merged := *base
	merged.Shard = nil
	merged.MergedFrom = append([]string(nil), shards...)
	merged.Run = nil
	engines := map[string]bool{}
	for _, dir := range shards {
		plan, _, _ := ReadMatrixPlan(dir)
		for _, e := range plan.Engines {
			engines[e] = true
		}
		merged.InsecureArchive = merged.InsecureArchive || plan.InsecureArchive
	}
	merged.Engines = nil
	for e := range engines {
		merged.Engines = append(merged.Engines, e)
	}
	sort.Strings(merged.Engines)
	for _, c := range base.Cells {
		merged.Run = append(merged.Run, c.ID)
		src, ok := from[c.ID]
		dst := CellDir(out, c.ID)
		if err := os.RemoveAll(dst); err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if err := copyTree(CellDir(src, c.ID), dst); err != nil {
			return nil, fmt.Errorf("copy cell %s from %s: %w", c.ID, src, err)
		}
	}
	if err := WriteMatrixPlan(out, &merged); err != nil {
		return nil, err
	}
	return RenderMatrix(out, MatrixOptions{Write: true})
}

// copyTree copies the regular files under src to dst (hard links where the
// file system allows: the records are never written again).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		// The report files are rebuilt; link only the records.
		switch d.Name() {
		case record.ReportJSON, record.ReportMarkdown, record.ReportHTML:
			return nil
		}
		if os.Link(path, target) == nil {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}
