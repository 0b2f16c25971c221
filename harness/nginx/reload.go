package nginx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/proc"
)

// Reloads: HUP to the master with a configuration changed on disk. The
// master re-reads it, starts a new generation of workers that serves it,
// and the old generation drains — or, when the configuration is invalid,
// logs the [emerg] and keeps its workers as they are.

// Configurer is a host whose nginx.conf can be read and replaced.
type Configurer interface {
	// Config is the nginx.conf in use on disk.
	Config() []byte
	// WriteConfig replaces nginx.conf on disk (nginx reads it on HUP and
	// on USR2).
	WriteConfig(ctx context.Context, conf []byte) error
}

// Fetcher is a host that can be asked what nginx serves.
type Fetcher interface {
	// Fetch GETs path from nginx and returns its status and headers.
	Fetch(ctx context.Context, path string) (int, http.Header, error)
}

// GenerationHeader is the response header a reload scenario adds to its
// configuration, so that which generation of workers serves can be read
// from the responses themselves.
const GenerationHeader = "X-Nuh-Generation"

// EditConfig is an action step that rewrites nginx.conf with edit.
func EditConfig(name string, edit func([]byte) ([]byte, error)) Step {
	return Step{Name: name, Target: TargetNone, Timeout: 10 * time.Second,
		Action: func(ctx context.Context, h Host) error {
			c, ok := h.(Configurer)
			if !ok {
				return errors.New("this host cannot rewrite nginx.conf")
			}
			conf, err := edit(c.Config())
			if err != nil {
				return err
			}
			return c.WriteConfig(ctx, conf)
		},
		Expect: func(before, now proc.Snapshot, pids []int) error { return nil }}
}

// SetGeneration adds (or replaces) `add_header X-Nuh-Generation N always;`
// in every server block of conf.
func SetGeneration(conf []byte, n int) ([]byte, error) {
	re := regexp.MustCompile(`(?m)^\s*add_header ` + GenerationHeader + ` .*;\n`)
	conf = re.ReplaceAll(conf, nil)
	out, count := insertInServers(string(conf), fmt.Sprintf("add_header %s %d always;", GenerationHeader, n))
	if count == 0 {
		return nil, errors.New("nginx.conf has no server block to mark with a generation header")
	}
	return []byte(out), nil
}

// insertInServers puts line at the top of every `server {` block.
func insertInServers(conf, line string) (string, int) {
	re := regexp.MustCompile(`(?m)^(\s*)server\s*\{[ \t]*\n`)
	count := 0
	out := re.ReplaceAllStringFunc(conf, func(m string) string {
		count++
		indent := re.FindStringSubmatch(m)[1]
		return m + indent + "    " + line + "\n"
	})
	return out, count
}

// SetWorkers sets worker_processes in conf.
func SetWorkers(conf []byte, n int) ([]byte, error) {
	re := regexp.MustCompile(`(?m)^(\s*worker_processes\s+)[^;]+;`)
	if !re.Match(conf) {
		return nil, errors.New("nginx.conf sets no worker_processes to change")
	}
	return re.ReplaceAll(conf, []byte("${1}"+strconv.Itoa(n)+";")), nil
}

// BreakConfig makes conf invalid (an unknown directive in the http block).
func BreakConfig(conf []byte) ([]byte, error) {
	re := regexp.MustCompile(`(?m)^(\s*http\s*\{[ \t]*\n)`)
	if !re.Match(conf) {
		return nil, errors.New("nginx.conf has no http block to break")
	}
	return re.ReplaceAll(conf, []byte("${1}    no_such_directive on;\n")), nil
}

// WorkerCount is worker_processes in conf (1 when absent, "auto" unknown: 0).
func WorkerCount(conf []byte) int {
	m := regexp.MustCompile(`(?m)^\s*worker_processes\s+([^;\s]+)\s*;`).FindSubmatch(conf)
	if m == nil {
		return 1
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return 0
	}
	return n
}

