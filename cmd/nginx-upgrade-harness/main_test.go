package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := realMain(args, io.Discard, &stderr)
	return code, stderr.String()
}

// Bad input exits 2 with one line naming the cause, before anything starts.
func TestBadInputExitsTwoWithOneLine(t *testing.T) {
	unreadable := filepath.Join(t.TempDir(), "missing.conf")
	noHTTP := t.TempDir()
	os.WriteFile(filepath.Join(noHTTP, "nginx.conf"), []byte("events {}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown scenario", []string{"run", "--scenario", "nope"}, `unknown scenario "nope"`},
		{"rate 0", []string{"run", "--rate", "0"}, "--rate: got 0"},
		{"rate not a number", []string{"run", "--rate", "fast"}, `--rate: got "fast", want a whole number`},
		{"unknown flag", []string{"run", "--frobnicate"}, "unknown flag --frobnicate (see run --help)"},
		{"repeat 0", []string{"run", "--repeat", "0"}, "--repeat: got 0"},
		{"bad method", []string{"run", "--method", "PUT"}, `--method: got "PUT"`},
		{"unreadable config", []string{"run", "--config", unreadable}, "--config: open " + unreadable},
		{"unknown build", []string{"run", "--to", "rpm:1.2"}, `unknown build "rpm:1.2"`},
		{"missing binary", []string{"run", "--to", "binary:/nonexistent/nginx"}, "binary:/nonexistent/nginx"},
		{"unbalanced quote in nginx-cmd", []string{"run", "--nginx-cmd", "nginx -g 'daemon off;"}, "--nginx-cmd"},
		{"empty nginx-cmd", []string{"run", "--nginx-cmd", " "}, "--nginx-cmd"},
		{"negative max-stall", []string{"run", "--max-stall", "-1s"}, "--max-stall: got -1s"},
		{"report of nothing", []string{"report", "/nonexistent-run-dir"}, "not a directory"},
		{"stray argument", []string{"run", "upgrade"}, `unexpected argument "upgrade"`},
		{"bad load path", []string{"run", "--load-path", "wifi"}, `--load-path: got "wifi"`},
		{"server log without a tree", []string{"run", "--server-log"}, "--server-log go with --config-dir DIR"},
		{"server log on a tree with no http block", []string{"run", "--server-log", "--config-dir", noHTTP}, "has no `http {` block"},
	} {
		t.Run(tc.name, func(t *testing.T) { expectBadInput(t, tc.args, tc.want) })
	}
}

// --help prints the usage once, on stdout, with every flag as it is typed
// and its default; nothing on stderr.
func TestHelpOnStdoutOnce(t *testing.T) {
	for _, c := range []string{"run", "report", "prune", "compare", "version"} {
		var stdout, stderr bytes.Buffer
		code := realMain([]string{c, "--help"}, &stdout, &stderr)
		out := stdout.String()
		if code != exitPass || stderr.Len() != 0 {
			t.Fatalf("%s --help: exit %d, stderr %q", c, code, stderr.String())
		}
		if n := strings.Count(out, "Usage: nginx-upgrade-harness "+c); n != 1 {
			t.Fatalf("%s --help: usage printed %d times:\n%s", c, n, out)
		}
		if !strings.Contains(out, "Exit codes") {
			t.Errorf("%s --help does not state the exit codes", c)
		}
		if regexp.MustCompile(`(?m)^  -[a-z]`).MatchString(out) {
			t.Errorf("%s --help shows a flag with one dash:\n%s", c, out)
		}
	}
	var stdout bytes.Buffer
	realMain([]string{"run", "--help"}, &stdout, io.Discard)
	for _, want := range []string{"--keepalive=true|false", "(default false)", "--rate N", "(default 500)", "--repeat", "--baseline", "--junit"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}

// A Debian version no archive serves is refused in seconds, by reading the
// archive's index, not after minutes of building the base image.
func TestUnknownDebianVersionRefusedBeforeBuilding(t *testing.T) {
	start := time.Now()
	code, stderr := run(t, "run", "--scenario", "upgrade", "--to", "debian:0.0.1-1", "--out", t.TempDir())
	if code != exitBadInput || !strings.Contains(stderr, "debian:0.0.1-1: version 0.0.1-1 is neither served (served: bookworm: ") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("refused after %s: the check must come before any build", d)
	}
}

