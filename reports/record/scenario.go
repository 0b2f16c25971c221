package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Files is what a scenario directory's own records say beside the
// scenario: meta.json (nil when unreadable), the end marker, and the run's
// clock (nil when meta.json or its start_wall is unreadable: no result can
// then be placed on it).
type Files struct {
	Meta  *Meta
	End   End
	Start *time.Time
}

// ReadScenario reads a scenario directory's records of what was planned and
// what happened — error.txt, meta.json, events.jsonl, final.json,
// faults.jsonl, the end marker — into a scenario with no measure and no
// verdict yet; what is missing or unreadable is in its Problems. The error
// is only for an unreadable directory.
func ReadScenario(dir string) (*Scenario, Files, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, Files{}, fmt.Errorf("read scenario %s: %w", dir, err)
	}
	s := &Scenario{
		Name:     filepath.Base(dir),
		Reasons:  []string{},
		Steps:    []Step{},
		Phases:   []Phase{},
		Failures: []Failure{},
		Drops:    []string{},
		Problems: []string{},
		Traffic:  []TrafficRow{},
	}
	problem := s.AddProblem
	path := func(name string) string { return filepath.Join(dir, name) }

	if Exists(path(ErrorFile)) {
		line, err := readFirstLine(path(ErrorFile))
		if err != nil {
			line = fmt.Sprintf("(%s unreadable: %v)", ErrorFile, err)
		}
		s.Error = line
	}

	var meta *Meta
	var m Meta
	if err := ReadJSON(path(MetaFile), &m); err != nil {
		problem("%v: the run's clock and expectation are unknown", err)
	} else {
		meta = &m
		if m.Scenario != "" {
			s.Name = m.Scenario
		}
		s.Expect, s.Load, s.LoadPath, s.StartWall = m.Expect, m.Load, m.LoadPath, m.StartWall
		s.SteadyMs, s.PlannedSteps, s.MaxStallMs, s.ExpectDrops = m.SteadyMs, m.PlannedSteps, m.MaxStallMs, m.ExpectDrops
		s.KnownLosses, s.Strict = m.KnownLosses, m.Strict
		s.Notes = append(s.Notes, m.Notes...)
		s.Site = m.Site
		s.From, s.To = m.From, m.To
		s.FromBuild, s.ToBuild = m.FromBuild, m.ToBuild
	}

	var events []Event
	if err := ReadJSONL(path(EventsFile), func(e *Event) { events = append(events, *e) }); err != nil {
		problem("%v", err)
	}
	// Steps are appended as they end; the clock orders them.
	sort.SliceStable(events, func(i, j int) bool { return events[i].SentMs < events[j].SentMs })
	for _, e := range events {
		phase := e.Phase
		if phase == "" {
			phase = e.Name
		}
		s.Steps = append(s.Steps, Step{
			Name: e.Name, Signal: e.Signal, PID: e.PID, PIDs: e.PIDs, SentMs: e.SentMs, VerifiedMs: e.VerifiedMs,
			Verified: e.Verified, Error: e.Error, Expected: e.Expected, ExpectedCause: e.ExpectedCause,
			Phase: phase, LogLines: e.LogLines,
		})
	}
	// A run stops at a step that failed unexpectedly: the steps after it
	// were never meant to run then.
	stoppedAtFailure := len(s.Steps) > 0 && !s.Steps[len(s.Steps)-1].Verified && s.Steps[len(s.Steps)-1].Expected != ExpectFail
	if meta != nil && meta.PlannedSteps != nil && len(events) < len(meta.PlannedSteps) && s.Error == "" && !stoppedAtFailure {
		var missing []string
		for _, ps := range meta.PlannedSteps[len(events):] {
			missing = append(missing, ps.Name)
		}
		problem("%d of %d planned steps recorded: %s never ran", len(events), len(meta.PlannedSteps), strings.Join(missing, ", "))
	}

	var final Final
	switch err := ReadJSON(path(FinalFile), &final); {
	case err == nil:
		s.Final = &final
	case errors.Is(err, ErrMissing):
		if s.Error == "" {
			problem("%s missing: the final state was never read, so nothing can be said of what nginx was left in", FinalFile)
		}
	default:
		problem("%v", err)
	}

	s.Faults = []FaultRecord{}
	byName := map[string]int{}
	switch err := ReadJSONL(path(FaultsFile), func(f *FaultRecord) {
		if i, ok := byName[f.Name+"@"+f.Step]; ok {
			s.Faults[i] = *f
			return
		}
		byName[f.Name+"@"+f.Step] = len(s.Faults)
		s.Faults = append(s.Faults, *f)
	}); {
	case err == nil, errors.Is(err, ErrMissing):
	default:
		problem("%v", err)
	}
	for _, f := range s.Faults {
		if f.Error != "" {
			problem("fault %s could not be injected or healed: %s", f.Name, f.Error)
		}
	}

	var end End
	switch err := ReadJSON(path(EndFile), &end); {
	case err == nil:
		s.Ended = true
	case errors.Is(err, ErrMissing):
		if s.Error == "" {
			problem("no end-of-run marker (%s): the run was killed or interrupted before it finished, whatever its files hold", EndFile)
		}
	default:
		problem("%v", err)
	}

	files := Files{Meta: meta, End: end}
	if meta != nil {
		start, err := time.Parse(time.RFC3339Nano, meta.StartWall)
		if err != nil {
			problem("meta.json start_wall %q: %v", meta.StartWall, err)
		} else {
			files.Start = &start
		}
	}
	return s, files, nil
}

// AddProblem adds what is wrong with the scenario's records to its
// Problems, once: a file is read by several readers, a bad one is said once.
func (s *Scenario) AddProblem(format string, args ...any) {
	if p := fmt.Sprintf(format, args...); !slices.Contains(s.Problems, p) {
		s.Problems = append(s.Problems, p)
	}
}

// AddNote adds to the scenario's Notes.
func (s *Scenario) AddNote(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}
