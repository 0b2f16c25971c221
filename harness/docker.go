package harness

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Label marks every container and image the harness creates (as Label=1), so
// that leftovers can be found and swept without touching anything else.
const Label = "nginx-upgrade-harness"

// pingTimeout bounds how long Connect waits for the engine to answer.
const pingTimeout = 5 * time.Second

// Connect returns a pool on the Docker engine named by DOCKER_HOST, else
// by the Docker context DOCKER_CONTEXT or the Docker CLI's current context
// names (Engine), else the default socket, after checking that the engine
// answers.
func Connect() (*dockertest.Pool, error) {
	endpoint, origin, err := Engine()
	if err != nil {
		return nil, err
	}
	// DOCKER_HOST's own way (its TLS variables too); a context's endpoint
	// as it is.
	named := endpoint
	if os.Getenv("DOCKER_HOST") != "" {
		named = ""
	}
	pool, err := dockertest.NewPool(named)
	if err != nil {
		return nil, unreachable(endpoint, origin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := pool.Client.PingWithContext(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", pingTimeout)
		}
		return nil, unreachable(endpoint, origin, err)
	}
	return pool, nil
}

// Engine is the engine's endpoint and where it came from: DOCKER_HOST;
// else the context DOCKER_CONTEXT names, else the Docker CLI's current
// context (config.json's currentContext, in DOCKER_CONFIG or ~/.docker),
// read from the CLI's context store; else the default socket. A context
// that is not in the store, or whose engine is reached over ssh://, is an
// error naming it.
func Engine() (endpoint, origin string, err error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h, "set by DOCKER_HOST", nil
	}
	const def = "unix:///var/run/docker.sock"
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	name, from := os.Getenv("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
	if name == "" {
		var cfg struct {
			CurrentContext string `json:"currentContext"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil && json.Unmarshal(b, &cfg) == nil {
			name, from = cfg.CurrentContext, filepath.Join(dir, "config.json")+"'s currentContext"
		}
	}
	if name == "" || name == "default" {
		return def, "the default socket; DOCKER_HOST is not set", nil
	}
	sum := sha256.Sum256([]byte(name))
	meta := filepath.Join(dir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	b, err := os.ReadFile(meta)
	if err != nil {
		return "", "", fmt.Errorf("docker context %q (from %s): not in the context store: %v", name, from, err)
	}
	var m struct {
		Endpoints map[string]struct {
			Host string `json:"Host"`
		} `json:"Endpoints"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", fmt.Errorf("docker context %q: %s: %v", name, meta, err)
	}
	host := m.Endpoints["docker"].Host
	switch {
	case host == "":
		return "", "", fmt.Errorf("docker context %q: %s names no docker endpoint", name, meta)
	case strings.HasPrefix(host, "ssh://"):
		return "", "", fmt.Errorf("docker context %q: its engine is reached over ssh (%s), which this tool does not speak: forward its socket (ssh -L /tmp/engine.sock:/var/run/docker.sock HOST) and set DOCKER_HOST=unix:///tmp/engine.sock", name, host)
	}
	return host, fmt.Sprintf("docker context %q, from %s", name, from), nil
}

// unreachable names the endpoint that did not answer, where it came from
// (DOCKER_HOST, the default socket, --docker-host) and why, in one line.
// The Docker client's own URL (http://unix.sock/_ping for any unix
// socket) names no real address: it is dropped, and so is the dialled
// address the endpoint already names.
func unreachable(endpoint, origin string, err error) error {
	cause := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		cause = op.Err.Error()
	}
	where := endpoint
	if origin != "" {
		where += " (" + origin + ")"
	}
	return fmt.Errorf("docker unreachable at %s: %s (is the Docker engine running?)", where, OneLine(cause))
}

// Every container the harness creates carries the id of its run (one
// process: a CLI invocation or a test process), drawn at random, so that
// no run ever decides about another's containers by a pid or a hostname,
// which mean nothing across pid namespaces or hosts sharing one engine.
// owner-pid and owner-host only tell a human where a container came from.
const (
	labelRun         = Label + ".run"
	labelReaped      = Label + ".reaped"       // "1": a reaper holds the run on this engine
	labelReaperFor   = Label + ".reaper-for"   // on a reaper: the run it holds
	labelReaperToken = Label + ".reaper-token" // on a reaper: what it finds itself by through its socket
	labelOwnerPID    = Label + ".owner-pid"
	labelOwnerHost   = Label + ".owner-host"
)

// runIdentity is this process's run: its id and, per engine endpoint,
// whether a reaper holds it there. It is process-wide by definition, as
// the pid the labels named before.
var runIdentity = struct {
	once   sync.Once
	id     string
	mu     sync.Mutex
	reaped map[string]bool
}{reaped: map[string]bool{}}

// RunID is this process's run id (16 hex digits).
func RunID() string {
	runIdentity.once.Do(func() {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand: " + err.Error())
		}
		runIdentity.id = hex.EncodeToString(b)
	})
	return runIdentity.id
}