// With the archive out of reach after a first run, the same pair runs
// again: the lock names the exact builds, the cache holds their files, and
// the suite specs fall back on their last resolution. The archive is cut
// by pointing the harness's HTTP client at a proxy that refuses (a closed
// port on 127.0.0.1).
func TestArchiveCutRunsFromCacheAndLock(t *testing.T) {
	requireDocker(t)
	t.Parallel() // see TestRepeatAgainstBaseline
	bin := filepath.Join(t.TempDir(), "nginx-upgrade-harness")
	if out, err := staticBuild(bin).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	lock := filepath.Join(t.TempDir(), "nuh.lock")
	runOnce := func(env []string, args ...string) (*record.Report, string) {
		t.Helper()
		var out string
		var stderr bytes.Buffer
		var err error
		judged(t, func(int) int {
			out = t.TempDir()
			cmd := exec.Command(bin, append([]string{"run", "--scenario", "upgrade", "--rate", "200", "--out", out}, args...)...)
			cmd.Env = append(os.Environ(), env...)
			stderr.Reset()
			cmd.Stderr = &stderr
			err = cmd.Run()
			return cmd.ProcessState.ExitCode()
		})
		if err != nil {
			t.Fatalf("run %v (%v): %v\n%s", args, env, err, stderr.String())
		}
		r, err := record.ReadReport(filepath.Join(out, record.ReportJSON))
		if err != nil {
			t.Fatal(err)
		}
		return r, stderr.String()
	}
	first, _ := runOnce(nil, "--lock", lock)
	if first.ToBuild == nil || first.ToBuild.Origin != image.OriginArchive || len(first.ToBuild.SHA256) != 64 {
		t.Fatalf("first run's to_build: %+v", first.ToBuild)
	}
	cut := []string{"HTTP_PROXY=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9", "NO_PROXY=", "no_proxy="}
	locked, stderr := runOnce(cut, "--lock", lock)
	for _, side := range [][2]*record.BuildRef{{first.FromBuild, locked.FromBuild}, {first.ToBuild, locked.ToBuild}} {
		if side[1] == nil || side[1].Exact != side[0].Exact || side[1].SHA256 != side[0].SHA256 || side[1].Origin != image.OriginCache {
			t.Errorf("locked run without the archive: %+v, first run %+v", side[1], side[0])
		}
	}
	if !strings.Contains(stderr, "warning: suite bookworm cannot be read") || locked.Verdict != record.VerdictPass {
		t.Errorf("verdict %s; stderr:\n%s", locked.Verdict, stderr)
	}
	unlocked, stderr := runOnce(cut)
	if unlocked.ToBuild == nil || unlocked.ToBuild.Exact != first.ToBuild.Exact ||
		!strings.Contains(unlocked.ToBuild.Note, "the last resolution") {
		t.Errorf("unlocked run without the archive: %+v\n%s", unlocked.ToBuild, stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != exitPass {
			t.Fatalf("%v: exit %d, %s", args, code, stderr.String())
		}
		if !regexp.MustCompile(`^nginx-upgrade-harness \S+ \(commit \S+\)\n$`).MatchString(stdout.String()) {
			t.Fatalf("%v: %q", args, stdout.String())
		}
	}
}

func TestDockerUnreachableExitsTwo(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	code, stderr := run(t, "run", "--scenario", "upgrade", "--out", t.TempDir())
	if code != exitBadInput || !strings.Contains(stderr, "docker unreachable at tcp://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// The tests below run nginx in containers.

// maxAttempts is how many times a live test runs a scenario whose
// measurement comes back invalid: the policy README gives CI.
const maxAttempts = 3

// judged runs attempt (a CLI run as a user runs it, returning its exit
// code) and follows that policy: an invalid measurement (exit 3, an error
// verdict: the machine, not nginx) is run again, at most twice; any other
// exit, a fail above all, is returned at once.
func judged(t *testing.T, attempt func(i int) int) int {
	t.Helper()
	for i := 1; ; i++ {
		code := attempt(i)
		if code != exitInvalid || i == maxAttempts {
			return code
		}
		t.Logf("attempt %d of %d: exit %d, the measurement was invalid: run again", i, maxAttempts, code)
	}
}

func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := harness.Connect(); err != nil {
		t.Fatalf("this test runs nginx in containers: %v", err)
	}
}

func TestConfigRejectedByNginxExitsTwo(t *testing.T) {
	requireDocker(t)
	conf := filepath.Join(t.TempDir(), "broken.conf")
	os.WriteFile(conf, []byte("events {}\nhttp { server { listen 8080; no_such_directive on; } }\n"), 0o644)
	code, stderr := run(t, "run", "--scenario", "upgrade", "--config", conf, "--out", t.TempDir())
	if code != exitBadInput || !strings.Contains(stderr, `unknown directive "no_such_directive"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	assertNoLeftovers(t)
}

// A start command that cannot start nginx at all is bad input, named in one
// line before any scenario starts.
func TestNginxCmdThatCannotStartExitsTwo(t *testing.T) {
	requireDocker(t)
	for _, tc := range []struct{ name, cmd, want string }{
		{"not in PATH", "no-such-nginx -g 'daemon off;'", `"no-such-nginx" is not found in the container's PATH`},
		{"exits at once", "/usr/sbin/nginx -c /nonexistent.conf", "/nonexistent.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(t, "run", "--scenario", "upgrade", "--nginx-cmd", tc.cmd, "--out", t.TempDir())
			if code != exitBadInput || !strings.Contains(stderr, tc.want) || strings.Count(errorText(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q, want one line with %q", code, stderr, tc.want)
			}
		})
	}
	assertNoLeftovers(t)
}

// A configuration that passes `nginx -t` but cannot serve the load is bad
// input too, named before any scenario starts.
func TestConfigThatCannotServeTheLoadExitsTwo(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	for _, tc := range []struct{ name, conf, want string }{
		{"other port", strings.Replace(nginx.DefaultConfig, "listen 8080", "listen 9090", 1), "does it listen on port 8080?"},
		{"no page", strings.Replace(nginx.DefaultConfig, "index index.html;", "return 404;", 1), "GET / answered 404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".conf")
			os.WriteFile(conf, []byte(tc.conf), 0o644)
			code, stderr := run(t, "run", "--scenario", "upgrade", "--config", conf, "--out", t.TempDir())
			if code != exitBadInput || !strings.Contains(stderr, tc.want) || strings.Count(errorText(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q, want one line with %q", code, stderr, tc.want)
			}
		})
	}
	assertNoLeftovers(t)
}

// A user's own configuration, POST, a new connection per request: the run
// works end to end and its report says so.
func TestRunUpgradeWithUserConfigAndPOST(t *testing.T) {
	requireDocker(t)
	conf := filepath.Join(t.TempDir(), "my.conf")
	os.WriteFile(conf, []byte(nginx.DefaultConfig), 0o644)
	var out, stderr string
	code := judged(t, func(int) (code int) {
		out = t.TempDir()
		code, stderr = run(t, "run", "--scenario", "upgrade", "--from", image.DefaultFrom, "--to", image.DefaultTo,
			"--config", conf, "--rate", "300", "--method", "POST", "--keepalive=false", "--slow", "2", "--load-path", "host", "--out", out)
		t.Log(stderr)
		return code
	})
	if code != exitPass {
		t.Fatalf("exit %d", code)
	}
	r, err := record.ReadReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Scenarios[0]
	if s.Name != "upgrade" || s.Verdict != "pass" || r.Load.Method != "POST" || r.Load.KeepAlive || r.Load.Rate != 300 {
		t.Fatalf("report: %+v %+v", r.Load, s)
	}
	if !strings.Contains(s.LoadPath, "port proxy") {
		t.Fatalf("--load-path host: the report says %q", s.LoadPath)
	}
	if s.Requests.Total < 300*5 {
		t.Fatalf("only %d requests", s.Requests.Total)
	}
	for _, f := range []string{"report.md", "report.html", "upgrade/results.gob", "upgrade/connections.jsonl", "upgrade/events.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if !strings.Contains(stderr, "spawn-new-master verified") || !strings.Contains(stderr, "SCENARIO") {
		t.Errorf("no live step lines or summary on stderr")
	}
	assertNoLeftovers(t)
}

// Ctrl-C half-way: the load stops, the container goes, and the report of
// what was measured is still written.
func TestInterruptKeepsWhatWasMeasured(t *testing.T) {
	requireDocker(t)
	t.Parallel() // see TestRepeatAgainstBaseline
	bin := filepath.Join(t.TempDir(), "nginx-upgrade-harness")
	if out, err := staticBuild(bin).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out := t.TempDir()
	cmd := exec.Command(bin, "run", "--scenario", "rollback", "--rate", "200", "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the scenario is under way (its first step was sent).
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(stderr.String(), "spawn-new-master (USR2)") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run never reached USR2: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	t.Log(stderr.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitBadInput {
		t.Fatalf("interrupted run: %v, want exit %d", err, exitBadInput)
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("no report after Ctrl-C: %v", err)
	}
	var r record.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 1 || r.Scenarios[0].Requests.Total == 0 {
		t.Fatalf("the report lost what was measured: %s", b)
	}
	if r.Scenarios[0].Verdict == "pass" {
		t.Fatalf("an interrupted scenario cannot pass: %+v", r.Scenarios[0])
	}
	assertNoLeftovers(t, cmd.Process.Pid)
}

// assertNoLeftovers checks that the process pid (this test binary unless
// given) left no container: others' runs on the same engine are not ours
// to judge.
func assertNoLeftovers(t *testing.T, pid ...int) {
	t.Helper()
	owner := os.Getpid()
	if len(pid) > 0 {
		owner = pid[0]
	}
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+harness.Label+"=1",
		"--filter", "label="+harness.Label+".owner-pid="+strconv.Itoa(owner)).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("containers left behind: %s", s)
	}
}

// A configuration tree that cannot run is named in one line before any
// scenario starts: exit 2 when the old build or the load cannot use it,
// exit 1 when only the new build rejects it (the broken-build finding).
func TestBadConfigTreeExitsBeforeAnyScenario(t *testing.T) {
	requireDocker(t)
	trees := filepath.Join("..", "..", "scenarios", "testdata")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing include", []string{"--config-dir", filepath.Join(trees, "bad-trees", "missing-include")}, exitBadInput,
			`open() "/etc/nginx/snippets/site-defaults.conf" failed (2: No such file or directory) in /etc/nginx/nginx.conf:4`},
		{"unreadable certificate", []string{"--config-dir", filepath.Join(trees, "bad-trees", "unreadable-certificate")}, exitBadInput,
			`cannot load certificate "/etc/nginx/tls/site.crt"`},
		{"unreachable listener", []string{"--config-dir", filepath.Join(trees, "bad-trees", "unreachable-listener")}, exitBadInput,
			"no listener the load can reach: its only listeners are listen unix:/run/nginx-site.sock"},
		{"new build rejects the tree", []string{"--config-dir", filepath.Join(trees, "debian-etc-nginx"), "--to", "source:stable:--without-http_gzip_module"}, exitFail,
			`broken build: the new build rejects the configuration tree the old build serves ([emerg] unknown directive "gzip" in /etc/nginx/nginx.conf:46)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			code, stderr := run(t, append([]string{"run", "--scenario", "upgrade", "--out", out}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(errorText(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q, want exit %d and one line with %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, "upgrade")); err == nil {
				t.Fatal("a scenario started")
			}
		})
	}
	assertNoLeftovers(t)
}

// expectBadInput runs the CLI with args and wants bad input: exit 2 and one
// line on stderr naming the cause want.
func expectBadInput(t *testing.T, args []string, want string) {
	t.Helper()
	code, stderr := run(t, args...)
	if code != exitBadInput {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitBadInput, stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("stderr %q does not name the cause %q", stderr, want)
	}
	if n := strings.Count(errorText(stderr), "\n"); n != 0 {
		t.Fatalf("want one line, got %d: %q", n+1, stderr)
	}
}

// progressLine is a console line ("[   0.1s] debian:bookworm = …"): what
// the run said before it failed, not the error.
var progressLine = regexp.MustCompile(`^\[\s*[0-9.]+s\] `)

// errorText is stderr without the console's progress lines: the error,
// which must be one line.
func errorText(stderr string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !progressLine.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// prune takes one scope: --run ID and --all together are bad input, said
// before Docker is asked anything.
func TestPruneOneScope(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"prune", "--all", "--run", "0123456789abcdef"}, &stdout, &stderr)
	if code != exitBadInput || !strings.Contains(stderr.String(), "--all and --run: choose one") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// The reaper subcommand is hidden (not in the usage) and says in one line
// on stdout what it lacks.
func TestReaperIsHidden(t *testing.T) {
	var stdout, stderr bytes.Buffer
	realMain(nil, &stdout, &stderr)
	if strings.Contains(stderr.String(), harness.ReaperCommand) {
		t.Fatalf("the usage lists the reaper: %s", stderr.String())
	}
	stdout.Reset()
	if code := realMain([]string{harness.ReaperCommand}, &stdout, &stderr); code != exitBadInput || stdout.String() != "error: no --run\n" {
		t.Fatalf("reaper without --run: exit %d, stdout %q", code, stdout.String())
	}
}

// The load agent's subcommand is hidden too, is the one the engine side
// starts (harness.AgentCommand), and its bad arguments are exit 2.
func TestLoadAgentIsHidden(t *testing.T) {
	if harness.AgentCommand != agent.Command {
		t.Fatalf("harness starts %q, the CLI answers %q", harness.AgentCommand, agent.Command)
	}
	var stdout, stderr bytes.Buffer
	realMain(nil, &stdout, &stderr)
	if strings.Contains(stderr.String(), agent.Command) {
		t.Fatalf("the usage lists the load agent: %s", stderr.String())
	}
	stderr.Reset()
	if code := realMain([]string{agent.Command, "--nope"}, &stdout, &stderr); code != exitBadInput || !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("load-agent --nope: exit %d, stderr %q", code, stderr.String())
	}
}

// What a run needs is checked before anything is resolved or built: an
// archive named wrongly is exit 2 in one line, at once.
func TestNeedsCheckedFirst(t *testing.T) {
	requireDocker(t)
	t.Setenv("NUH_ARCHIVE", "mirror.invalid/debian")
	start := time.Now()
	code, stderr := run(t, "run", "--scenario", "upgrade", "--out", t.TempDir())
	if code != exitBadInput || !strings.Contains(stderr, `NUH_ARCHIVE: "mirror.invalid/debian" is not an http(s) URI`) || strings.Count(errorText(stderr), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("refused after %s: the check comes before any resolution", d)
	}
}

// staticBuild is `go build -o bin .` as `make build` does it (static,
// CGO_ENABLED=0): the binary then also runs as its run's reaper and as
// the heartbeat in nginx's container, as a user's does — without them a
// stall on a busy machine is judged on the harness's side alone.
func staticBuild(bin string) *exec.Cmd {
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}
