// Package matrix reads a matrix file — builds, configurations, traffic,
// faults and scenarios — into its cells: the cross product minus the
// exclusions, in a fixed order, each with a stable id.
package matrix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// File is a matrix file as written (YAML or JSON; the same keys). Every key
// is optional but `to`.
//
//	from: debian:bookworm          # one build, or a list
//	to: [source:stable, debian:bookworm-security]
//	configs:                                # "default" is the harness's own nginx.conf
//	  - default
//	  - {name: small-buffers, path: small.conf}
//	traffic: [http1, http1-keepalive]       # a kind, or a list of kinds run together, per cell
//	faults: [none, kill-new-worker]         # "none" (or ""): no fault
//	scenarios: [upgrade]                    # a scenario, or a list run in one cell
//	exclude:
//	  - {to: source:stable, traffic: http1-keepalive}
//	rate: 300                               # load settings, for every cell
type File struct {
	From      stringList `json:"from"`
	To        stringList `json:"to"`
	Configs   []Config   `json:"configs"`
	Traffic   []set      `json:"traffic"`
	Faults    []set      `json:"faults"`
	Scenarios []set      `json:"scenarios"`
	Exclude   []Exclude  `json:"exclude"`
	Rate      *int       `json:"rate"`
	Method    string     `json:"method"`
	Keepalive *bool      `json:"keepalive"`
	Slow      *int       `json:"slow"`
}

// Config is a configuration of the matrix: "default" (the harness's own),
// a path, or {name, path}. A path is relative to the matrix file.
type Config struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Exclude is a partial cell: every combination that matches each key given
// is left out.
type Exclude struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Config   string `json:"config"`
	Traffic  set    `json:"traffic"`
	Fault    set    `json:"fault"`
	Faults   set    `json:"faults"`
	Scenario set    `json:"scenario"`
}

// stringList is one string or a list of them.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings, got %s", b)
	}
	*l = many
	return nil
}

// set is one name or a list of names that go together in a cell.
type set []string

func (s *set) UnmarshalJSON(b []byte) error { return (*stringList)(s).UnmarshalJSON(b) }

func (c *Config) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*c = Config{Path: one}
		return nil
	}
	type plain Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("configs: %w", err)
	}
	*c = Config(p)
	return nil
}

func (e *Exclude) UnmarshalJSON(b []byte) error {
	type plain Exclude
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("exclude: %w", err)
	}
	*e = Exclude(p)
	return nil
}

// Matrix is a matrix file read and checked.
type Matrix struct {
	Path     string // the file, as given
	Load     scenarios.Load
	Cells    []Cell
	Excluded []string // ids of the combinations the exclude list removed
	Digest   string
}

// Cell is one combination.
type Cell struct {
	reports.MatrixCell
	FromBuild, ToBuild image.Build
	ConfigData         []byte      // nil: the harness's own
	ConfigDir          bool        // the configuration is a directory (a whole /etc/nginx tree)
	Tree               *nginx.Tree // the tree read, when ConfigDir
	Chosen             []fault.Chosen
}

// Error is bad input in a matrix file: the CLI exits 2 with it.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func bad(path, format string, args ...any) error {
	return &Error{path + ": " + fmt.Sprintf(format, args...)}
}

// Load reads and checks the matrix file at path; base is the load the
// command line asked for, which the file's rate, method, keepalive and slow
// override.
func Load(path string, base scenarios.Load) (*Matrix, error) {
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

// unknownField is encoding/json's message for a key no field takes.
var unknownField = regexp.MustCompile(`json: unknown field "([^"]*)"`)

// decode reads YAML (JSON is YAML) into a generic value, then decodes that
// as JSON into f, strictly: an unknown key is an error naming it.
func decode(data []byte, f *File) error {
	var doc any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("empty matrix file: want at least `to`")
		}
		return fmt.Errorf("not YAML or JSON: %s", oneLine(err.Error()))
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("want a mapping of keys (from, to, configs, traffic, faults, scenarios, exclude, rate, method, keepalive, slow) at the top")
	}
	if err := checkKeys(doc.(map[string]any)); err != nil {
		return err
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%s", oneLine(err.Error()))
	}
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.DisallowUnknownFields()
	if err := jd.Decode(f); err != nil {
		msg := err.Error()
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			where := "at the top"
			if i := strings.Index(msg, ": json: unknown field"); i > 0 {
				where = "in " + msg[:i]
			}
			return fmt.Errorf("unknown key %q %s (known: from, to, configs, traffic, faults, scenarios, exclude, rate, method, keepalive, slow; in configs: name, path; in exclude: from, to, config, traffic, fault, scenario)", m[1], where)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%s: want %s, got %s", te.Field, kindOf(te.Type.Kind().String()), kindOf(te.Value))
		}
		return fmt.Errorf("%s", oneLine(strings.TrimPrefix(msg, "json: ")))
	}
	return nil
}

