// Package ci holds the GitHub Actions workflow users copy to gate an nginx
// upgrade (nginx-upgrade.yml) and the retry script it calls (gate.sh); the
// tests lint the one and run the other against a stub CLI.
package ci

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const workflow = "nginx-upgrade.yml"

// actionlint is run from the Go module proxy at a fixed version, outside
// this module's requirements (go run pkg@version): the linter's own
// dependencies stay out of go.mod.
const actionlint = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"

func lint(t *testing.T, file string) (int, string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "run", actionlint, "-no-color", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("go run %s: %v", actionlint, err)
	}
	t.Logf("actionlint %s: exit %d in %s", filepath.Base(file), code, time.Since(start).Round(time.Millisecond))
	return code, out.String()
}

func TestWorkflowPassesActionlint(t *testing.T) {
	if code, out := lint(t, workflow); code != 0 {
		t.Fatalf("actionlint %s: exit %d\n%s", workflow, code, out)
	}
}

// Copies of the workflow each broken in one place: actionlint must refuse
// every one, naming what is wrong (so the test above can fail).
func TestBrokenWorkflowFailsActionlint(t *testing.T) {
	good, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"no trigger", "\non:\n", "\nnot-on:\n", `"on" section is missing`},
		{"unknown permission level", "checks: write", "checks: writ", `"writ"`},
		{"output of a step that does not exist", "steps.gate.outputs.exit", "steps.gat.outputs.exit", `"gat"`},
		{"undefined function in if", "if: always() && hashFiles", "if: alwys() && hashFiles", "alwys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.old) {
				t.Fatalf("%s no longer holds %q: update the mutation", workflow, tc.old)
			}
			broken := filepath.Join(t.TempDir(), workflow)
			os.WriteFile(broken, []byte(strings.Replace(string(good), tc.old, tc.new, 1)), 0o644)
			code, out := lint(t, broken)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("broken copy (%s): actionlint exit %d, want non-zero naming %q:\n%s", tc.name, code, tc.want, out)
			}
		})
	}
}