// Reload sends HUP to the master and verifies the new generation: the same
// master, workers accepting that are all new (want of them, 0: as many as
// before), and — when gen > 0 — the responses carrying generation gen.
func Reload(name, phase string, want, gen int) Step {
	return Step{Name: name, Signal: "HUP", Target: TargetMaster, Phase: phase,
		Expect: func(before, now proc.Snapshot, pids []int) error {
			m := pids[0]
			if !now.IsMaster(m) || now.PidFile != m {
				return fmt.Errorf("master %d to stay, named by nginx.pid", m)
			}
			old := map[int]bool{}
			for _, w := range before.Workers(m) {
				old[w.PID] = true
			}
			n := want
			if n == 0 {
				n = len(old)
			}
			ws := now.Workers(m)
			if len(ws) != n {
				return fmt.Errorf("master %d to have %d accepting workers of the new generation (has %d)", m, n, len(ws))
			}
			for _, w := range ws {
				if old[w.PID] {
					return fmt.Errorf("worker %d of the old generation to stop accepting", w.PID)
				}
			}
			return nil
		},
		Confirm: generationServed(gen)}
}

// generationServed checks that responses carry generation gen.
func generationServed(gen int) func(ctx context.Context, h Host) error {
	if gen <= 0 {
		return nil
	}
	return func(ctx context.Context, h Host) error {
		f, ok := h.(Fetcher)
		if !ok {
			return nil
		}
		// Several requests: every one must come from the new generation
		// (each may land on a different worker).
		for range 8 {
			code, hdr, err := f.Fetch(ctx, "/")
			if err != nil {
				return fmt.Errorf("GET / to read the generation: %w", err)
			}
			if got := hdr.Get(GenerationHeader); got != strconv.Itoa(gen) {
				return fmt.Errorf("responses to carry %s: %d (got %q, status %d)", GenerationHeader, gen, got, code)
			}
		}
		return nil
	}
}

// ReloadRejected sends HUP with an invalid configuration on disk: the master
// must log the [emerg] and keep its workers, all of them, accepting.
func ReloadRejected(name, phase string) Step {
	return Step{Name: name, Signal: "HUP", Target: TargetMaster, Phase: phase,
		ExpectLog: `\[emerg\]`,
		Expect: func(before, now proc.Snapshot, pids []int) error {
			m := pids[0]
			if !now.IsMaster(m) {
				return fmt.Errorf("master %d to stay", m)
			}
			was, is := before.Workers(m), now.Workers(m)
			if len(is) != len(was) {
				return fmt.Errorf("master %d to keep its %d workers (has %d accepting)", m, len(was), len(is))
			}
			for i := range is {
				if is[i].PID != was[i].PID {
					return fmt.Errorf("worker %d to keep accepting (now %d)", was[i].PID, is[i].PID)
				}
			}
			return nil
		}}
}

// OldGenerationDrainedStep names the step that waits for the old
// generation of workers to exit after a reload: the end of its drain.
const OldGenerationDrainedStep = "old-generation-drained"

// OldGenerationDrained waits until no worker of the master is shutting
// down: the previous generation finished what it held and exited.
func OldGenerationDrained(timeout time.Duration) Step {
	return Step{Name: OldGenerationDrainedStep, Target: TargetMaster, Timeout: timeout,
		Expect: func(before, now proc.Snapshot, pids []int) error {
			if d := now.Draining(pids[0]); len(d) > 0 {
				return fmt.Errorf("the previous generation to exit (%d workers still shutting down)", len(d))
			}
			return nil
		}}
}

// Fetch GETs path from nginx on the published port (127.0.0.1 only).
func (n *Node) Fetch(ctx context.Context, path string) (int, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+path, nil)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// Config is the nginx.conf the node was started with, or last written.
func (n *Node) Config() []byte { return append([]byte(nil), n.config...) }

// WriteConfig replaces nginx.conf in the container.
func (n *Node) WriteConfig(ctx context.Context, conf []byte) error {
	if err := n.WriteFile(ctx, harness.ConfigPath, conf, 0o644); err != nil {
		return err
	}
	n.config = append([]byte(nil), conf...)
	return nil
}

// AddReuseport adds reuseport to every listen directive of conf.
func AddReuseport(conf []byte) ([]byte, error) {
	re := regexp.MustCompile(`(?m)^(\s*listen\s+[^;]*?)\s*;`)
	if !re.Match(conf) {
		return nil, errors.New("nginx.conf has no listen directive")
	}
	return re.ReplaceAllFunc(conf, func(m []byte) []byte {
		if strings.Contains(string(m), "reuseport") {
			return m
		}
		return re.ReplaceAll(m, []byte("${1} reuseport;"))
	}), nil
}
