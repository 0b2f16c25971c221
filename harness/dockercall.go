package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/ory/dockertest/v3/docker/pkg/stdcopy"
)

// Deadlines of the Docker calls the harness makes. A call past its deadline
// is abandoned: on Docker 20.10 with the cgroup v1 freezer, a `docker pause`
// that lands while an exec is in flight leaves that exec, and every later
// unpause, hanging; an engine can stop answering altogether. Nothing may
// wait on either for ever.
const (
	CallTimeout  = 10 * time.Second // inspect, pause, unpause, remove, upload, list
	ProbeTimeout = 5 * time.Second  // one exec that reads the process table, a log or sends a signal
	ExecTimeout  = 2 * time.Minute  // any other exec, unless its context ends sooner
	stateTimeout = 2 * time.Second  // docker inspect, to name a container's state in an error
	thawTimeout  = 3 * time.Second  // docker unpause, before the freezer cgroup is thawed by hand
	RunTimeout   = 2 * time.Minute  // create and start a container
	// CloseTimeout bounds the removal of a container, thaw included.
	CloseTimeout = 40 * time.Second
	// BuildStepTimeout bounds one step of an image build (a package
	// install, a compile, a commit): generous, builds take minutes.
	BuildStepTimeout = 20 * time.Minute
)

// CallError is a Docker call that failed or did not answer in time, with
// the container's state as Docker and the kernel report it.
type CallError struct {
	Call      string // what was asked of Docker: "docker exec sh (read process table)"
	Container string // the container's id
	Err       error
	State     string // ContainerState, "" when not read
	Ended     bool   // the container has exited or is gone: retrying cannot help
}

func (e *CallError) Error() string {
	msg := e.Call
	if e.Container != "" {
		msg += fmt.Sprintf(" [container %.12s]", e.Container)
	}
	msg += ": " + OneLine(e.Err.Error())
	if e.State != "" {
		msg += "; container state: " + e.State
	}
	return msg
}

func (e *CallError) Unwrap() error { return e.Err }

// ContainerEnded tells whether err is a Docker call that failed because the
// container has exited or is gone.
func ContainerEnded(err error) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.Ended
}

// IsDockerFault tells whether err comes from a Docker call that failed or
// hung (as opposed to nginx not doing what a step expected).
func IsDockerFault(err error) bool {
	var ce *CallError
	return errors.As(err, &ce)
}

// errNoAnswer is a call abandoned at its deadline.
type errNoAnswer struct{ after time.Duration }

func (e errNoAnswer) Error() string {
	return fmt.Sprintf("no answer within %s (abandoned)", e.after)
}
func (e errNoAnswer) Is(target error) bool { return target == context.DeadlineExceeded }

// CallErr turns the end of a call's context into the error it names: the
// caller's own cancellation (an interruption) stays what it is; the call's
// deadline becomes errNoAnswer.
func CallErr(parent context.Context, timeout time.Duration, err error) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, net.ErrClosed) {
		return errNoAnswer{timeout}
	}
	return err
}

// Bounded runs fn, a library call that takes no context, and returns at its
// deadline whatever fn does: the call is abandoned (its goroutine ends when
// Docker answers, if ever).
func Bounded(ctx context.Context, timeout time.Duration, fn func() error) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-cctx.Done():
		return CallErr(ctx, timeout, nil)
	}
}

// engineURL is the base URL for requests through the pool's HTTP client
// (which dials the engine's socket itself for a unix endpoint).
func engineURL(c *dc.Client) string {
	u, err := url.Parse(c.Endpoint())
	if err != nil {
		return c.Endpoint()
	}
	switch u.Scheme {
	case "unix", "npipe":
		return "http://unix.sock"
	case "tcp":
		if c.TLSConfig != nil {
			return "https://" + u.Host
		}
		return "http://" + u.Host
	}
	return strings.TrimRight(c.Endpoint(), "/")
}

// apiDo sends one request to the engine under ctx (the library's pause,
// unpause and exec inspection take no context) and decodes the answer into
// out when out is not nil.
func apiDo(ctx context.Context, c *dc.Client, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, engineURL(c)+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		msg := apiMessage(resp)
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/containers/") {
			return &dc.NoSuchContainer{ID: strings.Split(strings.TrimPrefix(path, "/containers/"), "/")[0], Err: errors.New(msg)}
		}
		return fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// engineDial is where the engine listens, for a connection the harness
// hijacks itself (an exec's streams); ok is false for TLS endpoints.
func engineDial(c *dc.Client) (network, addr string, ok bool) {
	u, err := url.Parse(c.Endpoint())
	if err != nil {
		return "", "", false
	}
	switch u.Scheme {
	case "unix":
		return "unix", u.Path, true
	case "tcp", "http":
		if c.TLSConfig == nil {
			return "tcp", u.Host, true
		}
	}
	return "", "", false
}

