package harness

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"github.com/ory/dockertest/v3/docker/pkg/stdcopy"
)

// A reaper is a small container, one per run and engine, that removes the
// run's containers once the run stops holding it: the run attaches to the
// reaper's stdin through the engine's API, and when that stream ends
// without the run's "done" (the run crashed, was killed -9, lost its
// machine) the reaper waits ReaperGrace, then removes every container
// labelled with the run's id, and exits (it is removed on exit). The
// reaper's image is the tool's own static binary, imported into an image
// of its own: nothing is pulled.

// ReaperCommand is the hidden subcommand of the CLI that runs as a reaper.
const ReaperCommand = "reaper"

// ReaperGrace is how long a reaper waits, after its run let go of it
// without saying done, before it removes the run's containers: time for
// the run to hold another reaper if only the stream broke.
const ReaperGrace = 10 * time.Second

const (
	reaperRepo     = Label + "/reaper"
	reaperBinPath  = "/" + Label
	reaperSocket   = "/var/run/docker.sock"
	readyTimeout   = 20 * time.Second // create, attach, start, and the reaper's ready line
	releaseTimeout = 15 * time.Second // done sent until the reaper is gone
)

// Lease is a run's hold on its reaper on one engine.
type Lease struct {
	pool  *dockertest.Pool
	opts  leaseConfig
	token string // on the reaper's container, which the reaper finds through its socket

	mu      sync.Mutex
	cur     *reaperConn
	closing bool
}

type reaperConn struct {
	container string
	conn      net.Conn
	ended     chan struct{} // the reaper's output stream ended
}

type leaseConfig struct {
	ownerPID int // the owner-pid label's value (tests); 0: this process
	binary   string
	grace    time.Duration
	logf     func(format string, args ...any)
}

// LeaseOption configures HoldLease.
type LeaseOption func(*leaseConfig)

// ReaperBinary is the static build of the CLI the reaper image holds
// (default: this process's executable).
func ReaperBinary(path string) LeaseOption { return func(c *leaseConfig) { c.binary = path } }

// ReaperGraceOf sets the reaper's grace period (default ReaperGrace).
func ReaperGraceOf(d time.Duration) LeaseOption { return func(c *leaseConfig) { c.grace = d } }

// LeaseLog receives the lines a lease has to say after it started (a
// reaper lost and replaced, or lost for good).
func LeaseLog(logf func(format string, args ...any)) LeaseOption {
	return func(c *leaseConfig) { c.logf = logf }
}

// HoldLease starts this run's reaper on pool's engine and holds it; from
// then on the containers this run creates there are labelled as the
// reaper's to remove if the run ends without removing them. An error says
// in one line why no reaper could be had: the run then removes its
// containers itself on exit and interruption, and a hard kill leaves them
// to `prune --run ID`.
func HoldLease(ctx context.Context, pool *dockertest.Pool, opts ...LeaseOption) (*Lease, error) {
	cfg := leaseConfig{grace: ReaperGrace, logf: func(string, ...any) {}, ownerPID: os.Getpid()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("no reaper: cannot find this program's executable: %v", err)
		}
		cfg.binary = exe
	}
	l := &Lease{pool: pool, opts: cfg}
	if _, err := reaperSocketSource(pool); err != nil {
		return nil, fmt.Errorf("no reaper: %v", err)
	}
	if err := staticBinary(cfg.binary); err != nil {
		return nil, fmt.Errorf("no reaper: %v", err)
	}
	l.token = randomHex(8)
	rc, err := l.start(ctx)
	if err != nil {
		return nil, fmt.Errorf("no reaper: %v", err)
	}
	l.cur = rc
	setReaped(pool.Client.Endpoint(), true)
	go l.watch(rc)
	return l, nil
}

// RunID is the run this lease holds a reaper for.
func (l *Lease) RunID() string { return RunID() }

// Container is the reaper's container id.
func (l *Lease) Container() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur.container
}

// watch replaces a reaper that ended while the run still holds it (removed
// by hand, killed): within ReaperGrace, the run's containers stay held
// (the sweep looks twice, relookDelay apart; the old reaper hands over).
func (l *Lease) watch(rc *reaperConn) {
	for {
		<-rc.ended
		l.mu.Lock()
		closing := l.closing
		l.mu.Unlock()
		if closing {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		next, err := l.start(ctx)
		cancel()
		if err != nil {
			setReaped(l.pool.Client.Endpoint(), false)
			l.opts.logf("reaper of run %s on %s ended and none could replace it (%s): this run removes its containers itself on exit; a hard kill leaves them to `prune --run %s`",
				RunID(), l.pool.Client.Endpoint(), OneLine(err.Error()), RunID())
			return
		}
		l.mu.Lock()
		if l.closing {
			l.mu.Unlock()
			next.release(context.Background(), l.pool)
			return
		}
		l.cur = next
		l.mu.Unlock()
		l.opts.logf("reaper of run %s on %s ended under the run: replaced (%.12s)", RunID(), l.pool.Client.Endpoint(), next.container)
		rc = next
	}
}

// Close tells the reaper the run is done (the run has removed its
// containers; the reaper removes what may remain of them at once) and
// waits until the reaper is gone, within releaseTimeout.
func (l *Lease) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	l.closing = true
	rc := l.cur
	l.mu.Unlock()
	setReaped(l.pool.Client.Endpoint(), false)
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	return rc.release(ctx, l.pool)
}