func setReaped(endpoint string, held bool) {
	runIdentity.mu.Lock()
	defer runIdentity.mu.Unlock()
	runIdentity.reaped[endpoint] = held
}

func reapedOn(endpoint string) bool {
	runIdentity.mu.Lock()
	defer runIdentity.mu.Unlock()
	return runIdentity.reaped[endpoint]
}

// OwnerLabels are the labels every container the harness creates on pool's
// engine carries. The reaped label is always set, "1" or "0": a container
// must not inherit it from the labels of the image it was made from.
func OwnerLabels(pool *dockertest.Pool) map[string]string {
	host, _ := os.Hostname()
	reaped := "0"
	if pool != nil && reapedOn(pool.Client.Endpoint()) {
		reaped = "1"
	}
	return map[string]string{Label: "1", labelRun: RunID(), labelReaped: reaped,
		labelOwnerPID: strconv.Itoa(os.Getpid()), labelOwnerHost: host}
}

// abandoned tells whether a container's run is provably gone: a reaper held
// it (so it is the reaper's to remove), and no reaper holds it any more
// (held says which runs a running reaper holds). A container no reaper ever
// held (its run had none on this engine, or an older version made it) is
// never abandoned: only its own run, `prune --run ID` or `prune --all`
// removes it. Reapers are never abandoned: each ends on its own.
func abandoned(labels map[string]string, held func(run string) bool) bool {
	run := labels[labelRun]
	if labels[labelReaperFor] != "" || run == "" || labels[labelReaped] != "1" {
		return false
	}
	return !held(run)
}

// relookDelay is how long the sweep waits before it looks again at the runs
// it found without a reaper: a run whose reaper ended under it (removed by
// hand, killed) starts another within it (see Lease).
const relookDelay = 5 * time.Second

// Prune force-removes the harness's leftovers whose run is provably gone
// (see abandoned), running or not, with their anonymous volumes, and
// returns how many it removed. Nothing of a run whose reaper still holds it,
// or that never had a reaper, is touched.
func Prune(ctx context.Context, pool *dockertest.Pool) (int, error) {
	return sweep(ctx, pool, func(map[string]string) bool { return true })
}

// sweep is Prune over the containers in scope (all of them, but for tests
// that share an engine with other people's runs).
func sweep(ctx context.Context, pool *dockertest.Pool, scope func(labels map[string]string) bool) (int, error) {
	first, err := heldRuns(ctx, pool)
	if err != nil {
		return 0, err
	}
	cs, err := listHarness(ctx, pool, Label+"=1")
	if err != nil {
		return 0, err
	}
	candidates := map[string]bool{}
	for _, c := range cs {
		if scope(c.Labels) && abandoned(c.Labels, func(r string) bool { return first[r] }) {
			candidates[c.ID] = true
		}
	}
	if len(candidates) == 0 {
		return 0, nil
	}
	select {
	case <-time.After(relookDelay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	second, err := heldRuns(ctx, pool)
	if err != nil {
		return 0, err
	}
	return PruneWhere(ctx, pool, func(id string, l map[string]string) bool {
		return candidates[id] && abandoned(l, func(r string) bool { return second[r] })
	})
}

// heldRuns are the runs a running reaper holds on pool's engine.
func heldRuns(ctx context.Context, pool *dockertest.Pool) (map[string]bool, error) {
	cs, err := listHarness(ctx, pool, labelReaperFor)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, c := range cs {
		if c.State == "running" {
			held[c.Labels[labelReaperFor]] = true
		}
	}
	return held, nil
}

// PruneOwn removes the containers this run created and has not removed
// yet: the safety net at the end of a run, whatever happened in it.
func PruneOwn(ctx context.Context, pool *dockertest.Pool) (int, error) {
	return PruneRun(ctx, pool, RunID())
}

// PruneRun removes the containers of run id (never its reaper, which ends
// on its own when its run lets go of it).
func PruneRun(ctx context.Context, pool *dockertest.Pool, id string) (int, error) {
	return PruneWhere(ctx, pool, func(_ string, l map[string]string) bool { return l[labelRun] == id })
}

// OwnContainers names the containers this run created that are still
// there ("id name: state"), through the engine of DOCKER_HOST, within ctx.
func OwnContainers(ctx context.Context) ([]string, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	cs, err := listHarness(ctx, pool, labelRun+"="+RunID())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, fmt.Sprintf("%.12s %s: %s", c.ID, name, c.Status))
	}
	return out, nil
}

