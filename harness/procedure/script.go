package procedure

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// scriptKind is a user's script, copied into the container and run by path
// with NGINX_PID_FILE, NGINX_BINARY, NGINX_NEW_BINARY and NGINX_OLD_BINARY
// in its environment.
var scriptKind = Kind{Name: "script", Arg: "PATH",
	Help: "your script, copied in and run with NGINX_PID_FILE, NGINX_BINARY, NGINX_NEW_BINARY and NGINX_OLD_BINARY in its environment (and NGINX_UPGRADE_RUN under --repeat); --init systemd runs it under systemd",
	parse: func(p *Procedure, arg string) error {
		if arg == "" {
			return fmt.Errorf("procedure %q: want script:PATH", p.Spec)
		}
		abs, err := filepath.Abs(arg)
		if err != nil {
			return fmt.Errorf("procedure %q: %v", p.Spec, err)
		}
		if st, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("procedure %s: no such file", p.Spec)
		} else if err != nil {
			return fmt.Errorf("procedure %s: %v", p.Spec, err)
		} else if st.IsDir() {
			return fmt.Errorf("procedure %q: %s is a directory", p.Spec, abs)
		}
		p.Script = abs
		return nil
	},
	name: func(p Procedure) string { return "script-" + filepath.Base(p.Script) },
	prepare: func(ctx context.Context, pr *Prepared) error {
		data, err := os.ReadFile(pr.p.Script)
		if err != nil {
			return fmt.Errorf("procedure %s: %w", pr.p.Spec, err)
		}
		dst := procedureDir + "/" + filepath.Base(pr.p.Script)
		if err := run(ctx, pr.n, "mkdir", "-p", procedureDir); err != nil {
			return err
		}
		if err := pr.n.WriteFile(ctx, dst, data, 0o755); err != nil {
			return fmt.Errorf("copy %s into the container: %w", pr.p.Script, err)
		}
		pr.argv = []string{dst}
		pr.env = userEnv(pr.n, pr.o)
		return nil
	}}