// startExec starts exec id and copies its output until it ends or ctx
// does. The library's StartExec ignores its context once the connection
// is hijacked; this one holds the connection itself, with ctx's deadline
// on it, and closes it when ctx ends.
func startExec(ctx context.Context, c *dc.Client, id string, stdin io.Reader, stdout, stderr io.Writer) error {
	network, addr, ok := engineDial(c)
	if !ok {
		// TLS endpoint: the library's hijack, abandoned at the deadline.
		cw, err := c.StartExecNonBlocking(id, dc.StartExecOptions{InputStream: stdin, OutputStream: stdout, ErrorStream: stderr, Context: ctx})
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cw.Wait() }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			cw.Close()
			return ctx.Err()
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req, err := http.NewRequest(http.MethodPost, "http://docker/exec/"+id+"/start", strings.NewReader(`{"Detach":false,"Tty":false}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	var stream io.Reader = br
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
	case http.StatusOK:
		stream = resp.Body
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct{ Message string }
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%s (HTTP %d)", m.Message, resp.StatusCode)
	}
	cw, _ := conn.(interface{ CloseWrite() error })
	go func() {
		if stdin != nil {
			io.Copy(conn, stdin)
		}
		if cw != nil {
			cw.CloseWrite()
		}
	}()
	_, err = stdcopy.StdCopy(stdout, stderr, stream)
	return err
}

// ExecIn runs argv in container id (no shell) under ctx and returns its
// exit status; every Docker call of it (create, start and its streams,
// inspect) ends when ctx does.
func ExecIn(ctx context.Context, c *dc.Client, id string, env []string, stdin io.Reader, stdout, stderr io.Writer, argv ...string) (int, error) {
	ex, err := c.CreateExec(dc.CreateExecOptions{Container: id, Cmd: argv, Env: env,
		AttachStdout: true, AttachStderr: true, AttachStdin: stdin != nil, Context: ctx})
	if err != nil {
		return 0, err
	}
	if err := startExec(ctx, c, ex.ID, stdin, stdout, stderr); err != nil {
		return 0, err
	}
	var ins dc.ExecInspect
	if err := apiDo(ctx, c, http.MethodGet, "/exec/"+ex.ID+"/json", &ins); err != nil {
		return 0, err
	}
	if ins.Running {
		return 0, errors.New("still running after its streams closed")
	}
	return ins.ExitCode, nil
}

// cgroupFile finds a container's file in a cgroup v1 controller (cgroupfs
// or systemd driver) or, for v2, in its unified cgroup; "" when absent
// (the container is gone, or the host's layout is another).
func cgroupFile(controller, v1name, v2name, fullID string) string {
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup", controller, "docker", fullID, v1name),
		filepath.Join("/sys/fs/cgroup", controller, "system.slice", "docker-"+fullID+".scope", v1name),
		filepath.Join("/sys/fs/cgroup/system.slice", "docker-"+fullID+".scope", v2name),
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// FreezerState is the kernel's view of whether the container is frozen:
// FROZEN, FREEZING, THAWED, or "unknown" where the file is absent.
func FreezerState(fullID string) string {
	p := cgroupFile("freezer", "freezer.state", "cgroup.freeze", fullID)
	if p == "" {
		return "unknown"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(b))
	if strings.HasSuffix(p, "cgroup.freeze") {
		if v == "1" {
			return "FROZEN"
		}
		return "THAWED"
	}
	return v
}

// thawFreezer thaws the container's freezer cgroup by hand (root only):
// what releases a container Docker cannot unpause.
func thawFreezer(fullID string) error {
	p := cgroupFile("freezer", "freezer.state", "cgroup.freeze", fullID)
	if p == "" {
		return fmt.Errorf("no freezer cgroup for %.12s", fullID)
	}
	v := "THAWED"
	if strings.HasSuffix(p, "cgroup.freeze") {
		v = "0"
	}
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		return fmt.Errorf("thaw %s: %w", p, err)
	}
	return nil
}

// oomKills is how many processes the kernel's OOM killer killed in the
// container's memory cgroup (-1 when unknown).
func oomKills(fullID string) int {
	p := cgroupFile("memory", "memory.oom_control", "memory.events", fullID)
	if p == "" {
		return -1
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "oom_kill" {
			n, err := strconv.Atoi(f[1])
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// ContainerState names a container's state as Docker and the kernel report
// it, in one line, e.g. "docker: paused; kernel: freezer FROZEN",
// "docker: exited (code 137), OOM-killed", "docker: gone (no such
// container)", "docker: the engine at … gave no answer to inspect within
// 2s; kernel: freezer FROZEN".
// abnormal is false for a running, unfrozen container with no OOM kill;
// ended is true for a container that has exited or is gone.
func ContainerState(ctx context.Context, pool *dockertest.Pool, id string) (state string, abnormal, ended bool) {
	var parts []string
	full := id
	ictx, cancel := context.WithTimeout(ctx, stateTimeout)
	c, err := pool.Client.InspectContainerWithContext(id, ictx)
	timedOut := ictx.Err() == context.DeadlineExceeded
	cancel()
	var gone *dc.NoSuchContainer
	switch {
	case errors.As(err, &gone):
		return "docker: gone (no such container)", true, true
	case err != nil && ctx.Err() != nil:
		parts = append(parts, "docker: not asked (interrupted)")
	case err != nil:
		abnormal = true
		if timedOut {
			parts = append(parts, fmt.Sprintf("docker: the engine at %s gave no answer to inspect within %s", pool.Client.Endpoint(), stateTimeout))
		} else {
			parts = append(parts, "docker: engine unreachable at "+pool.Client.Endpoint()+" ("+OneLine(err.Error())+")")
		}
	default:
		full = c.ID
		st := c.State
		d := st.Status
		if d == "" {
			d = st.StateString()
		}
		switch {
		case st.Paused:
			d, abnormal = "paused", true
		case !st.Running:
			d, abnormal, ended = fmt.Sprintf("%s (code %d)", d, st.ExitCode), true, true
		}
		if st.OOMKilled {
			d, abnormal = d+", OOM-killed", true
		}
		if st.Error != "" {
			d += ", error: " + OneLine(st.Error)
		}
		parts = append(parts, "docker: "+d)
	}
	var kernel []string
	fz := FreezerState(full)
	if fz != "THAWED" {
		kernel = append(kernel, "freezer "+fz)
		if fz == "FROZEN" || fz == "FREEZING" {
			abnormal = true
		}
	}
	if n := oomKills(full); n > 0 {
		kernel = append(kernel, fmt.Sprintf("%d OOM kill(s) in its memory cgroup", n))
		abnormal = true
	}
	if len(kernel) > 0 {
		parts = append(parts, "kernel: "+strings.Join(kernel, ", "))
	}
	return strings.Join(parts, "; "), abnormal, ended
}

// Thaw unpauses a paused or frozen container: through Docker first, and,
// where Docker does not answer within its deadline (or answers but leaves
// the cgroup frozen), through its freezer cgroup. It returns what it did,
// "" when the container was not frozen.
func Thaw(ctx context.Context, pool *dockertest.Pool, fullID string) (string, error) {
	fz := FreezerState(fullID)
	paused := fz == "FROZEN" || fz == "FREEZING"
	if !paused {
		ictx, cancel := context.WithTimeout(ctx, stateTimeout)
		c, err := pool.Client.InspectContainerWithContext(fullID, ictx)
		cancel()
		paused = err == nil && c.State.Paused
	}
	if !paused {
		return "", nil
	}
	uctx, cancel := context.WithTimeout(ctx, thawTimeout)
	uerr := apiDo(uctx, pool.Client, http.MethodPost, "/containers/"+fullID+"/unpause", nil)
	cancel()
	uerr = CallErr(ctx, thawTimeout, uerr)
	if uerr == nil && FreezerState(fullID) != "FROZEN" {
		return "unpaused through docker", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err := thawFreezer(fullID); err != nil {
		return "", fmt.Errorf("docker unpause: %v; %w", uerr, err)
	}
	// Docker notices the thaw (its hung unpause returns); give it a moment.
	for i := 0; i < 20 && FreezerState(fullID) == "FROZEN"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("docker unpause: %v; thawed through the freezer cgroup", uerr), nil
}

// RemoveContainer force-removes a container under deadlines, thawing it
// first if it is paused or frozen (Docker cannot remove it otherwise). A
// container that is already gone is not an error.
func RemoveContainer(ctx context.Context, pool *dockertest.Pool, id string) error {
	Thaw(ctx, pool, id)
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, CallTimeout)
		err = pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: id, Force: true, RemoveVolumes: true, Context: rctx})
		cancel()
		var gone *dc.NoSuchContainer
		if err == nil || errors.As(err, &gone) {
			return nil
		}
		err = CallErr(ctx, CallTimeout, err)
		if ctx.Err() != nil {
			break
		}
		// A removal that hung may have met a freeze that came meanwhile.
		if FreezerState(id) == "FROZEN" {
			thawFreezer(id)
		}
	}
	state, _, ended := ContainerState(context.Background(), pool, id)
	return &CallError{Call: "docker rm -f", Container: id, Err: err, State: state, Ended: ended}
}

// apiMessage is the engine's word on a failed call: the message of its
// JSON error body, else the body itself (read up to 4 KiB).
func apiMessage(resp *http.Response) string {
	var m struct{ Message string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if json.Unmarshal(b, &m) != nil || m.Message == "" {
		m.Message = strings.TrimSpace(string(b))
	}
	return m.Message
}