// Keys a matrix file may use, where. encoding/json matches keys without
// regard to case; a matrix file's keys are matched exactly.
var (
	topKeys     = []string{"from", "to", "configs", "traffic", "faults", "scenarios", "exclude", "rate", "method", "keepalive", "slow"}
	configKeys  = []string{"name", "path"}
	excludeKeys = []string{"from", "to", "config", "traffic", "fault", "faults", "scenario"}
)

func checkKeys(doc map[string]any) error {
	check := func(m map[string]any, known []string, where string) error {
		for k := range m {
			if !slices.Contains(known, k) {
				return fmt.Errorf("unknown key %q %s (known there: %s)", k, where, strings.Join(known, ", "))
			}
		}
		return nil
	}
	if err := check(doc, topKeys, "at the top"); err != nil {
		return err
	}
	for _, list := range []struct {
		key   string
		known []string
	}{{"configs", configKeys}, {"exclude", excludeKeys}} {
		items, _ := doc[list.key].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if err := check(m, list.known, "in "+list.key); err != nil {
					return err
				}
			}
		}
	}
	return nil
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
	if f.Keepalive != nil {
		m.Load.KeepAlive = *f.Keepalive
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

type namedConfig struct {
	Config
	data []byte
	dir  bool
	tree *nginx.Tree
	sha  string
}

func readConfigs(path string, confs []Config) ([]namedConfig, error) {
	if len(confs) == 0 {
		confs = []Config{{Name: "default"}}
	}
	var out []namedConfig
	names := map[string]bool{}
	for _, c := range confs {
		if c.Path == "default" && c.Name == "" {
			c = Config{Name: "default"}
		}
		if c.Name == "" {
			c.Name = strings.TrimSuffix(filepath.Base(c.Path), filepath.Ext(c.Path))
		}
		if names[c.Name] {
			return nil, bad(path, "configs: two configurations named %q: give each a name", c.Name)
		}
		names[c.Name] = true
		nc := namedConfig{Config: c}
		if c.Path != "" {
			p := c.Path
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, bad(path, "configs: %s: no such file", c.Path)
			}
			if st.IsDir() {
				// A whole /etc/nginx tree, as --config-dir places it; its
				// digest covers every file's path, mode, link and content.
				nc.dir = true
				if nc.tree, err = nginx.ReadTree(p); err != nil {
					return nil, bad(path, "configs: %s: %v", c.Path, err)
				}
				h := sha256.New()
				for _, f := range nc.tree.Files {
					fmt.Fprintf(h, "%s\x00%o\x00%s\x00%d\x00", f.Path, f.Mode, f.Link, len(f.Data))
					h.Write(f.Data)
				}
				nc.sha = hex.EncodeToString(h.Sum(nil))
			} else {
				if nc.data, err = os.ReadFile(p); err != nil {
					return nil, bad(path, "configs: %s: %v", c.Path, err)
				}
				h := sha256.Sum256(nc.data)
				nc.sha = hex.EncodeToString(h[:])
			}
		} else if c.Name != "default" {
			return nil, bad(path, "configs: %q has no path (only \"default\", the harness's own, needs none)", c.Name)
		}
		out = append(out, nc)
	}
	return out, nil
}

func checkExclude(path string, e Exclude, f *File, configs []namedConfig, traffic, faults, scs []set) error {
	in := func(key, v string, list []string) error {
		if v == "" {
			return nil
		}
		for _, x := range list {
			if x == v {
				return nil
			}
		}
		return bad(path, "exclude: %s %q is not in the matrix's %s (%s)", key, v, key, strings.Join(list, ", "))
	}
	var confNames []string
	for _, c := range configs {
		confNames = append(confNames, c.Name)
	}
	if err := in("from", e.From, f.From); err != nil {
		return err
	}
	if err := in("to", e.To, f.To); err != nil {
		return err
	}
	if err := in("config", e.Config, confNames); err != nil {
		return err
	}
	setIn := func(key string, v set, sets []set, none string) error {
		if v == nil {
			return nil
		}
		var names []string
		for _, s := range sets {
			names = append(names, joinOr(s, none))
			if joinOr(s, none) == joinOr(v, none) {
				return nil
			}
		}
		return bad(path, "exclude: %s %q is not in the matrix's %s (%s)", key, joinOr(v, none), key, strings.Join(names, ", "))
	}
	if err := setIn("traffic", e.Traffic, traffic, "default"); err != nil {
		return err
	}
	fs := e.Fault
	if fs == nil {
		fs = e.Faults
	}
	if fs != nil {
		var clean set
		for _, x := range fs {
			if x != "" && x != "none" {
				clean = append(clean, x)
			}
		}
		if err := setIn("faults", clean, faults, "none"); err != nil {
			return err
		}
	}
	return setIn("scenarios", e.Scenario, scs, "")
}

