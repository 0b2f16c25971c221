// Package procedure is the registry of upgrade procedures that compare
// puts side by side: the manual signal steps, Debian's init script and
// packages, a user's script or command. Each is a file of its own and an
// entry in the registry; compare's help and defaults are generated from it.
package procedure

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

// Kind is one registered procedure: how it is named and parsed, what it
// says of itself, and how it is made ready in a node.
type Kind struct {
	Name string // its spec, or the prefix before ':' of one that takes an argument
	Arg  string // the argument it takes ("PATH", "\"COMMAND\""), or ""
	Help string // one line for compare --help and run --list
	// Default: compare runs it when no procedure is named.
	Default bool
	// Systemd: it runs in a node with systemd as PID 1 and nginx as its
	// nginx.service (nginx.WithSystemd), not under Docker's init.
	Systemd bool
	// parse reads the argument into p (kinds with an Arg).
	parse func(p *Procedure, arg string) error
	// prepare makes it ready in pr's node (argv, environment, notes); nil:
	// it runs the verified steps itself (run).
	prepare func(ctx context.Context, pr *Prepared) error
	// run, when set, runs it instead of its argv.
	run func(ctx context.Context, pr *Prepared, res *Result)
	// before, when set, runs before its argv (e.g. the binary put in place).
	before func(ctx context.Context, pr *Prepared) error
	// name, when set, names a parsed procedure for reports and directories.
	name func(p Procedure) string
}

// registry lists every procedure, in the order help shows them. Adding a
// procedure is a file that defines its Kind and an entry here.
var registry = []Kind{manualKind, debianInitdKind, debianPackageKind, debianPackageHostKind,
	systemdPackageKind, systemdManualKind, systemctlReloadKind, systemctlRestartKind, scriptKind, commandKind}

// Kinds returns the registered procedures.
func Kinds() []Kind { return append([]Kind(nil), registry...) }

// Defaults are the procedures compare runs when none is named.
func Defaults() []string {
	var out []string
	for _, k := range registry {
		if k.Default {
			out = append(out, k.Name)
		}
	}
	return out
}

// Help is a line per procedure, for compare --help and run --list.
func Help() []string {
	var out []string
	for _, k := range registry {
		spec := k.Name
		if k.Arg != "" {
			spec += ":" + k.Arg
		}
		out = append(out, fmt.Sprintf("%-20s %s", spec, k.Help))
	}
	return out
}

// DefaultTimeout bounds one procedure; one that hangs is killed.
const DefaultTimeout = 120 * time.Second

// Paths the procedures use inside the container.
const (
	procedureDir = harness.StageDir + "/procedure"
	killAfter    = 5 * time.Second // timeout(1)'s --kill-after: TERM first, then KILL
	execSlack    = 15 * time.Second
)

// Procedure is one way to upgrade, parsed from a spec: manual,
// debian-initd, debian-package, script:PATH or cmd:"COMMAND LINE".
type Procedure struct {
	Spec   string   // as given
	Kind   string   // the registered Kind's name
	Script string   // script: the script on the host (absolute)
	Argv   []string // cmd: the command line, split
	// UnderSystemd: a script or command run with systemd as PID 1 and
	// nginx as its nginx.service (compare --init systemd), as the
	// distributions' scripts that talk to their init expect.
	UnderSystemd bool
}

// Init values of compare --init.
const (
	InitDocker  = "docker-init"
	InitSystemd = "systemd"
)

// SetInit puts a script or command under the init it was written for.
// The other procedures have their init built in: naming another is an
// error that says which to use.
func (p *Procedure) SetInit(init string) error {
	switch init {
	case "", InitDocker:
		p.UnderSystemd = false
		return nil
	case InitSystemd:
	default:
		return fmt.Errorf("--init %q: want %s or %s", init, InitDocker, InitSystemd)
	}
	if p.Kind != scriptKind.Name && p.Kind != commandKind.Name {
		if !p.Systemd() {
			return fmt.Errorf("--init systemd: %s has its own init (docker-init); the systemd procedures are systemd-package, systemd-manual, systemctl-reload, systemctl-restart", p.Spec)
		}
		return nil
	}
	p.UnderSystemd = true
	return nil
}