// What actionlint does not check, and a gate needs: a trigger for pushes,
// pull requests and by hand; the permission the test report needs; the
// gate through gate.sh; the report published whatever the gate said.
func TestWorkflowShape(t *testing.T) {
	raw, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On          map[string]any    `yaml:"on"`
		Permissions map[string]string `yaml:"permissions"`
		Jobs        map[string]struct {
			Steps []struct {
				Name, ID, If, Run, Uses string
				With                    map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"push", "pull_request", "workflow_dispatch"} {
		if _, ok := wf.On[ev]; !ok {
			t.Errorf("no %s trigger", ev)
		}
	}
	if wf.Permissions["checks"] != "write" {
		t.Errorf("permissions: %v, want checks: write for the test report", wf.Permissions)
	}
	job := wf.Jobs["nginx-upgrade"]
	var gate, summary, junit, artifact, restore, save bool
	for _, s := range job.Steps {
		always := strings.HasPrefix(s.If, "always()")
		switch {
		case strings.Contains(s.Run, `sh "$GATE"`):
			gate = s.ID == "gate"
		case strings.Contains(s.Run, "$GITHUB_STEP_SUMMARY"):
			summary = always && strings.Contains(s.Run, `if [ -f "$OUT/report.md" ]`)
		case strings.HasPrefix(s.Uses, "mikepenz/action-junit-report@"):
			junit = always && strings.Contains(s.If, "hashFiles")
		case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
			artifact = always
		case strings.HasPrefix(s.Uses, "actions/cache/restore@"):
			restore = strings.Contains(s.With["path"], ".cache/nginx-upgrade-harness")
		case strings.HasPrefix(s.Uses, "actions/cache/save@"):
			save = always && strings.Contains(s.With["path"], ".cache/nginx-upgrade-harness-images")
		}
	}
	for what, ok := range map[string]bool{"gate.sh step (id gate)": gate, "job summary if: always(), report.md checked": summary,
		"JUnit report if: always() and the file exists": junit, "artifact if: always()": artifact,
		"cache restore of the build cache": restore, "cache save of the images if: always()": save} {
		if !ok {
			t.Errorf("%s: missing or wrong", what)
		}
	}
	if !strings.Contains(string(raw), "docker load -i") || !strings.Contains(string(raw), "docker save -o") {
		t.Error("the images are not carried between runs with docker save/load")
	}
}

// gate.sh against a stub CLI that exits with the codes it is given, one per
// call, and records each call's arguments.
func TestGateRetriesExitThreeOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		codes     []int
		exit      int
		calls     int
		saying    string
		firstKept bool // the first attempt kept as OUT-attempt-1
	}{
		{"3 then 0: passes after exactly one retry", []int{3, 0}, 0, 2, "gate: pass after one retry", true},
		{"3 then 3: fails, never a pass", []int{3, 3}, 3, 2, "measurement invalid twice (exit 3): not a pass", true},
		{"1: fails at once", []int{1}, 1, 1, "not retried", false},
		{"2: bad input, at once", []int{2}, 2, 1, "could not start (exit 2, not retried)", false},
		{"0: passes", []int{0}, 0, 1, "gate: pass", false},
		{"3 then 1: the retry's fail stands", []int{3, 1}, 1, 2, "retry ended with exit 1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			stub := writeStub(t, dir, tc.codes)
			out := filepath.Join(dir, "reports-out", "ci")
			ghOutput := filepath.Join(dir, "github-output")
			cmd := exec.Command("sh", "gate.sh", out, stub, "run", "--to", "debian:bookworm-security")
			cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+ghOutput)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			said := stdout.String() + stderr.String()
			t.Logf("codes %v: exit %d\n%s", tc.codes, code, said)
			if code != tc.exit {
				t.Errorf("gate exit %d, want %d", code, tc.exit)
			}
			calls := readLines(t, filepath.Join(dir, "calls"))
			if len(calls) != tc.calls {
				t.Errorf("the CLI was called %d times, want %d: %q", len(calls), tc.calls, calls)
			}
			for _, c := range calls {
				if want := "run --to debian:bookworm-security --out " + out + " --junit " + out + "/junit.xml"; c != want {
					t.Errorf("call %q, want %q", c, want)
				}
			}
			if !strings.Contains(said, tc.saying) {
				t.Errorf("gate said %q, want it to say %q", said, tc.saying)
			}
			if _, err := os.Stat(filepath.Join(out+"-attempt-1", "attempt")); (err == nil) != tc.firstKept {
				t.Errorf("first attempt kept in %s-attempt-1: %v, want %v", out, err == nil, tc.firstKept)
			}
			if got := strings.Join(readLines(t, ghOutput), " "); got != "exit="+strconv.Itoa(tc.exit)+" attempts="+strconv.Itoa(tc.calls) {
				t.Errorf("$GITHUB_OUTPUT holds %q", got)
			}
		})
	}
}

// writeStub writes a CLI that, on its Nth call, records its arguments,
// writes --out DIR/attempt, and exits with codes[N-1].
func writeStub(t *testing.T, dir string, codes []int) string {
	t.Helper()
	var list []string
	for _, c := range codes {
		list = append(list, strconv.Itoa(c))
	}
	stub := filepath.Join(dir, "nginx-upgrade-harness")
	script := `#!/bin/sh
calls="` + filepath.Join(dir, "calls") + `"
echo "$*" >>"$calls"
n=$(wc -l <"$calls")
while [ "$#" -gt 0 ]; do
	if [ "$1" = --out ]; then mkdir -p "$2" && echo "$n" >"$2/attempt"; fi
	shift
done
set -- ` + strings.Join(list, " ") + `
shift $((n - 1))
exit "$1"
`
	if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return stub
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