func excluded(list []Exclude, c Cell) bool {
	for _, e := range list {
		fs := e.Fault
		if fs == nil {
			fs = e.Faults
		}
		var clean []string
		for _, x := range fs {
			if x != "" && x != "none" {
				clean = append(clean, x)
			}
		}
		if (e.From == "" || e.From == c.From) && (e.To == "" || e.To == c.To) && (e.Config == "" || e.Config == c.MatrixCell.Config) &&
			(e.Traffic == nil || joinOr(e.Traffic, "default") == joinOr(c.Traffic, "default")) &&
			(fs == nil || joinOr(clean, "none") == joinOr(c.Faults, "none")) &&
			(e.Scenario == nil || strings.Join(e.Scenario, "+") == strings.Join(c.Scenarios, "+")) {
			return true
		}
	}
	return false
}

// faultsApply checks that the cell's faults strike each of its scenarios.
func faultsApply(c Cell) error {
	if len(c.Chosen) == 0 {
		return nil
	}
	found, err := scenarios.Lookup(c.Scenarios)
	if err != nil {
		return err
	}
	for _, sc := range found {
		if _, err := scenarios.WithFaults(sc, c.Chosen); err != nil {
			return err
		}
	}
	return nil
}

// ScenarioList is the cell's scenarios, struck by its faults.
func (c Cell) ScenarioList() ([]scenarios.Scenario, error) {
	found, err := scenarios.Lookup(c.Scenarios)
	if err != nil {
		return nil, err
	}
	if len(c.Chosen) == 0 {
		return found, nil
	}
	out := make([]scenarios.Scenario, 0, len(found))
	for _, sc := range found {
		fsc, err := scenarios.WithFaults(sc, c.Chosen)
		if err != nil {
			return nil, err
		}
		out = append(out, fsc)
	}
	return out, nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9.]+`)

func slug(s string, max int) string {
	s = strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > max {
		h := sha256.Sum256([]byte(s))
		s = s[:max-5] + "-" + hex.EncodeToString(h[:])[:4]
	}
	return s
}

// cellID is a readable slug of the combination: to-build, config, traffic,
// faults, scenarios (and the from-build when the matrix has several).
func cellID(c Cell, withFrom bool) string {
	parts := []string{}
	if withFrom {
		parts = append(parts, slug(c.From, 32))
	}
	parts = append(parts, slug(c.To, 32), slug(c.MatrixCell.Config, 24), slug(joinOr(c.Traffic, "default"), 32),
		slug(joinOr(c.Faults, "nofault"), 32), slug(strings.Join(c.Scenarios, "+"), 32))
	return strings.Join(parts, "_")
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
		Load:     record.Load{Rate: m.Load.Rate, Method: m.Load.Method, Keepalive: m.Load.KeepAlive, Slow: m.Load.Slow},
		Excluded: append([]string{}, m.Excluded...), Shard: shard, Run: []string{}}
	for _, c := range m.Cells {
		p.Cells = append(p.Cells, c.MatrixCell)
		if shard.Owns(c.Index) {
			p.Run = append(p.Run, c.ID)
		}
	}
	return p
}

// Shard returns the cells of shard (all when nil), in the matrix's order.
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

func (m *Matrix) Shard(shard *reports.Shard) []Cell {
	var out []Cell
	for _, c := range m.Cells {
		if shard.Owns(c.Index) {
			out = append(out, c)
		}
	}
	return out
}

// ParseShard reads --shard I/N (1 ≤ I ≤ N).
func ParseShard(s string) (*reports.Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n || n > 1000 {
		return nil, fmt.Errorf("--shard: got %q, want I/N with 1 ≤ I ≤ N ≤ 1000 (e.g. 1/2 and 2/2 for two CI jobs)", s)
	}
	return &reports.Shard{Index: i, Count: n}, nil
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

// kindOf names a JSON or Go kind for a person.
func kindOf(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), k == "number":
		return "a number"
	case k == "bool":
		return "true or false"
	case k == "slice", k == "array":
		return "a list"
	case k == "struct", k == "object", k == "map":
		return "a mapping"
	}
	return "a " + k
}