// PruneAll removes every container carrying the harness label, including
// those of runs still under way, their reapers and this run's.
func PruneAll(ctx context.Context, pool *dockertest.Pool) (int, error) {
	return PruneWhere(ctx, pool, func(string, map[string]string) bool { return true })
}

// listHarness lists the containers with the harness label and label filter
// f (a key, or key=value), running or not, within CallTimeout.
func listHarness(ctx context.Context, pool *dockertest.Pool, f string) ([]dc.APIContainers, error) {
	lctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{
		All:     true,
		Filters: map[string][]string{"label": {Label + "=1", f}},
		Context: lctx,
	})
	if err != nil {
		return nil, fmt.Errorf("list harness containers at %s: %s", pool.Client.Endpoint(), OneLine(CallErr(ctx, CallTimeout, err).Error()))
	}
	return cs, nil
}

// PruneWhere removes the harness's containers for which remove(id, labels)
// is true, and returns how many it removed.
func PruneWhere(ctx context.Context, pool *dockertest.Pool, remove func(id string, labels map[string]string) bool) (int, error) {
	cs, err := listHarness(ctx, pool, Label+"=1")
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []string
	for _, c := range cs {
		if !remove(c.ID, c.Labels) {
			continue
		}
		// Paused or frozen containers are thawed first; every call has a deadline.
		if err := RemoveContainer(ctx, pool, c.ID); err != nil {
			errs = append(errs, OneLine(err.Error()))
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("remove harness containers: %s", strings.Join(errs, "; "))
	}
	return removed, nil
}

// OneLine folds a multi-line message onto one line, so that every error the
// harness reports reads as a single line on stderr.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// LastLine is the last non-empty line of a command's output: the one that
// names the cause in a one-line error.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "(no output)"
}

// RunOnEngine is what an engine holds of one run.
type RunOnEngine struct {
	ID         string
	Containers int  // its containers, its reaper not counted
	Held       bool // a running reaper holds it
	Reaped     bool // its containers say a reaper held them
}

// Why says in a few words why a sweep leaves the run's containers alone.
func (r RunOnEngine) Why() string {
	switch {
	case r.ID == "":
		return "made by an older version of the tool, whose runs cannot be told apart: `prune --all` removes them"
	case r.Held:
		return "held by its reaper (under way, or removed by it within seconds)"
	case !r.Reaped:
		return "no reaper ever held it: its run removes them, or `prune --run " + r.ID + "`"
	}
	return "its reaper let go: the next sweep removes them"
}

// Runs lists the runs whose containers are on pool's engine, in the order
// the engine lists them.
func Runs(ctx context.Context, pool *dockertest.Pool) ([]RunOnEngine, error) {
	held, err := heldRuns(ctx, pool)
	if err != nil {
		return nil, err
	}
	cs, err := listHarness(ctx, pool, Label+"=1")
	if err != nil {
		return nil, err
	}
	var out []RunOnEngine
	at := map[string]int{}
	for _, c := range cs {
		if c.Labels[labelReaperFor] != "" {
			continue
		}
		id := c.Labels[labelRun]
		i, ok := at[id]
		if !ok {
			i = len(out)
			at[id] = i
			out = append(out, RunOnEngine{ID: id, Held: id != "" && held[id]})
		}
		out[i].Containers++
		out[i].Reaped = out[i].Reaped || c.Labels[labelReaped] == "1"
	}
	return out, nil
}

// ImageLabels are labels for an image committed from one of this run's
// containers: the run's own labels blanked, since an image keeps its
// container's labels and lends them to every container made from it, of
// any run and any version of the tool.
func ImageLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	for _, k := range []string{labelRun, labelReaped, labelOwnerPID, labelOwnerHost} {
		out[k] = ""
	}
	return out
}
