package fault

import (
	"context"
	"fmt"
	"path"
	"time"
)

// dirFull fills the file system of a directory nginx writes to — a small
// tmpfs mounted there for this fault's container only — before USR2.
type dirFull struct {
	name, what, dir string
	expect          Expectation
}

// fillerName is the file that fills the directory; healing removes it.
const fillerName = ".nuh-filler"

// tmpfsSize is the size of the small file system mounted for the fault.
const tmpfsSize = "size=256k"

func (f dirFull) Name() string             { return f.name }
func (f dirFull) What() string             { return f.what }
func (f dirFull) At() string               { return "install-new-binary" }
func (f dirFull) Needs() Needs             { return Needs{Tmpfs: map[string]string{f.dir: tmpfsSize}} }
func (f dirFull) HealAfter() time.Duration { return 0 }

func (f dirFull) Inject(ctx context.Context, t Target) (string, error) {
	filler := path.Join(f.dir, fillerName)
	// dd stops at ENOSPC with a non-zero exit: that is the point.
	t.Exec(ctx, "dd", "if=/dev/zero", "of="+filler, "bs=4096")
	out, err := exec(ctx, t, "df", "-k", f.dir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s filled: %s", f.dir, lastLine(out)), nil
}

func (f dirFull) Heal(ctx context.Context, t Target) (string, error) {
	if _, err := exec(ctx, t, "rm", "-f", path.Join(f.dir, fillerName)); err != nil {
		return "", err
	}
	return f.dir + " freed", nil
}

func (f dirFull) Expect(scenario string) Expectation {
	e := f.expect
	if e.Final == "" {
		e.Final = finalOf(scenario)
	}
	return e
}

var pidDirFull = dirFull{name: "pid-dir-full", dir: "/run",
	what: "the pid file's directory full (a small tmpfs on /run, filled) before USR2",
	expect: Expectation{Final: "old", FailStep: "spawn-new-master",
		FailCause: `pwrite\(\) "/run/nginx\.pid" failed \(28: No space left on device\)`,
		Why: "the new master cannot write nginx.pid and exits ([crit] pwrite() failed, No space left on device); " +
			"the old master takes nginx.pid.oldbin back and serves on: nothing lost, no upgrade"}}

var logDirFull = dirFull{name: "log-dir-full", dir: "/var/log/nginx",
	what: "the error log's file system full (a small tmpfs on /var/log/nginx, filled) before USR2",
	expect: Expectation{Why: "nginx does not need its error log to start: the upgrade completes and nothing is lost — " +
		"and nothing it would have logged is kept, so a failure then would leave no cause to quote"}}
