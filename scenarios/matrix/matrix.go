// Package matrix reads a matrix file — builds, configurations, traffic,
// faults and scenarios — into its cells: the cross product minus the
// exclusions, in a fixed order, each with a stable id.
package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// Matrix is a matrix file read and checked.
type Matrix struct {
	Path     string // the file, as given
	Load     scenarios.Load
	Cells    []Cell
	Excluded []string // ids of the combinations the exclude list removed
	Digest   string
}

// Error is bad input in a matrix file: the CLI exits 2 with it.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func bad(path, format string, args ...any) error {
	return &Error{path + ": " + fmt.Sprintf(format, args...)}
}

// Read reads and checks the matrix file at path; base is the load the
// command line asked for, which the file's rate, method, keepalive and slow
// override.
func Read(path string, base scenarios.Load) (*Matrix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, bad(path, "%v", errors.Unwrap(err))
	}
	var f File
	if err := decode(data, &f); err != nil {
		return nil, bad(path, "%s", err.Error())
	}
	return f.expand(path, base)
}

// expand checks every value and makes the cells.
func (f *File) expand(path string, base scenarios.Load) (*Matrix, error) {
	m := &Matrix{Path: path, Load: base}
	if f.Rate != nil {
		m.Load.Rate = *f.Rate
	}
	if f.Method != "" {
		m.Load.Method = strings.ToUpper(f.Method)
	}
	if f.KeepAlive != nil {
		m.Load.KeepAlive = *f.KeepAlive
	}
	if f.Slow != nil {
		m.Load.Slow = *f.Slow
	}
	m.Load.Traffic = nil
	if err := m.Load.Validate(); err != nil {
		return nil, bad(path, "%v", err)
	}
	if len(f.From) == 0 {
		f.From = stringList{image.DefaultFrom}
	}
	if len(f.To) == 0 {
		return nil, bad(path, "no `to` builds: want at least one (e.g. to: [%s])", image.DefaultTo)
	}
	parse := func(key string, specs []string) ([]image.Build, error) {
		var out []image.Build
		for _, s := range specs {
			b, err := image.ParseBuild(s)
			if err != nil {
				return nil, bad(path, "%s: %v", key, err)
			}
			out = append(out, b)
		}
		return out, nil
	}
	froms, err := parse("from", f.From)
	if err != nil {
		return nil, err
	}
	tos, err := parse("to", f.To)
	if err != nil {
		return nil, err
	}
	configs, err := readConfigs(path, f.Configs)
	if err != nil {
		return nil, err
	}
	traffic := f.Traffic
	if len(traffic) == 0 {
		traffic = []set{nil} // the kind --keepalive names
	}
	for _, t := range traffic {
		if _, err := scenarios.ParseTraffic(t); err != nil {
			return nil, bad(path, "traffic: %v", err)
		}
		l := m.Load
		l.Traffic = t
		if err := l.Validate(); err != nil {
			return nil, bad(path, "traffic %s: %v", strings.Join(t, "+"), err)
		}
	}
	faults := f.Faults
	if len(faults) == 0 {
		faults = []set{nil}
	}
	chosen := make([][]fault.Chosen, len(faults))
	for i, fs := range faults {
		var names []string
		for _, spec := range fs {
			if spec == "" || spec == "none" {
				continue
			}
			c, err := fault.Parse(spec)
			if err != nil {
				return nil, bad(path, "faults: %v", err)
			}
			if err := fault.Available(c.Fault); err != nil {
				return nil, bad(path, "faults: %s: %v", spec, err)
			}
			chosen[i] = append(chosen[i], c)
			names = append(names, spec)
		}
		faults[i] = names
	}
	scs := f.Scenarios
	if len(scs) == 0 {
		scs = []set{nil} // the default suite, in one cell
	}
	for i, s := range scs {
		found, err := scenarios.Lookup(s)
		if err != nil {
			return nil, bad(path, "scenarios: %v", err)
		}
		if len(s) == 0 {
			for _, sc := range found {
				scs[i] = append(scs[i], sc.Name)
			}
		}
	}
	for _, e := range f.Exclude {
		if err := checkExclude(path, e, f, configs, traffic, faults, scs); err != nil {
			return nil, err
		}
	}

	ids := map[string]int{}
	index := 0
	for fi, from := range froms {
		for ti, to := range tos {
			for _, conf := range configs {
				for _, tr := range traffic {
					for fa, fs := range faults {
						for _, sc := range scs {
							c := Cell{FromBuild: from, ToBuild: to, ConfigData: conf.data, ConfigDir: conf.dir, Tree: conf.tree, Chosen: chosen[fa]}
							c.From, c.To, c.MatrixCell.Config, c.ConfigPath, c.ConfigSHA256 = from.Spec, to.Spec, conf.Name, conf.Path, conf.sha
							c.Traffic, c.Faults, c.Scenarios = nonNil(tr), nonNil(fs), nonNil(sc)
							c.Key = fmt.Sprintf("from#%d to#%d config=%s traffic=%s faults=%s scenarios=%s", fi+1, ti+1, conf.Name,
								joinOr(tr, "default"), joinOr(fs, "none"), strings.Join(sc, "+"))
							c.ID = cellID(c, len(froms) > 1)
							if excluded(f.Exclude, c) {
								m.Excluded = append(m.Excluded, c.ID)
								continue
							}
							if err := faultsApply(c); err != nil {
								return nil, bad(path, "cell %s: %v (exclude the combination, or drop the fault)", c.ID, err)
							}
							if prev, dup := ids[c.ID]; dup {
								return nil, bad(path, "cells %d and %d are the same combination (%s): a value is listed twice", prev, index, c.Key)
							}
							ids[c.ID] = index
							c.Index = index
							index++
							m.Cells = append(m.Cells, c)
						}
					}
				}
			}
		}
	}
	if len(m.Cells) == 0 {
		return nil, bad(path, "the exclude list leaves no cell")
	}
	m.Digest = digest(m)
	return m, nil
}

func digest(m *Matrix) string {
	type entry struct {
		reports.MatrixCell
		Index int `json:"-"`
	}
	var es []entry
	for _, c := range m.Cells {
		es = append(es, entry{MatrixCell: c.MatrixCell})
	}
	b, _ := json.Marshal(struct {
		Cells []entry
		Load  scenarios.Load
	}{es, m.Load})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Plan is the matrix as DIR/matrix.json records it, for the cells shard
// (nil: all) runs.
func (m *Matrix) Plan(shard *reports.Shard) *reports.MatrixPlan {
	p := &reports.MatrixPlan{Schema: record.Schema, File: m.Path, Digest: m.Digest,
		Load:     m.Load.Record(),
		Excluded: append([]string{}, m.Excluded...), Shard: shard, Run: []string{}}
	for _, c := range m.Cells {
		p.Cells = append(p.Cells, c.MatrixCell)
		if shard.Owns(c.Index) {
			p.Run = append(p.Run, c.ID)
		}
	}
	return p
}

// Resolve resolves every cell's builds in place (what debian:SUITE and
// source:stable name today), so that each cell's report names the exact
// builds it ran.
func (m *Matrix) Resolve(ctx context.Context, r *image.Resolver) error {
	var builds []*image.Build
	for i := range m.Cells {
		builds = append(builds, &m.Cells[i].FromBuild, &m.Cells[i].ToBuild)
	}
	return r.Resolve(ctx, builds...)
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, "+")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string{}, s...)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
