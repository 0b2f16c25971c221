package nginx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// TestConfig runs `BINARY -t` with the node's command line options.
func (n *Node) TestConfig(ctx context.Context, binary string) error {
	argv := append([]string{binary}, n.cmd[1:]...)
	argv = append(argv, "-t", "-q")
	r, err := n.Exec(ctx, argv...)
	if err != nil {
		return fmt.Errorf("nginx -t: %w", err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("nginx.conf rejected by %s: %s", binary, causeLine(r.Stderr+r.Stdout))
	}
	return nil
}

// Where the start command's output and exit status go in the container.
const (
	startLog    = "/tmp/nginx-upgrade-harness-start.log"
	startStatus = "/tmp/nginx-upgrade-harness-start.status"
)

// startScript runs the start command (its argv after the two paths, never
// spliced into the script) with its output in a file, then records its exit
// status: a daemonising nginx exits at once, one in the foreground (`daemon
// off;`) only when it stops.
const startScript = `log="$1"; st="$2"; shift 2; rm -f "$st"; "$@" >"$log" 2>&1 </dev/null; echo $? >"$st"`

// StartNginx starts nginx by the node's command line — daemonised or in the
// foreground, as the command has it — and waits until a master with workers
// serves on the published port. A command that exits with an error fails at
// once, with its cause.
func (n *Node) StartNginx(ctx context.Context) error {
	if n.systemd {
		return n.startUnit(ctx)
	}
	argv := append([]string{"sh", "-c", startScript, "sh", startLog, startStatus}, n.cmd...)
	if err := n.execDetached(ctx, argv...); err != nil {
		return fmt.Errorf("start nginx: %w", err)
	}
	const timeout = 15 * time.Second
	deadline := time.Now().Add(timeout)
	var upSince time.Time
	for {
		if r, err := n.Exec(ctx, "cat", startStatus); err == nil && r.Exit == 0 {
			if code := strings.TrimSpace(r.Stdout); code != "" && code != "0" {
				out, _ := n.ReadFile(ctx, startLog)
				return fmt.Errorf("start nginx (%s): exit %s: %s", strings.Join(n.cmd, " "), code, causeLine(string(out)))
			}
		}
		err := n.WaitServing(ctx, 500*time.Millisecond)
		if err == nil {
			return nil
		}
		// nginx binds every listener before it forks a worker: a master
		// with workers that the port has not answered for a while never
		// will (its configuration listens elsewhere). No use waiting out
		// the timeout.
		up := errors.Is(err, errUpNotAnswering)
		switch {
		case !up:
			upSince = time.Time{}
		case upSince.IsZero():
			upSince = time.Now()
		case time.Since(upSince) >= upNotAnsweringFor:
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := n.ReadFile(ctx, startLog)
			if l := strings.TrimSpace(string(out)); l != "" {
				return fmt.Errorf("%w; the start command said: %s", err, causeLine(l))
			}
			return err
		}
	}
}

// errUpNotAnswering is WaitServing's error when the master and its workers
// were up at the last look and the port refused or closed the probe.
var errUpNotAnswering = errors.New("its master and workers are up")

// upNotAnsweringFor is how long StartNginx lets a master with workers
// leave its port unanswered before it gives up.
const upNotAnsweringFor = 2 * time.Second

// WaitServing waits until nginx.pid names a live master with workers and
// the published port answers with a status below 500. A check under way at
// the deadline is let finish (each is bounded on its own: ProbeTimeout, the
// probe's 2 s): on a slow host — a VM under software emulation — one exec
// takes longer than a short window, and cutting it would never see nginx
// serve.
func (n *Node) WaitServing(ctx context.Context, timeout time.Duration) error {
	window, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var last string
		up := false
		s, err := n.Snapshot(ctx)
		if err == nil {
			if s.IsMaster(s.PidFile) && len(s.Workers(s.PidFile)) > 0 {
				if err := n.Probe(ctx); err == nil {
					return nil
				} else {
					// Refused or closed, not slow: a busy worker that has
					// not answered yet is no proof of a port nobody binds.
					var ne net.Error
					slow := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
					last, up = err.Error(), !slow
				}
			} else {
				last = s.String()
			}
		} else {
			last = err.Error()
		}
		select {
		case <-window.Done():
			if up {
				return fmt.Errorf("nginx not serving after %s: %w, but the port did not answer: %s", timeout, errUpNotAnswering, last)
			}
			return fmt.Errorf("nginx not serving after %s: %s", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Probe sends one GET / to nginx's main port (Ask: through the node's
// agent, else the port published on 127.0.0.1).
func (n *Node) Probe(ctx context.Context) error {
	a, err := n.Ask(ctx, Ask{Method: http.MethodGet, Path: "/", Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	if a.Status >= 500 {
		return fmt.Errorf("GET / answered %s", a.StatusText)
	}
	return nil
}

// causeLine is nginx's [emerg] line when there is one (nginx -t ends with
// "test failed", which names no cause), else the last line.
func causeLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[emerg]") {
			return strings.TrimSpace(l)
		}
	}
	return harness.LastLine(out)
}
