package scenarios

import (
	"slices"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	all, err := Lookup(nil)
	if err != nil || len(all) != len(Catalogue()) {
		t.Fatalf("default suite: %d scenarios, %v", len(all), err)
	}
	got, err := Lookup([]string{"rollback", "upgrade"})
	if err != nil || got[0].Name != "rollback" || got[1].Name != "upgrade" {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if _, err := Lookup([]string{"upgrade", "nope"}); err == nil || !strings.Contains(err.Error(), `unknown scenario "nope" (known: broken-build,`) {
		t.Fatalf("unknown scenario: %v", err)
	}
}

// Every scenario is well formed: a known expectation and kind, a
// positive control among them, steps that each say what verifies them.
func TestCatalogueIsWellFormed(t *testing.T) {
	controls := 0
	for _, s := range Catalogue() {
		if s.Expect != ExpectZeroDrops && s.Expect != ExpectDrops {
			t.Errorf("%s: expect %q", s.Name, s.Expect)
		}
		if s.Kind != "graceful" && s.Kind != "fallback" && s.Kind != "control" {
			t.Errorf("%s: kind %q", s.Name, s.Kind)
		}
		if s.Kind == "control" && s.Expect == ExpectDrops {
			controls++
		}
		if s.Final.Binary != "old" && s.Final.Binary != "new" {
			t.Errorf("%s: final binary %q", s.Name, s.Final.Binary)
		}
		for _, m := range s.Moves {
			if m.Step.Expect == nil || m.Step.Name == "" {
				t.Errorf("%s: a step without a name or an expectation", s.Name)
			}
			if m.ExpectFail && m.ExpectCause == "" {
				t.Errorf("%s: step %s must fail but names no cause: any failure would do", s.Name, m.Step.Name)
			}
		}
		if s.Expect == ExpectDrops {
			if s.Drops == nil || len(s.Drops.Classes) == 0 {
				t.Errorf("%s: expects drops but says not where and what", s.Name)
			} else if !slices.ContainsFunc(s.Moves, func(m Move) bool { return m.Step.Phase == s.Drops.Phase }) {
				t.Errorf("%s: drops expected in %s, a phase no step opens", s.Name, s.Drops.Phase)
			}
		}
	}
	if controls == 0 {
		t.Error("no positive control in the catalogue: a zero-drops pass would prove nothing")
	}
}

func TestLoadValidate(t *testing.T) {
	for _, l := range []Load{{Rate: 0, Method: "GET"}, {Rate: 10, Method: "PUT"}, {Rate: 10, Method: "GET", Slow: -1}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	if err := DefaultLoad.Validate(); err != nil {
		t.Errorf("default load: %v", err)
	}
}
