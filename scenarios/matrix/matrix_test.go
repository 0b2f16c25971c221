package matrix

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

func write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const small = `
to: [debian:bookworm-security, source:stable]
configs: [default, {name: one-worker, path: one.conf}]
traffic: [http1, http2]
scenarios: [upgrade]
rate: 300
`

func load(t *testing.T, text string) (*Matrix, error) {
	t.Helper()
	p := write(t, "m.yaml", text)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "one.conf"), []byte("events {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Read(p, scenarios.DefaultLoad)
}

func TestCrossProductInOrder(t *testing.T) {
	m, err := load(t, small)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 8 {
		t.Fatalf("got %d cells, want 2 builds × 2 configs × 2 kinds = 8", len(m.Cells))
	}
	first := m.Cells[0]
	if first.To != "debian:bookworm-security" || first.MatrixCell.Config != "default" || first.Traffic[0] != "http1" || first.Index != 0 {
		t.Errorf("first cell %+v", first.MatrixCell)
	}
	if first.ID != "debian-bookworm-security_default_http1_nofault_upgrade" {
		t.Errorf("id %q", first.ID)
	}
	if m.Cells[7].To != "source:stable" || m.Cells[7].MatrixCell.Config != "one-worker" || m.Cells[7].Traffic[0] != "http2" {
		t.Errorf("last cell %+v", m.Cells[7].MatrixCell)
	}
	if m.Cells[2].ConfigData == nil || m.Cells[0].ConfigData != nil {
		t.Errorf("the config file's content goes with its cells, the default's is nil")
	}
	if m.Load.Rate != 300 {
		t.Errorf("rate %d, want the file's 300", m.Load.Rate)
	}
	// The same file read again gives the same cells, ids and digest.
	again, err := load(t, small)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != m.Digest {
		t.Errorf("digest changed between two readings of one file")
	}
	ids := map[string]bool{}
	for i, c := range m.Cells {
		if again.Cells[i].ID != c.ID {
			t.Errorf("cell %d: id %s then %s", i, c.ID, again.Cells[i].ID)
		}
		if ids[c.ID] {
			t.Errorf("id %s twice", c.ID)
		}
		ids[c.ID] = true
	}
}

