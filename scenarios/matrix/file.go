package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
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
	KeepAlive *bool      `json:"keepalive"`
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
