package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Procedure kinds: the ways to go from the old build to the new one in a node.
const (
	ProcManual        = "manual"         // the verified signal steps of procedure.md
	ProcDebianInitd   = "debian-initd"   // atomic rename, then Debian's `/etc/init.d/nginx upgrade`
	ProcDebianPackage = "debian-package" // `dpkg -i` of the new .debs: the maintainer scripts decide
	// ProcDebianPackageHost is debian-package with invoke-rc.d allowed to act,
	// as on a host with an init system: it installs a policy-rc.d that
	// allows every action (and says so), since in a container without
	// /sbin/init invoke-rc.d blocks every action when there is none.
	ProcDebianPackageHost = "debian-package-host"
	ProcScript            = "script" // a user's script, copied in and run by path
	ProcCommand           = "cmd"    // a user's command line, split into argv, run without a shell
)

// DefaultProcedures are what `compare` runs when none is named.
var DefaultProcedures = []string{ProcManual, ProcDebianInitd, ProcDebianPackage}

// DefaultProcedureTimeout bounds one procedure; one that hangs is killed.
const DefaultProcedureTimeout = 120 * time.Second

// Paths the procedures use inside the container.
const (
	InitScript     = "/etc/init.d/nginx"
	PolicyRCD      = "/usr/sbin/policy-rc.d"
	OldDebsDir     = StageDir + "/old/debs"
	NewDebsDir     = StageDir + "/new/debs"
	procedureDir   = StageDir + "/procedure"
	repackDir      = "/tmp/nginx-upgrade-harness-repack"
	killAfter      = 5 * time.Second // timeout(1)'s --kill-after: TERM first, then KILL
	execSlack      = 15 * time.Second
	repackedSuffix = "+nuh.repack1"
)

// Procedure is one way to upgrade, parsed from a spec: manual,
// debian-initd, debian-package, script:PATH or cmd:"COMMAND LINE".
type Procedure struct {
	Spec   string   // as given
	Kind   string   // ProcManual, …
	Script string   // ProcScript: the script on the host (absolute)
	Argv   []string // ProcCommand: the command line, split
}

// Name is a short name for reports and directory names.
func (p Procedure) Name() string {
	switch p.Kind {
	case ProcScript:
		return "script-" + filepath.Base(p.Script)
	case ProcCommand:
		return "cmd-" + path.Base(p.Argv[0])
	}
	return p.Kind
}