func TestExclusions(t *testing.T) {
	m, err := load(t, small+`
exclude:
  - {to: source:stable, traffic: http2}
  - {config: one-worker, traffic: http1, to: debian:bookworm-security}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 5 || len(m.Excluded) != 3 {
		t.Fatalf("got %d cells and %d excluded, want 5 and 3", len(m.Cells), len(m.Excluded))
	}
	for i, c := range m.Cells {
		if c.Index != i {
			t.Errorf("cell %s has index %d at place %d: indexes number the cells left", c.ID, c.Index, i)
		}
		if c.To == "source:stable" && c.Traffic[0] == "http2" {
			t.Errorf("excluded cell %s is in the matrix", c.ID)
		}
	}
}

func TestBadInputNamesIt(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "to: [debian:bookworm-security]\nbuilds: [x]\n", `unknown key "builds"`},
		{"unknown key in a config", "to: [debian:bookworm-security]\nconfigs: [{name: a, file: one.conf}]\n", `unknown key "file" in configs`},
		{"unknown key in an exclusion", "to: [debian:bookworm-security]\nexclude: [{build: x}]\n", `unknown key "build" in exclude`},
		{"unknown scenario", "to: [debian:bookworm-security]\nscenarios: [upgrayedd]\n", `unknown scenario "upgrayedd"`},
		{"unknown traffic", "to: [debian:bookworm-security]\ntraffic: [[http1, gopher]]\n", `unknown traffic kind "gopher"`},
		{"unknown fault", "to: [debian:bookworm-security]\nfaults: [none, meteor]\n", `unknown fault "meteor"`},
		{"a build that does not parse", "to: [debian:bookworm-security, rpm:1.2]\n", `unknown build "rpm:1.2"`},
		{"an exclusion of a value not in the matrix", "to: [debian:bookworm-security]\nexclude: [{traffic: http2}]\n", `traffic "http2" is not in the matrix`},
		{"no to", "configs: [default]\n", "no `to` builds"},
		{"a missing config", "to: [debian:bookworm-security]\nconfigs: [nope.conf]\n", "nope.conf: no such file"},
		{"a fault that does not apply", "to: [debian:bookworm-security]\nscenarios: [kill-fallback]\nfaults: [kill-new-worker]\n", "does not apply to kill-fallback"},
		{"a wrong type", "to: [debian:bookworm-security]\nrate: lots\n", "rate: want a number"},
		{"not a mapping", "- a\n- b\n", "want a mapping"},
		{"everything excluded", "to: [debian:bookworm-security]\nexclude: [{to: debian:bookworm-security}]\n", "leaves no cell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.text)
			if err == nil {
				t.Fatalf("no error, want one naming %q", tc.want)
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Errorf("error %T is not bad input: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "m.yaml") {
				t.Errorf("error %q does not name %q and the file", err, tc.want)
			}
		})
	}
}

func TestJSONIsReadAlike(t *testing.T) {
	p := write(t, "m.json", `{"to": ["debian:bookworm-security"], "traffic": [["http1", "http2"], "http1"], "faults": ["", "kill-new-worker"], "scenarios": ["upgrade"]}`)
	m, err := Read(p, scenarios.DefaultLoad)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 4 {
		t.Fatalf("got %d cells, want 2 traffic sets × 2 fault sets = 4", len(m.Cells))
	}
	if got := strings.Join(m.Cells[0].Traffic, "+"); got != "http1+http2" {
		t.Errorf("a list of kinds runs together in one cell: got %s", got)
	}
	if len(m.Cells[0].Faults) != 0 || m.Cells[1].Faults[0] != "kill-new-worker" {
		t.Errorf("faults: %v, %v", m.Cells[0].Faults, m.Cells[1].Faults)
	}
	p2 := write(t, "bad.json", `{"to": ["debian:bookworm-security"], "colour": 1}`)
	if _, err := Read(p2, scenarios.DefaultLoad); err == nil || !strings.Contains(err.Error(), `unknown key "colour"`) {
		t.Errorf("JSON with an unknown key: %v", err)
	}
}

func TestShardsOfAMatrix(t *testing.T) {
	m, err := load(t, small)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 8, 9} {
		seen := map[string]int{}
		for i := 1; i <= n; i++ {
			s, err := ParseShard(strings.Join([]string{itoa(i), itoa(n)}, "/"))
			if err != nil {
				t.Fatal(err)
			}
			plan := m.Plan(s)
			cells := m.Shard(s)
			if len(plan.Run) != len(cells) || len(plan.Cells) != len(m.Cells) {
				t.Errorf("shard %d/%d: plan runs %d, shard has %d; plan lists %d of %d", i, n, len(plan.Run), len(cells), len(plan.Cells), len(m.Cells))
			}
			for _, c := range cells {
				seen[c.ID]++
			}
		}
		for _, c := range m.Cells {
			if seen[c.ID] != 1 {
				t.Errorf("%d shards: cell %s run %d times, want once", n, c.ID, seen[c.ID])
			}
		}
	}
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0", "-1/2"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("--shard %s accepted", bad)
		}
	}
	if whole := m.Plan(nil); len(whole.Run) != len(m.Cells) || whole.Shard != (*reports.Shard)(nil) {
		t.Errorf("the unsharded plan runs %d of %d cells", len(whole.Run), len(m.Cells))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// An engine that does not answer turns the cell its worker took into an
// error cell naming it; the worker retires, and what no worker ran is an
// error cell too. (No container starts: the only engine is unreachable.)
func TestUnreachableEngineMakesErrorCells(t *testing.T) {
	m, err := load(t, small)
	if err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
	engines, err := Connect(t.Context(), []string{sock})
	if err != nil {
		t.Fatal(err)
	}
	if len(Reachable(engines)) != 0 || engines[0].Err == nil {
		t.Fatalf("the engine at %s answered", sock)
	}
	out := t.TempDir()
	r, err := m.Run(t.Context(), engines, &reports.Shard{Index: 1, Count: 2}, scenarios.Params{Load: m.Load}, out, func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 4 {
		t.Fatalf("shard 1/2 has %d cells, want 4", len(r.Cells))
	}
	first := r.Cells[0]
	if first.Verdict != record.VerdictError || !strings.Contains(first.Error, "no-docker.sock") || !strings.Contains(first.Error, "unreachable") {
		t.Errorf("the cell the worker took: %s %q, want an error naming the engine", first.Verdict, first.Error)
	}
	for _, c := range r.Cells[1:] {
		if c.Verdict != record.VerdictError || c.Error != reports.NotRunInterrupted {
			t.Errorf("cell %s: %s %q, want error %q", c.ID, c.Verdict, c.Error, reports.NotRunInterrupted)
		}
	}
	if r.Verdict != record.VerdictError {
		t.Errorf("verdict %s, want error", r.Verdict)
	}
	if _, err := Connect(t.Context(), []string{"tcp://203.0.113.7:2375"}); err == nil {
		t.Errorf("an engine on another machine was accepted")
	}
}