func (rc *reaperConn) release(ctx context.Context, pool *dockertest.Pool) error {
	rc.conn.SetWriteDeadline(time.Now().Add(CallTimeout))
	_, werr := io.WriteString(rc.conn, "done\n")
	if cw, ok := rc.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	select {
	case <-rc.ended:
	case <-ctx.Done():
	}
	rc.conn.Close()
	// AutoRemove removes the reaper once it exits; wait for that, so that
	// nothing labelled is left when the run returns.
	for ctx.Err() == nil {
		ictx, cancel := context.WithTimeout(ctx, stateTimeout)
		_, err := pool.Client.InspectContainerWithContext(rc.container, ictx)
		cancel()
		var gone *dc.NoSuchContainer
		if errors.As(err, &gone) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	if err := RemoveContainer(rctx, pool, rc.container); err != nil {
		return fmt.Errorf("release reaper: %v", err)
	}
	if werr != nil {
		return fmt.Errorf("release reaper %.12s: %s", rc.container, OneLine(werr.Error()))
	}
	return nil
}

// start creates this run's reaper, attaches to it, starts it and waits
// for its ready line.
func (l *Lease) start(ctx context.Context) (*reaperConn, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	pool := l.pool
	src, err := reaperSocketSource(pool)
	if err != nil {
		return nil, err
	}
	var fi os.FileInfo
	if fi, err = os.Stat(src); err != nil {
		return nil, fmt.Errorf("engine socket: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	gid := fmt.Sprint(st.Gid)
	// nobody with the socket's group (Docker's: root:docker 0660); a
	// socket only its owner may use (podman system service makes one
	// 0600) is used as its owner, still with no capability.
	user := "65534:65534"
	if fi.Mode().Perm()&0o060 != 0o060 {
		user = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	ref, err := ensureReaperImage(ctx, pool, l.opts.binary)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	create := func() (*dc.Container, error) {
		return pool.Client.CreateContainer(dc.CreateContainerOptions{
			Context: ctx,
			Name:    fmt.Sprintf("%s-reaper-%s-%s", Label, RunID(), randomHex(3)),
			Config: &dc.Config{
				Image:      ref,
				Entrypoint: []string{reaperBinPath, ReaperCommand, "--run", RunID(), "--token", l.token, "--grace", l.opts.grace.String()},
				User:       user,
				OpenStdin:  true, StdinOnce: true,
				AttachStdin: true, AttachStdout: true, AttachStderr: true,
				Env:    []string{"DOCKER_HOST=unix://" + reaperSocket},
				Labels: map[string]string{Label: "1", labelReaperFor: RunID(), labelReaperToken: l.token, labelOwnerHost: host, labelOwnerPID: fmt.Sprint(l.opts.ownerPID)},
			},
			HostConfig: &dc.HostConfig{
				AutoRemove: true,
				// A mount, not a bind: a path the engine's host lacks is an
				// error, not a directory the engine creates there.
				Mounts:         []dc.HostMount{{Type: "bind", Source: src, Target: reaperSocket}},
				GroupAdd:       []string{gid},
				CapDrop:        []string{"ALL"},
				SecurityOpt:    []string{"no-new-privileges"},
				ReadonlyRootfs: true,
				NetworkMode:    "none",
			},
		})
	}
	c, err := create()
	if errors.Is(err, dc.ErrNoSuchImage) {
		// Removed meanwhile by a run of another build of the tool.
		if ref, err = ensureReaperImage(ctx, pool, l.opts.binary); err != nil {
			return nil, err
		}
		c, err = create()
	}
	if err != nil {
		return nil, fmt.Errorf("create reaper from %s: %s", ref, OneLine(CallErr(ctx, readyTimeout, err).Error()))
	}
	rc := &reaperConn{container: c.ID, ended: make(chan struct{})}
	fail := func(err error) (*reaperConn, error) {
		if rc.conn != nil {
			rc.conn.Close()
		}
		rctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
		defer cancel()
		RemoveContainer(rctx, pool, c.ID)
		return nil, err
	}
	conn, stream, err := attachStdio(ctx, pool.Client, c.ID)
	if err != nil {
		return fail(fmt.Errorf("attach to reaper %.12s: %s", c.ID, OneLine(CallErr(ctx, readyTimeout, err).Error())))
	}
	rc.conn = conn
	if err := pool.Client.StartContainerWithContext(c.ID, nil, ctx); err != nil {
		return fail(fmt.Errorf("start reaper %.12s: %s", c.ID, OneLine(CallErr(ctx, readyTimeout, err).Error())))
	}
	out, w := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(w, w, stream)
		w.CloseWithError(err)
		close(rc.ended)
	}()
	lines := bufio.NewScanner(out)
	ready := make(chan error, 1)
	go func() {
		if !lines.Scan() {
			ready <- fmt.Errorf("reaper %.12s ended before it was ready", c.ID)
			return
		}
		if l := lines.Text(); l != "ready "+RunID() {
			ready <- fmt.Errorf("reaper %.12s: %s", c.ID, l)
			return
		}
		ready <- nil
		for lines.Scan() {
			l.opts.logf("reaper %.12s: %s", c.ID, lines.Text())
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
	case <-ctx.Done():
		return fail(fmt.Errorf("reaper %.12s: not ready within %s", c.ID, readyTimeout))
	}
	conn.SetDeadline(time.Time{})
	return rc, nil
}

// attachStdio attaches to a created container's stdin, stdout and stderr
// through a connection of its own (hijacked), before the container starts.
func attachStdio(ctx context.Context, c *dc.Client, id string) (net.Conn, io.Reader, error) {
	network, addr, ok := engineDial(c)
	if !ok {
		return nil, nil, fmt.Errorf("the engine at %s is reached over TLS (not supported for a reaper)", c.Endpoint())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req, err := http.NewRequest(http.MethodPost, "http://docker/containers/"+id+"/attach?stream=1&stdin=1&stdout=1&stderr=1", nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	switch resp.StatusCode {
	case http.StatusSwitchingProtocols:
		return conn, br, nil
	case http.StatusOK:
		return conn, resp.Body, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	conn.Close()
	return nil, nil, fmt.Errorf("%s (HTTP %d)", strings.TrimSpace(string(b)), resp.StatusCode)
}

// reaperSocketSource is the engine's unix socket, to be mounted into the
// reaper: only an engine reached through a unix socket of this host can
// lend it (the reaper checks that it reaches the same engine).
func reaperSocketSource(pool *dockertest.Pool) (string, error) {
	u, err := url.Parse(pool.Client.Endpoint())
	if err != nil {
		return "", fmt.Errorf("engine endpoint %s: %v", pool.Client.Endpoint(), err)
	}
	if u.Scheme != "unix" {
		return "", fmt.Errorf("the engine at %s is not reached through a unix socket: its socket cannot be mounted into a reaper from here", pool.Client.Endpoint())
	}
	return u.Path, nil
}

// staticBinary checks that path is a statically linked ELF executable,
// which runs in an image holding nothing else.
func staticBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0 (as `make build` does)", path)
		}
	}
	return nil
}

// ensureReaperImage imports an image holding only binary (tagged by its
// sha256) unless the engine has it, and returns its reference.
func ensureReaperImage(ctx context.Context, pool *dockertest.Pool, binary string) (string, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("reaper image: %v", err)
	}
	sum := sha256.Sum256(data)
	tag := hex.EncodeToString(sum[:])[:16]
	ref := reaperRepo + ":" + tag
	err = Bounded(ctx, CallTimeout, func() error { _, err := pool.Client.InspectImage(ref); return err })
	if err == nil {
		return ref, nil
	}
	if err := importBinaryImage(ctx, pool, data, reaperRepo, tag, filepath.Base(reaperBinPath), Label+".reaper-image=1"); err != nil {
		return "", err
	}
	removeOldReaperImages(ctx, pool, ref)
	return ref, nil
}

// removeOldReaperImages removes the reaper images of other builds of the
// tool, each a few tens of MB: never by force, so that an image a running
// reaper uses stays (a run that loses the race for one imports it again).
func removeOldReaperImages(ctx context.Context, pool *dockertest.Pool, keep string) {
	var imgs []dc.APIImages
	err := Bounded(ctx, CallTimeout, func() (err error) {
		imgs, err = pool.Client.ListImages(dc.ListImagesOptions{Filters: map[string][]string{"reference": {reaperRepo}}})
		return err
	})
	if err != nil {
		return
	}
	for _, im := range imgs {
		for _, tag := range im.RepoTags {
			if tag != keep && strings.HasPrefix(tag, reaperRepo+":") {
				Bounded(ctx, CallTimeout, func() error { return pool.Client.RemoveImage(tag) })
			}
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ReaperMain is the reaper itself (the hidden subcommand): it checks that
// it reaches the engine its run uses, says "ready RUN" on stdout, and reads
// stdin until it ends. A "done" line means the run removed its containers:
// the reaper removes what may remain at once. An end without it means the
// run is gone: after the grace period, unless another reaper has taken the
// run over, it removes the run's containers. It returns the exit code.
func ReaperMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(ReaperCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := fs.String("run", "", "the run whose containers to remove")
	token := fs.String("token", "", "the token on this reaper's container, found through the socket")
	grace := fs.Duration("grace", ReaperGrace, "wait this long after the run let go")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	if *run == "" {
		say("error: no --run")
		return 2
	}
	pool, err := Connect()
	if err != nil {
		say("error: %s", OneLine(err.Error()))
		return 2
	}
	if *token != "" {
		if err := reachesSelf(pool, *token); err != nil {
			say("error: the socket mounted at %s: %s", reaperSocket, OneLine(err.Error()))
			return 2
		}
	}
	say("ready %s", *run)
	done := false
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "done" {
			done = true
		}
	}
	if !done {
		say("run %s let go without done: removing its containers in %s", *run, *grace)
		time.Sleep(*grace)
		if other := otherReaper(pool, *run); other != "" {
			say("run %s is held by reaper %.12s: leaving its containers", *run, other)
			return 0
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*CloseTimeout)
	defer cancel()
	n, err := PruneRun(ctx, pool, *run)
	if err != nil {
		say("error: %s", OneLine(err.Error()))
		return 1
	}
	if n > 0 || !done {
		say("removed %d container(s) of run %s", n, *run)
	}
	return 0
}

// reachesSelf checks that the engine behind pool runs this reaper: its
// own container (a container's hostname is its short id) carries token.
// An engine's id cannot tell it (Podman's changes with each docker info).
func reachesSelf(pool *dockertest.Pool, token string) error {
	self, _ := os.Hostname()
	var c *dc.Container
	err := Bounded(context.Background(), CallTimeout, func() (err error) { c, err = pool.Client.InspectContainer(self); return err })
	if err != nil {
		return fmt.Errorf("leads to an engine that does not run this reaper (%s: %s)", self, OneLine(err.Error()))
	}
	if c.Config == nil || c.Config.Labels[labelReaperToken] != token {
		return fmt.Errorf("leads to an engine whose container %s is not this reaper", self)
	}
	return nil
}

// otherReaper is a running reaper of run other than this one, "" if none.
func otherReaper(pool *dockertest.Pool, run string) string {
	self, _ := os.Hostname() // a container's hostname is its short id
	cs, err := listHarness(context.Background(), pool, labelReaperFor+"="+run)
	if err != nil {
		return ""
	}
	for _, c := range cs {
		if c.State == "running" && !strings.HasPrefix(c.ID, self) {
			return c.ID
		}
	}
	return ""
}

// importBinaryImage imports an image holding one file, the executable data
// at /name, as repo:tag with one label (KEY=VALUE): no registry, no base
// image, no build.
func importBinaryImage(ctx context.Context, pool *dockertest.Pool, data []byte, repo, tag, name, label string) error {
	ref := repo + ":" + tag
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// /tmp, where a load agent's tmpfs goes: Podman gives a tmpfs the mode
	// of the image's directory, so it is there, 1777, for nobody to write.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	tw.Write(data)
	tw.Close()
	bctx, cancel := context.WithTimeout(ctx, BuildStepTimeout)
	defer cancel()
	tmp := ImportName(repo)
	q := url.Values{"fromSrc": {"-"}, "repo": {tmp}, "tag": {tag}, "changes": {"LABEL " + label}}
	req, err := http.NewRequestWithContext(bctx, http.MethodPost, engineURL(pool.Client)+"/images/create?"+q.Encode(), &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := pool.Client.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("import image %s: %s", ref, OneLine(CallErr(ctx, BuildStepTimeout, err).Error()))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 400 || bytes.Contains(body, []byte(`"error"`)) {
		return fmt.Errorf("import image %s: %s (HTTP %d)", ref, OneLine(LastLine(string(body))), resp.StatusCode)
	}
	return Imported(ctx, pool, tmp, repo, tag)
}

// StaticBinary checks that path is a statically linked executable, which
// runs in any container (the reaper's image, nginx's container for the
// heartbeat): nil, or why not in one line.
func StaticBinary(path string) error { return staticBinary(path) }
