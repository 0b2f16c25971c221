package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Label marks every container and image the harness creates (as Label=1), so
// that leftovers can be found and swept without touching anything else.
const Label = "nginx-upgrade-harness"

// pingTimeout bounds how long Connect waits for the engine to answer.
const pingTimeout = 5 * time.Second

// Connect returns a pool on the Docker engine named by DOCKER_HOST (or the
// default socket), after checking that the engine answers.
func Connect() (*dockertest.Pool, error) {
	endpoint, origin := os.Getenv("DOCKER_HOST"), "set by DOCKER_HOST"
	if endpoint == "" {
		endpoint, origin = "unix:///var/run/docker.sock", "the default socket; DOCKER_HOST is not set"
	}
	pool, err := dockertest.NewPool("")
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

// Owner labels name the process that created a container, so that a sweep
// before a run removes the leftovers of processes that are gone and never a
// container another run is still using.
const (
	labelOwnerPID  = Label + ".owner-pid"
	labelOwnerHost = Label + ".owner-host"
)

// OwnerLabels are the labels every container the harness creates carries.
func OwnerLabels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{Label: "1", labelOwnerPID: strconv.Itoa(os.Getpid()), labelOwnerHost: host}
}

// ownerAlive tells whether the process that created a container still runs.
func ownerAlive(labels map[string]string) bool {
	host, _ := os.Hostname()
	pid, err := strconv.Atoi(labels[labelOwnerPID])
	if err != nil || pid <= 0 || labels[labelOwnerHost] != host {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Prune force-removes the harness's leftovers: every container carrying the
// harness label whose creating process is gone, running or not, with its
// anonymous volumes, and returns how many it removed. Containers of a run
// still under way (another process) are left alone.
func Prune(ctx context.Context, pool *dockertest.Pool) (int, error) {
	return PruneWhere(ctx, pool, func(l map[string]string) bool { return !ownerAlive(l) })
}

// PruneOwn removes the containers this process created and has not removed
// yet: the safety net at the end of a run, whatever happened in it.
func PruneOwn(ctx context.Context, pool *dockertest.Pool) (int, error) {
	pid := strconv.Itoa(os.Getpid())
	return PruneWhere(ctx, pool, func(l map[string]string) bool { return l[labelOwnerPID] == pid })
}

// OwnContainers names the containers this process created that are still
// there ("id name: state"), through the engine of DOCKER_HOST, within ctx.
func OwnContainers(ctx context.Context) ([]string, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{
		All:     true,
		Filters: map[string][]string{"label": {labelOwnerPID + "=" + strconv.Itoa(os.Getpid())}},
		Context: ctx,
	})
	if err != nil {
		return nil, CallErr(ctx, pingTimeout, err)
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
// those of runs still under way and of this process.
func PruneAll(ctx context.Context, pool *dockertest.Pool) (int, error) {
	return PruneWhere(ctx, pool, func(map[string]string) bool { return true })
}

func PruneWhere(ctx context.Context, pool *dockertest.Pool, remove func(labels map[string]string) bool) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, CallTimeout)
	cs, err := pool.Client.ListContainers(dc.ListContainersOptions{
		All:     true,
		Filters: map[string][]string{"label": {Label + "=1"}},
		Context: lctx,
	})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("list harness containers at %s: %s", pool.Client.Endpoint(), OneLine(CallErr(ctx, CallTimeout, err).Error()))
	}
	removed := 0
	var errs []string
	for _, c := range cs {
		if !remove(c.Labels) {
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
