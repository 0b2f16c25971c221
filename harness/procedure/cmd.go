package procedure

import (
	"context"
	"fmt"
	"path"
)

// commandKind is a user's command line, split into words as a shell would
// and run without one.
var commandKind = Kind{Name: "cmd", Arg: "\"COMMAND\"",
	Help: "a command line, split into words like a shell would, run without one",
	parse: func(p *Procedure, arg string) error {
		argv, err := SplitWords(arg)
		if err != nil {
			return fmt.Errorf("procedure %q: %v", p.Spec, err)
		}
		if len(argv) == 0 {
			return fmt.Errorf("procedure %q: empty command line", p.Spec)
		}
		p.Argv = argv
		return nil
	},
	name: func(p Procedure) string { return "cmd-" + path.Base(p.Argv[0]) },
	prepare: func(ctx context.Context, pr *Prepared) error {
		pr.argv = append([]string(nil), pr.p.Argv...)
		pr.env = userEnv(pr.n, pr.o)
		return nil
	}}