// ParseProcedure parses a procedure spec; a script file must exist.
func ParseProcedure(spec string) (Procedure, error) {
	p := Procedure{Spec: spec}
	kind, rest, hasArg := strings.Cut(spec, ":")
	switch kind {
	case ProcManual, ProcDebianInitd, ProcDebianPackage, ProcDebianPackageHost:
		if hasArg {
			return p, fmt.Errorf("procedure %q: %s takes no argument", spec, kind)
		}
		p.Kind = kind
	case ProcScript:
		if rest == "" {
			return p, fmt.Errorf("procedure %q: want script:PATH", spec)
		}
		abs, err := localFile(spec, rest)
		if err != nil {
			return p, fmt.Errorf("procedure %w", err)
		}
		p.Kind, p.Script = kind, abs
	case ProcCommand:
		argv, err := SplitWords(rest)
		if err != nil {
			return p, fmt.Errorf("procedure %q: %v", spec, err)
		}
		if len(argv) == 0 {
			return p, fmt.Errorf("procedure %q: empty command line", spec)
		}
		p.Kind, p.Argv = kind, argv
	default:
		return p, fmt.Errorf("unknown procedure %q (want %s, %s, %s, %s, script:PATH or cmd:\"COMMAND LINE\")",
			spec, ProcManual, ProcDebianInitd, ProcDebianPackage, ProcDebianPackageHost)
	}
	return p, nil
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

// ProcedureOptions are what a procedure run is told.
type ProcedureOptions struct {
	// Broken is true when the staged new build cannot start (a procedure
	// is run the same either way; debian-package needs to know that no .deb
	// of that build exists, and the manual steps expect USR2 to fail).
	Broken bool
	// Timeout bounds the procedure (default DefaultProcedureTimeout).
	Timeout time.Duration
	// Audit is the manual procedure's audit window between WINCH and QUIT
	// (default 2 s).
	Audit time.Duration
	// OnStep receives each verified step of the manual procedure as it ends.
	OnStep func(StepResult)
}

// ProcedureResult is what a procedure did, as far as its runner can tell;
// its effect on nginx is for the caller to read from the node.
type ProcedureResult struct {
	Argv     []string      // what ran in the container (after the timeout(1) prefix), for the report
	Exit     int           // its exit status; manual: 0 when every step verified, 1 otherwise
	TimedOut bool          // killed at the timeout
	Started  time.Time     // when it started (after preparation)
	Ended    time.Time     // when it ended
	Stdout   string        // its standard output (manual: the steps, one a line)
	Stderr   string        // its standard error
	Steps    []StepResult  // manual: the driver's steps
	Notes    []string      // what a reader should know (policy-rc.d, a repackaged .deb, leftovers killed…)
	Err      error         // it could not be run at all
	Duration time.Duration // Ended - Started
}

// Prepared is a procedure made ready in a node: scripts copied in, a
// repackaged .deb built. Run it once.
type Prepared struct {
	p     Procedure
	n     *Node
	o     ProcedureOptions
	argv  []string
	env   []string
	notes []string
}

// Prepare makes the procedure ready in the node without touching nginx:
// it checks that what the procedure needs is in the image, copies a user's
// script in, and for debian-package builds a .deb of the new build when
// the image holds none. Its error means the procedure cannot be run.
func (p Procedure) Prepare(ctx context.Context, n *Node, o ProcedureOptions) (*Prepared, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultProcedureTimeout
	}
	if o.Audit <= 0 {
		o.Audit = 2 * time.Second
	}
	pr := &Prepared{p: p, n: n, o: o}
	switch p.Kind {
	case ProcManual:
		return pr, nil
	case ProcDebianInitd:
		for _, f := range []string{InitScript, "/sbin/start-stop-daemon", "/lib/lsb/init-functions", "/lib/init/vars.sh"} {
			if !n.exists(ctx, f) {
				return nil, fmt.Errorf("%s: %s is not in the image (it ships with Debian's nginx and its base system)", p.Kind, f)
			}
		}
		if n.Binary() != DefaultBinary {
			pr.notes = append(pr.notes, fmt.Sprintf("nginx runs from %s, but %s upgrades %s (its DAEMON)", n.Binary(), InitScript, DefaultBinary))
		}
		pr.argv = []string{InitScript, "upgrade"}
	case ProcDebianPackage, ProcDebianPackageHost:
		pr.notes = append(pr.notes, n.policyNote(ctx))
		if !n.exists(ctx, "/sbin/init") {
			pr.notes = append(pr.notes, "no /sbin/init in the container: without a policy-rc.d, invoke-rc.d blocks every action (\"No init system and policy-rc.d missing! Defaulting to block.\")")
		}
		if p.Kind == ProcDebianPackageHost {
			if err := n.WriteFile(ctx, PolicyRCD, []byte(allowPolicy), 0o755); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Kind, err)
			}
			pr.notes = append(pr.notes, "debian-package-host: "+PolicyRCD+" replaced by one that allows every action (exit 0), so that invoke-rc.d acts as on a host with an init system")
		}
		debs, err := n.debsIn(ctx, NewDebsDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Kind, err)
		}
		if len(debs) == 0 || o.Broken {
			deb, note, err := n.repackage(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: no .deb of the new build, and repackaging failed: %w", p.Kind, err)
			}
			debs = []string{deb}
			pr.notes = append(pr.notes, note)
		}
		pr.argv = append([]string{"dpkg", "--force-confdef", "--force-confold", "-i"}, debs...)
		pr.env = []string{"DEBIAN_FRONTEND=noninteractive"}
	case ProcScript:
		data, err := os.ReadFile(p.Script)
		if err != nil {
			return nil, fmt.Errorf("procedure %s: %w", p.Spec, err)
		}
		dst := procedureDir + "/" + filepath.Base(p.Script)
		if err := n.run(ctx, "mkdir", "-p", procedureDir); err != nil {
			return nil, err
		}
		if err := n.WriteFile(ctx, dst, data, 0o755); err != nil {
			return nil, fmt.Errorf("copy %s into the container: %w", p.Script, err)
		}
		pr.argv = []string{dst}
		pr.env = n.procedureEnv()
	case ProcCommand:
		pr.argv = append([]string(nil), p.Argv...)
		pr.env = n.procedureEnv()
	default:
		return nil, fmt.Errorf("unknown procedure kind %q", p.Kind)
	}
	return pr, nil
}

// Notes are what preparation found worth telling.
func (pr *Prepared) Notes() []string { return append([]string(nil), pr.notes...) }

// procedureEnv is what a user's script or command is told.
func (n *Node) procedureEnv() []string {
	return []string{
		"NGINX_PID_FILE=" + n.PidFile(),
		"NGINX_BINARY=" + n.Binary(),
		"NGINX_NEW_BINARY=" + NewBinaryStage,
		"NGINX_OLD_BINARY=" + OldBinaryStage,
	}
}

