package matrix

import (
	"strings"
)

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
