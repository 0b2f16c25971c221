package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ScenarioPlan is what one scenario of a run was meant to do — its steps,
// its expectation and the thresholds it is judged by — written once in
// run.json before any scenario starts, with a digest of itself; each
// scenario's meta.json carries the digest of its plan (PlanDigest), and
// the checker holds the scenario's record against the plan (CheckPlan).
type ScenarioPlan struct {
	Scenario string `json:"scenario"`
	// Source says where the plan came from: PlanCatalogue (a catalogue
	// entry, with the faults chosen), PlanCompare (a compare row).
	Source       string        `json:"source"`
	Expect       string        `json:"expect"`
	PlannedSteps []PlannedStep `json:"planned_steps"`
	ExpectDrops  *DropSpec     `json:"expect_drops,omitempty"`
	MaxStallMs   float64       `json:"max_stall_ms"`
	SteadyMs     float64       `json:"steady_ms"`
	Rate         int           `json:"rate"` // the load's rate, requests per second
	KnownLosses  []KnownLoss   `json:"known_losses,omitempty"`
	Strict       bool          `json:"strict,omitempty"`
	Faults       []string      `json:"faults,omitempty"` // NAME@STEP
	Final        *FinalPlan    `json:"final,omitempty"`  // what it must end on
	Row          *RowPlan      `json:"row,omitempty"`    // a compare row: its procedure, build and expectation
	// Digest is the SHA-256 of the plan's JSON with Digest empty.
	Digest string `json:"digest"`
}

// FinalPlan is what a scenario must end on (judge.FinalChecks holds
// final.json's processes to it).
type FinalPlan struct {
	Binary string `json:"binary"` // the binary that must serve: old or new
	// Loose: a fault changed what the end looks like; only the binary
	// nginx.pid's master runs, whether nginx serves, and whether orphans
	// are left (Orphans) are held.
	Loose      bool `json:"loose,omitempty"`
	Orphans    bool `json:"orphans,omitempty"`
	PidFileOld bool `json:"pid_file_old,omitempty"` // nginx.pid must still name the master it named at the start
}

// RowPlan is a compare row's part of its plan: the procedure, the build,
// and what compare --expect wants of that build (nil Expect: a
// measurement, no verdict).
type RowPlan struct {
	Procedure string          `json:"procedure"`
	Spec      string          `json:"spec"`
	Build     string          `json:"build"`
	Expect    *RowExpectation `json:"expect,omitempty"`
}

// RowExpectation is compare --expect's word on one build (reports.BuildExpect).
type RowExpectation struct {
	Outcomes    []string `json:"outcomes"`
	Drops       bool     `json:"drops,omitempty"`
	NonZeroExit bool     `json:"nonzero_exit,omitempty"`
}

// ScenarioPlan.Source values.
const (
	PlanCatalogue = "catalogue"
	PlanCompare   = "compare"
)

// Sealed returns the plan with its digest set.
func (p ScenarioPlan) Sealed() ScenarioPlan {
	p.Digest = p.digest()
	return p
}

func (p ScenarioPlan) digest() string {
	p.Digest = ""
	data, err := json.Marshal(p)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// PlanOf is the plan meta.json says its scenario ran by (Source, Faults
// and Digest are not in meta.json: left empty).
func PlanOf(m Meta) ScenarioPlan {
	return ScenarioPlan{Scenario: m.Scenario, Expect: m.Expect, PlannedSteps: m.PlannedSteps, ExpectDrops: m.ExpectDrops,
		MaxStallMs: m.MaxStallMs, SteadyMs: m.SteadyMs, Rate: m.Load.Rate, KnownLosses: m.KnownLosses, Strict: m.Strict, Final: m.FinalWant}
}

// PlanFor finds name's plan in run.json (nil: none).
func (p RunPlan) PlanFor(name string) *ScenarioPlan {
	for i := range p.Plans {
		if p.Plans[i].Scenario == name {
			return &p.Plans[i]
		}
	}
	return nil
}

// CheckPlan holds a scenario's record — meta.json and its step events —
// against the plan run.json holds for it: the plan's own digest, the
// digest meta.json names, each field of the expectation, the steps and
// the thresholds. Each disagreement is one line naming the field. Without
// a plan (plan nil), only the events' names are held against meta.json's
// steps (a record of an older version may have planned steps without the
// expectation its events carry).
func CheckPlan(plan *ScenarioPlan, m Meta, events []Step) []string {
	var out []string
	steps := m.PlannedSteps
	if plan != nil {
		file := PlanFile
		if plan.Source == PlanCompare {
			file = "compare.json"
		}
		if got := plan.digest(); got != plan.Digest {
			out = append(out, fmt.Sprintf("%s's plan of %s does not match its digest (%.12s…, recomputed %.12s…): it was changed after it was written",
				file, plan.Scenario, plan.Digest, got))
		}
		if m.PlanDigest != plan.Digest {
			out = append(out, fmt.Sprintf("meta.json plan_digest %q is not the digest of %s's plan of %s (%.12s…)", m.PlanDigest, file, plan.Scenario, plan.Digest))
		}
		rec := PlanOf(m)
		for _, f := range []struct {
			field      string
			want, have any
		}{
			{"expect", plan.Expect, rec.Expect},
			{"planned_steps", plan.PlannedSteps, rec.PlannedSteps},
			{"expect_drops", plan.ExpectDrops, rec.ExpectDrops},
			{"max_stall_ms", plan.MaxStallMs, rec.MaxStallMs},
			{"steady_ms", plan.SteadyMs, rec.SteadyMs},
			{"load.rate", plan.Rate, rec.Rate},
			{"known_losses", plan.KnownLosses, rec.KnownLosses},
			{"strict", plan.Strict, rec.Strict},
			{"final_want", plan.Final, rec.Final},
		} {
			w, _ := json.Marshal(f.want)
			h, _ := json.Marshal(f.have)
			if !bytes.Equal(w, h) && !(emptyJSON(w) && emptyJSON(h)) {
				out = append(out, fmt.Sprintf("meta.json %s is %s, %s's plan of %s says %s", f.field, clip(h), file, plan.Scenario, clip(w)))
			}
		}
		steps = plan.PlannedSteps
	}
	for i, e := range events {
		if i >= len(steps) {
			break
		}
		ps := steps[i]
		exp := e.Expected
		if exp == ExpectVerify {
			exp = ""
		}
		switch {
		case e.Name != ps.Name:
			out = append(out, fmt.Sprintf("events.jsonl step %d is %q, the plan's is %q", i+1, e.Name, ps.Name))
		case plan != nil && (exp != ps.Expected || e.ExpectedCause != ps.ExpectedCause):
			out = append(out, fmt.Sprintf("events.jsonl step %s expects %q (cause %q), the plan says %q (cause %q)",
				e.Name, e.Expected, e.ExpectedCause, ps.Expected, ps.ExpectedCause))
		}
	}
	return out
}

func emptyJSON(b []byte) bool {
	s := string(b)
	return s == "null" || s == "[]" || s == "{}" || s == `""` || s == "0" || s == "false"
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:117]) + "…"
	}
	return string(b)
}