// Run runs the prepared procedure under its timeout.
func (pr *Prepared) Run(ctx context.Context) (res ProcedureResult) {
	res.Notes = append([]string(nil), pr.notes...)
	res.Started = time.Now()
	defer func() {
		if res.Ended.IsZero() {
			res.Ended = time.Now()
		}
		res.Duration = res.Ended.Sub(res.Started)
	}()
	switch pr.p.Kind {
	case ProcManual:
		pr.runManual(ctx, &res)
		return res
	case ProcDebianInitd:
		// The init script's upgrade only signals: the binary is put in
		// place first, as a package would (atomic rename).
		if err := pr.n.InstallBinary(ctx, NewBinaryStage); err != nil {
			res.Err = fmt.Errorf("install the new binary before %s upgrade: %w", InitScript, err)
			return res
		}
	}
	pr.runExternal(ctx, &res)
	return res
}

// runManual runs the verified steps; on a failed USR2 it puts the old
// binary back and stops, as an operator would.
func (pr *Prepared) runManual(ctx context.Context, res *ProcedureResult) {
	ctx, cancel := context.WithTimeout(ctx, pr.o.Timeout)
	defer cancel()
	d := NewDriver(pr.n)
	var out strings.Builder
	step := func(s Step) bool {
		r := d.Run(ctx, s)
		res.Steps = append(res.Steps, r)
		if pr.o.OnStep != nil {
			pr.o.OnStep(r)
		}
		if r.OK {
			fmt.Fprintf(&out, "%s: verified in %s\n", r.Name, r.Verified.Sub(r.Sent).Round(time.Millisecond))
		} else {
			fmt.Fprintf(&out, "%s: FAILED: %s\n", r.Name, r.Err)
		}
		return r.OK
	}
	res.Exit = 1
	defer func() {
		res.Stdout = out.String()
		if ctx.Err() == context.DeadlineExceeded {
			res.TimedOut = true
			res.Exit = 124
		}
	}()
	if !step(InstallBinary("install-new-binary", NewBinaryStage)) {
		return
	}
	if !step(SpawnNewMaster()) {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer rcancel()
		r := d.Run(rctx, InstallBinary("restore-old-binary", OldBinaryStage))
		res.Steps = append(res.Steps, r)
		if pr.o.OnStep != nil {
			pr.o.OnStep(r)
		}
		fmt.Fprintf(&out, "restore-old-binary: verified=%t %s\n", r.OK, r.Err)
		return
	}
	if !step(StopOldWorkers()) {
		return
	}
	fmt.Fprintf(&out, "audit: %s\n", pr.o.Audit)
	select {
	case <-ctx.Done():
		return
	case <-time.After(pr.o.Audit):
	}
	if !step(QuitOldMaster(pr.o.Timeout)) {
		return
	}
	res.Exit = 0
}

// runExternal runs argv under timeout(1), which TERMs its process group
// at the timeout and KILLs it killAfter later; whatever of the group is
// still alive after it returns is killed and reported.
func (pr *Prepared) runExternal(ctx context.Context, res *ProcedureResult) {
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
			res.Notes = append(res.Notes, fmt.Sprintf("%s could not be executed (exit %d): %s", pr.argv[0], r.Exit, LastLine(r.Stderr)))
		}
	}
	// However it ended, nothing of the procedure may live on.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer ccancel()
	if note := pr.n.killGroup(cctx); note != "" {
		res.Notes = append(res.Notes, note)
	}
}

// allowPolicy is the policy-rc.d of debian-package-host.
const allowPolicy = "#!/bin/sh\n# nginx-upgrade-harness (debian-package-host): allow every action, as on a host with an init system\nexit 0\n"

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
func (n *Node) killGroup(ctx context.Context) string {
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

func (n *Node) exists(ctx context.Context, p string) bool {
	r, err := n.Exec(ctx, "test", "-e", p)
	return err == nil && r.Exit == 0
}

func (n *Node) run(ctx context.Context, argv ...string) error {
	r, err := n.Exec(ctx, argv...)
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("%s: exit %d: %s", strings.Join(argv, " "), r.Exit, LastLine(r.Stderr+r.Stdout))
	}
	return nil
}

