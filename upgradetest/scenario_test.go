package upgradetest

import (
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// mine is a user's scenario: USR2, then straight to QUIT of the old master
// without WINCH (the old workers drain on QUIT).
func mine() scenarios.Scenario {
	return scenarios.Scenario{Name: "upgrade-without-winch", Kind: "graceful", Expect: scenarios.ExpectZeroDrops,
		Moves: []scenarios.Move{
			{Step: nginx.InstallBinary("install-new-binary", harness.NewBinaryStage)},
			{Step: nginx.SpawnNewMaster(), Audit: 2 * time.Second},
			{Step: nginx.QuitOldMaster(90 * time.Second), Audit: 2 * time.Second},
		},
		Final: scenarios.Final{Binary: "new"}}
}

func TestCheckScenario(t *testing.T) {
	if err := CheckScenario(mine()); err != nil {
		t.Fatalf("a scenario of the harness's steps: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*scenarios.Scenario)
		want string
	}{
		{"no name", func(s *scenarios.Scenario) { s.Name = "" }, "a scenario needs a name"},
		{"a catalogue name", func(s *scenarios.Scenario) { s.Name = "upgrade" }, "is a catalogue scenario's"},
		{"no steps", func(s *scenarios.Scenario) { s.Moves = nil }, "no steps"},
		{"known losses", func(s *scenarios.Scenario) { s.KnownLosses = []record.KnownLoss{{Name: "mine"}} }, "declares known losses"},
		{"stall limit", func(s *scenarios.Scenario) { s.MaxStall = 5 * time.Second }, "raises the stall limit"},
		{"faults", func(s *scenarios.Scenario) { s.Faults = []fault.Chosen{{}} }, "strikes faults"},
		{"drops nowhere", func(s *scenarios.Scenario) { s.Expect = scenarios.ExpectDrops }, "does not say where and what"},
		{"no expectation", func(s *scenarios.Scenario) { s.Expect = "" }, `expectation ""`},
		{"no final binary", func(s *scenarios.Scenario) { s.Final.Binary = "" }, `final binary ""`},
		{"a step verifying nothing", func(s *scenarios.Scenario) { s.Moves[1].Step.Expect = nil }, "spawn-new-master verifies nothing"},
		{"a step doing nothing", func(s *scenarios.Scenario) { s.Moves[1].Step.Signal = "" }, "neither signals nor acts"},
		{"twice one name", func(s *scenarios.Scenario) { s.Moves[2].Step.Name = "spawn-new-master" }, "two steps named spawn-new-master"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mine()
			tc.edit(&s)
			err := CheckScenario(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("CheckScenario = %v, want one line with %q", err, tc.want)
			}
		})
	}
}

// Bad input is one line, before any engine is asked.
func TestPairRefusesBadInput(t *testing.T) {
	e := &Engine{logf: func(string, ...any) {}, timeout: time.Minute}
	for _, tc := range []struct {
		from, to string
		opts     []PairOption
		want     string
	}{
		{"debian:bookworm", "binary:/no/such/nginx", nil, "upgradetest: to: binary:/no/such/nginx: no such file"},
		{"bookworm", "debian:bookworm-security", nil, `upgradetest: from: unknown build "bookworm"`},
		{"debian:bookworm", "debian:bookworm-security", []PairOption{BrokenBuild("source:")}, "upgradetest: broken build:"},
		{"debian:bookworm", "debian:bookworm-security", []PairOption{Load(scenarios.Load{Rate: 0, Method: "GET"})}, "upgradetest: load: --rate"},
	} {
		_, err := e.Pair(t.Context(), tc.from, tc.to, append(tc.opts, ReportDir(t.TempDir()))...)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Pair(%s, %s) = %v, want one line starting %q", tc.from, tc.to, err, tc.want)
		}
	}
	p := &Pair{engine: e}
	for name, want := range map[string]string{
		"":         "upgradetest: no scenario named (known: ",
		"upgrayed": `upgradetest: unknown scenario "upgrayed" (known: `,
	} {
		if _, err := p.Run(t.Context(), name); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Run(%q) = %v, want %q", name, err, want)
		}
	}
	if _, err := p.Run(t.Context(), "upgrade", Attempts(0)); err == nil || err.Error() != "upgradetest: Attempts(0): want at least 1" {
		t.Errorf("Attempts(0): %v", err)
	}
	if _, err := p.Run(t.Context(), "upgrade", Traffic("gopher")); err == nil || !strings.HasPrefix(err.Error(), "upgradetest: traffic: ") {
		t.Errorf("Traffic(gopher): %v", err)
	}
}

// No engine is one line that says where it looked.
func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/no.sock")
	_, err := NewEngine(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "upgradetest: no engine: docker unreachable at unix://") || strings.Contains(err.Error(), "\n") {
		t.Errorf("NewEngine without an engine = %v", err)
	}
	for _, o := range []EngineOption{Log(nil), SetupTimeout(0)} {
		if _, err := NewEngine(t.Context(), o); err == nil || !strings.HasPrefix(err.Error(), "upgradetest: ") {
			t.Errorf("a bad option: %v", err)
		}
	}
}