func kindOf(name string) (Kind, bool) {
	for _, k := range registry {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Name is a short name for reports and directory names.
func (p Procedure) Name() string {
	if k, ok := kindOf(p.Kind); ok && k.name != nil {
		return k.name(p)
	}
	return p.Kind
}

// Parse parses a procedure spec; a script file must exist.
func Parse(spec string) (Procedure, error) {
	p := Procedure{Spec: spec}
	name, rest, hasArg := strings.Cut(spec, ":")
	k, ok := kindOf(name)
	if !ok {
		var known []string
		for _, k := range registry {
			if k.Arg != "" {
				known = append(known, k.Name+":"+k.Arg)
			} else {
				known = append(known, k.Name)
			}
		}
		return p, fmt.Errorf("unknown procedure %q (want %s)", spec, strings.Join(known, ", "))
	}
	p.Kind = k.Name
	switch {
	case k.Arg == "" && hasArg:
		return p, fmt.Errorf("procedure %q: %s takes no argument", spec, k.Name)
	case k.Arg != "":
		if err := k.parse(&p, rest); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Options are what a procedure run is told.
type Options struct {
	// Broken is true when the staged new build cannot start (a procedure
	// is run the same either way; debian-package needs to know that no .deb
	// of that build exists, and the manual steps expect USR2 to fail).
	Broken bool
	// Timeout bounds the procedure (default DefaultTimeout).
	Timeout time.Duration
	// Audit is the manual procedure's audit window between WINCH and QUIT
	// (default 2 s).
	Audit time.Duration
	// OnStep receives each verified step of the manual procedure as it ends.
	OnStep func(nginx.StepResult)
	// Run is the run's index under compare --repeat (1…N; 0: not
	// repeated), told to a user's script or command.
	Run int
}

// Result is what a procedure did, as far as its runner can tell; its effect
// on nginx is for the caller to read from the node.
type Result struct {
	Argv     []string           // what ran in the container (after the timeout(1) prefix), for the report
	Exit     int                // its exit status; manual: 0 when every step verified, 1 otherwise
	TimedOut bool               // killed at the timeout
	Started  time.Time          // when it started (after preparation)
	Ended    time.Time          // when it ended
	Stdout   string             // its standard output (manual: the steps, one a line)
	Stderr   string             // its standard error
	Steps    []nginx.StepResult // manual: the driver's steps
	Notes    []string           // what a reader should know (policy-rc.d, a repackaged .deb, leftovers killed…)
	Err      error              // it could not be run at all
	Duration time.Duration      // Ended - Started
}

// Prepared is a procedure made ready in a node: scripts copied in, a
// repackaged .deb built. Run it once.
type Prepared struct {
	p     Procedure
	k     Kind
	n     *nginx.Node
	o     Options
	argv  []string
	env   []string
	notes []string
}

// Prepare makes the procedure ready in the node without touching nginx:
// it checks that what the procedure needs is in the image, copies a user's
// script in, and for debian-package builds a .deb of the new build when
// the image holds none. Its error means the procedure cannot be run.
func (p Procedure) Prepare(ctx context.Context, n *nginx.Node, o Options) (*Prepared, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Audit <= 0 {
		o.Audit = 2 * time.Second
	}
	k, ok := kindOf(p.Kind)
	if !ok {
		return nil, fmt.Errorf("unknown procedure kind %q", p.Kind)
	}
	pr := &Prepared{p: p, k: k, n: n, o: o}
	if k.prepare != nil {
		if err := k.prepare(ctx, pr); err != nil {
			return nil, err
		}
	}
	return pr, nil
}

// Notes are what preparation found worth telling.
func (pr *Prepared) Notes() []string { return append([]string(nil), pr.notes...) }

// userEnv is what a user's script or command is told: where nginx's pid
// file and binaries are, and, under compare --repeat, which run this is.
func userEnv(n *nginx.Node, o Options) []string {
	env := []string{
		"NGINX_PID_FILE=" + n.PidFile(),
		"NGINX_BINARY=" + n.Binary(),
		"NGINX_NEW_BINARY=" + harness.NewBinaryStage,
		"NGINX_OLD_BINARY=" + harness.OldBinaryStage,
	}
	if o.Run > 0 {
		env = append(env, "NGINX_UPGRADE_RUN="+strconv.Itoa(o.Run))
	}
	return env
}

// Run runs the prepared procedure under its timeout.
func (pr *Prepared) Run(ctx context.Context) (res Result) {
	res.Notes = append([]string(nil), pr.notes...)
	res.Started = time.Now()
	defer func() {
		if res.Ended.IsZero() {
			res.Ended = time.Now()
		}
		res.Duration = res.Ended.Sub(res.Started)
	}()
	if pr.k.run != nil {
		pr.k.run(ctx, pr, &res)
		return res
	}
	if pr.k.before != nil {
		if err := pr.k.before(ctx, pr); err != nil {
			res.Err = err
			return res
		}
	}
	pr.runExternal(ctx, &res)
	return res
}

// runExternal runs argv under timeout(1), which TERMs its process group
// at the timeout and KILLs it killAfter later; whatever of the group is
// still alive after it returns is killed and reported.
func (pr *Prepared) runExternal(ctx context.Context, res *Result) {
	secs := strconv.FormatFloat(pr.o.Timeout.Seconds(), 'f', -1, 64)
	// The wrapper is a constant: it records the group's id for the
	// leftover check, then execs the procedure's argv unchanged.
	argv := append([]string{"timeout", "--kill-after=" + strconv.Itoa(int(killAfter.Seconds())), secs,
		"sh", "-c", groupWrapper, "sh", groupFile}, pr.argv...)
	res.Argv = append([]string(nil), pr.argv...)
	ectx, cancel := context.WithTimeout(ctx, pr.o.Timeout+killAfter+execSlack)
	defer cancel()
	r, err := pr.n.ExecEnv(ectx, pr.env, nil, argv...)
	res.Ended = time.Now() // the leftover check below is the harness's time, not the procedure's
	res.Stdout, res.Stderr = r.Stdout, r.Stderr
	if err != nil {
		res.Err = fmt.Errorf("run %s: %w", strings.Join(pr.argv, " "), err)
	} else {
		res.Exit = r.Exit
		// 124: timeout(1) sent TERM; 137: it had to KILL.
		if r.Exit == 124 || r.Exit == 137 {
			res.TimedOut = true
		}
		if r.Exit == 126 || r.Exit == 127 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s could not be executed (exit %d): %s", pr.argv[0], r.Exit, harness.LastLine(r.Stderr)))
		}
	}
	// However it ended, nothing of the procedure may live on.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer ccancel()
	if note := killGroup(cctx, pr.n); note != "" {
		res.Notes = append(res.Notes, note)
	}
}

const groupFile = procedureDir + ".pgid"

// groupWrapper writes the process group id of the procedure to $1 and
// execs the rest of its arguments (never interpreted by the shell).
const groupWrapper = `f="$1"; shift
mkdir -p "${f%/*}"
read -r _ _ _ _ pgid _ < /proc/$$/stat && echo "$pgid" > "$f"
exec "$@"`

// killGroupScript lists the live processes of process group $1 and KILLs
// them; it prints what it found.
const killGroupScript = `g="$1"; found=""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  st=$(cat "$d/stat" 2>/dev/null) || continue
  rest=${st##*) }
  set -- $rest
  [ "$1" = Z ] && continue
  [ "$3" = "$g" ] || continue
  found="$found $p($(tr '\0' ' ' < "$d/cmdline" | cut -c1-60))"
done
if [ -n "$found" ]; then kill -s KILL -- "-$g" 2>/dev/null; echo "$found"; fi`

// killGroup kills what is left of the procedure's process group.
func killGroup(ctx context.Context, n *nginx.Node) string {
	b, err := n.ReadFile(ctx, groupFile)
	if err != nil {
		return ""
	}
	n.Exec(ctx, "rm", "-f", groupFile)
	pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pgid <= 1 {
		return ""
	}
	r, err := n.Exec(ctx, "sh", "-c", killGroupScript, "sh", strconv.Itoa(pgid))
	if err != nil {
		return fmt.Sprintf("could not check the procedure's process group %d for leftovers: %v", pgid, err)
	}
	if s := strings.TrimSpace(r.Stdout); s != "" {
		return fmt.Sprintf("processes of the procedure still alive after it ended, killed: %s", s)
	}
	return ""
}

func exists(ctx context.Context, n *nginx.Node, p string) bool {
	r, err := n.Exec(ctx, "test", "-e", p)
	return err == nil && r.Exit == 0
}

func run(ctx context.Context, n *nginx.Node, argv ...string) error {
	r, err := n.Exec(ctx, argv...)
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("%s: exit %d: %s", strings.Join(argv, " "), r.Exit, harness.LastLine(r.Stderr+r.Stdout))
	}
	return nil
}

// SplitWords splits a command line into argv the way a shell splits words
// (single quotes, double quotes, backslash escapes), and nothing more: no
// expansion, no redirection, no pipes — the words are never given to a shell.
func SplitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("command line ends with a backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// Systemd tells whether the procedure runs under systemd as PID 1.
func (p Procedure) Systemd() bool {
	k, ok := kindOf(p.Kind)
	return p.UnderSystemd || ok && k.Systemd
}

// External tells whether the procedure runs a program of its own (its
// steps are its business), rather than the harness's verified steps.
func (p Procedure) External() bool {
	k, ok := kindOf(p.Kind)
	return !ok || k.run == nil
}