// policyNote says whether the image has a policy-rc.d, which decides what
// invoke-rc.d (and so a package's maintainer scripts) may do to nginx.
func (n *Node) policyNote(ctx context.Context) string {
	b, err := n.ReadFile(ctx, PolicyRCD)
	if err != nil {
		return "no " + PolicyRCD + " in the container (none was added)"
	}
	lines := []string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#!") {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("%s present in the container (left as found): %q — invoke-rc.d asks it before acting on nginx (exit 101 forbids)", PolicyRCD, strings.Join(lines, "; "))
}

// debsIn lists the .deb files in dir (sorted, so nginx-common comes before nginx).
func (n *Node) debsIn(ctx context.Context, dir string) ([]string, error) {
	r, err := n.Exec(ctx, "find", dir, "-maxdepth", "1", "-name", "*.deb", "-type", "f")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, nil
}

// repackage builds a .deb of the staged new binary from the old build's
// nginx .deb: the same package with the new binary at usr/sbin/nginx, its
// md5sums entry updated and its version raised, so that dpkg -i is an
// upgrade and the maintainer scripts run as for one.
func (n *Node) repackage(ctx context.Context) (string, string, error) {
	old, err := n.debsIn(ctx, OldDebsDir)
	if err != nil {
		return "", "", err
	}
	var src string
	for _, d := range old {
		if strings.HasPrefix(path.Base(d), "nginx_") {
			src = d
		}
	}
	if src == "" {
		return "", "", fmt.Errorf("no nginx_*.deb of the old build in %s (the old build is not a Debian package)", OldDebsDir)
	}
	root := repackDir + "/root"
	for _, argv := range [][]string{
		{"rm", "-rf", repackDir},
		{"mkdir", "-p", repackDir},
		{"dpkg-deb", "-R", src, root},
		{"test", "-f", root + "/usr/sbin/nginx"},
		{"cp", NewBinaryStage, root + "/usr/sbin/nginx"},
	} {
		if err := n.run(ctx, argv...); err != nil {
			return "", "", err
		}
	}
	ctl, err := n.ReadFile(ctx, root+"/DEBIAN/control")
	if err != nil {
		return "", "", err
	}
	var version string
	lines := strings.Split(string(ctl), "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			version = strings.TrimSpace(v)
			lines[i] = "Version: " + version + repackedSuffix
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("%s: no Version in DEBIAN/control", src)
	}
	if err := n.WriteFile(ctx, root+"/DEBIAN/control", []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", "", err
	}
	if sums, err := n.ReadFile(ctx, root+"/DEBIAN/md5sums"); err == nil {
		r, err := n.Exec(ctx, "md5sum", root+"/usr/sbin/nginx")
		if err != nil || r.Exit != 0 {
			return "", "", fmt.Errorf("md5sum of the new binary: %v %s", err, r.Stderr)
		}
		sum := strings.Fields(r.Stdout)[0]
		sl := strings.Split(string(sums), "\n")
		for i, l := range sl {
			if strings.HasSuffix(l, "  usr/sbin/nginx") {
				sl[i] = sum + "  usr/sbin/nginx"
			}
		}
		if err := n.WriteFile(ctx, root+"/DEBIAN/md5sums", []byte(strings.Join(sl, "\n")), 0o644); err != nil {
			return "", "", err
		}
	}
	deb := repackDir + "/" + strings.TrimSuffix(path.Base(src), ".deb") + "-repacked.deb"
	if err := n.run(ctx, "dpkg-deb", "--root-owner-group", "-Zgzip", "-b", root, deb); err != nil {
		return "", "", err
	}
	note := fmt.Sprintf("no Debian package of the new build exists: %s was repackaged inside the container (dpkg-deb -R, then -b) "+
		"with the staged new binary %s in place of usr/sbin/nginx, as version %s%s, and installed with dpkg -i",
		path.Base(src), NewBinaryStage, version, repackedSuffix)
	return deb, note, nil
}

// ProcedureHelp is a line per procedure, for `run --list` and `compare --help`.
func ProcedureHelp() []string {
	return []string{
		fmt.Sprintf("%-20s the verified signal steps: install by rename, USR2, WINCH, audit, QUIT", ProcManual),
		fmt.Sprintf("%-20s install by rename, then Debian's %s upgrade", ProcDebianInitd, InitScript),
		fmt.Sprintf("%-20s dpkg -i the new .debs: the maintainer scripts do what they do", ProcDebianPackage),
		fmt.Sprintf("%-20s the same, with a policy-rc.d that allows every action, as on a host", ProcDebianPackageHost),
		fmt.Sprintf("%-20s your script, copied in and run with NGINX_* in its environment", ProcScript+":PATH"),
		fmt.Sprintf("%-20s a command line, split like a shell would, run without one", ProcCommand+`:"COMMAND"`),
	}
}
