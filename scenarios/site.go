package scenarios

// The user's own site (run --config-dir): a configuration tree placed at
// /etc/nginx unchanged, its listeners read from `nginx -T` before any
// scenario, stand-in backends on the upstream addresses it names, and the
// load profiles it cannot serve named and left out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Site is a user's configuration tree and what goes with it.
type Site struct {
	Tree   *nginx.Tree
	Mounts []nginx.Mount
	// Hosts are NAME:IP lines for the containers' /etc/hosts (--add-host),
	// loopback addresses only.
	Hosts []string
	// UpstreamCmd is the user's own backend (--upstream-cmd), an argv run
	// in each container once nginx serves, in place of the stand-ins.
	UpstreamCmd []string
	// ServerLog: the tree has the witness's include (--server-log,
	// nginx.WithServerLog), which site.added names.
	ServerLog bool

	// Set by CheckSite:
	Declared *nginx.Site // what nginx -T of the old build says
	// Backends are the loopback IP:PORT addresses a stand-in backend
	// answers on in every container of the run.
	Backends []string
	// Skipped are the load profiles this configuration cannot serve.
	Skipped []record.SkippedProfile
	// Proxied says, for each proxied location, what asking for it through
	// nginx answered in the pre-check.
	Proxied []string
}

// ParseAddHost reads --add-host NAME:ADDR; ADDR must be a loopback IPv4
// address (the stand-in backend listens there, in the container).
func ParseAddHost(spec string) (string, error) {
	i := strings.LastIndexByte(spec, ':')
	if i <= 0 || i == len(spec)-1 {
		return "", fmt.Errorf("%q: want NAME:127.0.0.x", spec)
	}
	name, addr := spec[:i], spec[i+1:]
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%q: %s is not a loopback IPv4 address (want 127.0.0.x: the load and the stand-in backends stay in the container)", spec, addr)
	}
	return name + ":" + addr, nil
}

// NewBuildRejectsError is the broken-build finding of a site's pre-check:
// the new build's `nginx -t` rejects the tree the old build accepts, so an
// upgrade to it cannot start a new master with this configuration.
type NewBuildRejectsError struct{ Cause string }

func (e *NewBuildRejectsError) Error() string {
	return "broken build: the new build rejects the configuration tree the old build serves (" + e.Cause +
		"): USR2 would leave the old master alone; no scenario run"
}

// siteNodeOptions are what every container of a site run gets.
func (s *Site) nodeOptions() []nginx.NodeOption {
	opts := []nginx.NodeOption{nginx.WithTree(s.Tree)}
	if len(s.Mounts) > 0 {
		opts = append(opts, nginx.WithMounts(s.Mounts...))
	}
	if len(s.Hosts) > 0 {
		opts = append(opts, nginx.WithExtraHosts(s.Hosts...))
	}
	if s.Declared != nil {
		opts = append(opts, nginx.WithSite(s.Declared))
	}
	return opts
}

// CheckSite tries the tree before any scenario starts, in two short-lived
// containers of the old build: `nginx -t` and `nginx -T` of the old build
// (its listeners, server names, upstreams), `nginx -t` of the new build
// (a rejection is NewBuildRejectsError), then nginx started with every
// listener published and stand-ins on its upstreams, and asked for what
// each load profile needs. It records in p.Site what it found and takes
// out of p.Load what this configuration cannot serve. Any other error is
// bad input, one line.
func CheckSite(ctx context.Context, pool *dockertest.Pool, im Images, p *Params) error {
	s := p.Site
	img := im.Good
	if img == "" {
		img = im.Broken
	}
	base := []nginx.NodeOption{nginx.WithImage(img), nginx.WithoutStart()}
	if p.Command != nil {
		base = append(base, nginx.WithCommand(p.Command))
	}
	n, err := nginx.StartNode(ctx, pool, append(append(base, s.nodeOptions()...), nginx.WithLabel(harness.Label+".scenario", "site-check"))...)
	if err != nil {
		return fmt.Errorf("--config-dir %s: %w", s.Tree.Dir, err)
	}
	dump, err := n.Dump(ctx, n.Binary())
	if err == nil {
		s.Declared, err = nginx.ParseDump(dump)
	}
	var newErr error
	if err == nil && im.Good != "" {
		newErr = n.TestConfig(ctx, harness.NewBinaryStage)
	}
	n.Close()
	if err != nil {
		return fmt.Errorf("--config-dir %s: nginx -T: %w", s.Tree.Dir, err)
	}
	if newErr != nil {
		cause := newErr.Error()
		if i := strings.Index(cause, "[emerg]"); i >= 0 {
			cause = cause[i:]
		}
		return &NewBuildRejectsError{Cause: cause}
	}
	path := p.LoadPath
	if path == "" || path == LoadPathAuto {
		path = LoadPathHost
		if loadgen.CheckNetns("/proc/self/ns/net") == nil {
			path = LoadPathNetns
		} else if p.agentBinary() != "" {
			path = LoadPathAgent
		}
	}
	if err := reachable(s.Declared, path); err != nil {
		return fmt.Errorf("--config-dir %s: %w", s.Tree.Dir, err)
	}
	if s.Backends, err = standIns(s.Declared, s.Hosts); err != nil && s.UpstreamCmd == nil {
		return fmt.Errorf("--config-dir %s: %w", s.Tree.Dir, err)
	}
	if s.UpstreamCmd != nil {
		s.Backends = nil // the user's own backend answers for them
	}
	if len(s.Backends) > 0 && loadgen.CheckNetns("/proc/self/ns/net") != nil {
		return fmt.Errorf("--config-dir %s: the stand-in backends for %s run in the container's network namespace, which needs root", s.Tree.Dir, strings.Join(s.Backends, ", "))
	}
	if n, err = nginx.StartNode(ctx, pool, p.nodeOptions(img, nginx.WithLabel(harness.Label+".scenario", "site-check"))...); err != nil {
		return fmt.Errorf("--config-dir %s: %w", s.Tree.Dir, err)
	}
	defer n.Close()
	stop, err := s.startBackends(ctx, n, p.Load)
	if err != nil {
		return fmt.Errorf("--config-dir %s: %w", s.Tree.Dir, err)
	}
	defer stop()
	s.probeProxied(ctx, n)
	return s.probeProfiles(ctx, n, p)
}

// probeProxied asks nginx, once, for each location that proxies (on a
// plain listener, a path not a regular expression, with its server's
// name as Host), and records who answered: the stand-in says so in its
// header. It stops nothing: a site may rewrite or guard its locations.
func (s *Site) probeProxied(ctx context.Context, n *nginx.Node) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, px := range s.Declared.Proxied {
		if px.Location == "" || len(px.Ports) == 0 {
			continue
		}
		addr, ok := n.HostAddr(px.Ports[0])
		if !ok {
			continue
		}
		host := px.ServerName
		what := fmt.Sprintf("GET %s (Host %s) on port %d, proxied to %s", px.Location, orDefault(host), px.Ports[0], strings.Join(px.Upstreams, " "))
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+px.Location, nil)
		if err != nil {
			continue
		}
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			s.Proxied = append(s.Proxied, what+": "+oneLine(err.Error()))
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		by := "not by a stand-in"
		if resp.Header.Get(backend.HeaderBackend) == siteBackendName {
			by = "by the stand-in"
		}
		s.Proxied = append(s.Proxied, fmt.Sprintf("%s: answered %s %s", what, resp.Status, by))
	}
}

func orDefault(host string) string {
	if host == "" {
		return "the default server's"
	}
	return host
}

// reachable says why the load cannot reach a listener: the harness's load
// goes to 127.0.0.1 inside the container, or through Docker's port proxy
// (which connects to the container's IPv4 address) from the host.
func reachable(site *nginx.Site, path string) error {
	if len(site.Listeners) == 0 {
		why := "it declares no listen directive on TCP"
		if len(site.Skipped) > 0 {
			why = "its only listeners are " + strings.Join(site.Skipped, "; ")
		}
		return fmt.Errorf("no listener the load can reach: %s", why)
	}
	v4 := map[int]bool{}
	for _, l := range site.Listeners {
		if !l.IPv6() {
			v4[l.Port] = true
		}
	}
	plain := false
	for _, l := range site.Listeners {
		switch {
		case l.Addr == "*":
			plain = plain || !l.SSL
		case l.IPv6() && (l.Wildcard() || l.Loopback()):
			if !v4[l.Port] {
				return fmt.Errorf("listener %s is IPv6 only: the load connects to 127.0.0.1:%d; add `listen %d;` beside it", l, l.Port, l.Port)
			}
		case l.Addr == "127.0.0.1":
			if path == LoadPathHost {
				return fmt.Errorf("listener %s is bound to the container's loopback, which the engine's port proxy does not reach: use --load-path netns (as root) or agent (the load then comes from inside the container's namespace)", l)
			}
		default:
			return fmt.Errorf("listener %s is bound to an address the load cannot reach in the container (it reaches every-address listeners and 127.0.0.1)", l)
		}
	}
	if !plain {
		return errors.New("no plain-HTTP listener on every IPv4 address (e.g. `listen 80;`): the harness checks that nginx serves, and loads it, through one")
	}
	return nil
}

// standIns are the loopback addresses to run a stand-in backend on: each
// upstream the configuration names — an IP literal, or a name --add-host
// maps — that is not one of nginx's own listeners. A name not mapped, or
// a non-loopback address, is an error that says what to do.
func standIns(site *nginx.Site, hosts []string) ([]string, error) {
	mapped := map[string]string{"localhost": "127.0.0.1"}
	for _, h := range hosts {
		i := strings.LastIndexByte(h, ':')
		mapped[h[:i]] = h[i+1:]
	}
	own := map[string]bool{}
	for _, l := range site.Listeners {
		own[strconv.Itoa(l.Port)] = own[strconv.Itoa(l.Port)] || l.Wildcard() || l.Loopback()
	}
	var out []string
	for _, u := range site.Upstreams {
		host, port, _ := net.SplitHostPort(u)
		if ip, ok := mapped[host]; ok {
			host = ip
		}
		ip := net.ParseIP(host)
		switch {
		case ip == nil:
			return nil, fmt.Errorf("upstream %s is a host name the container cannot map to its loopback: give --add-host %s:127.0.0.x (the harness answers there with a stand-in)", u, host)
		case !ip.IsLoopback():
			return nil, fmt.Errorf("upstream %s is not a loopback address: the load stays in the container; map its name with --add-host NAME:127.0.0.x", u)
		}
		if own[port] && (host == "127.0.0.1" || strings.HasPrefix(host, "127.")) {
			// nginx's own listener on every address (or this one): it
			// proxies to itself, no stand-in.
			continue
		}
		a := net.JoinHostPort(host, port)
		if !hasStr(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func hasStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Where the user's backend (--upstream-cmd) writes its output and, when it
// ends, its exit status, in the container; upstreamSettle is how long it
// is given to fail at once.
const (
	UpstreamLog    = "/tmp/nginx-upgrade-harness-upstream.log"
	UpstreamStatus = "/tmp/nginx-upgrade-harness-upstream.status"
	upstreamSettle = 500 * time.Millisecond
)

// upstreamRecord keeps the user's backend's output and exit (still
// running: no exit) in the scenario's directory.
func (s *Site) upstreamRecord(ctx context.Context, n *nginx.Node) string {
	if s == nil || s.UpstreamCmd == nil || n == nil {
		return ""
	}
	out, _ := n.ReadFile(ctx, UpstreamLog)
	status := "still running at the end"
	if r, err := n.Exec(ctx, "cat", UpstreamStatus); err == nil && r.Exit == 0 && strings.TrimSpace(r.Stdout) != "" {
		status = "exited " + strings.TrimSpace(r.Stdout)
	}
	return fmt.Sprintf("--upstream-cmd %q: %s\n%s", strings.Join(s.UpstreamCmd, " "), status, out)
}

// siteBackendName is what the stand-ins say they are (X-Backend and the body).
const siteBackendName = "stand-in"

// standInConfigs are the stand-ins of s.Backends (not on BackendAddr when
// the traffic's own backend runs there); none when the user's command is
// the upstream.
func (s *Site) standInConfigs(l Load) []backend.Config {
	if s.UpstreamCmd != nil {
		return nil
	}
	var cfgs []backend.Config
	for _, a := range s.Backends {
		if a == BackendAddr && l.needsBackend() {
			continue
		}
		cfgs = append(cfgs, backend.Config{Addr: a, Name: siteBackendName, AnyPath: true})
	}
	return cfgs
}

// startBackends starts a stand-in on each of s.Backends in n's network
// namespace (not on BackendAddr when the traffic's own backend runs there).
func (s *Site) startBackends(ctx context.Context, n *nginx.Node, l Load) (stop func(), err error) {
	var srvs []*backend.Server
	stop = func() {
		for _, srv := range srvs {
			srv.Close()
		}
	}
	if s.UpstreamCmd != nil {
		if err := n.StartCommand(ctx, UpstreamLog, UpstreamStatus, s.UpstreamCmd...); err != nil {
			return nil, fmt.Errorf("--upstream-cmd: %w", err)
		}
		// A command that cannot run at all ends at once: say so now.
		time.Sleep(upstreamSettle)
		if r, err := n.Exec(ctx, "cat", UpstreamStatus); err == nil && r.Exit == 0 && strings.TrimSpace(r.Stdout) != "" {
			out, _ := n.ReadFile(ctx, UpstreamLog)
			return nil, fmt.Errorf("--upstream-cmd %q exited %s within %s: %s", strings.Join(s.UpstreamCmd, " "),
				strings.TrimSpace(r.Stdout), upstreamSettle, harness.LastLine(string(out)))
		}
		return stop, nil
	}
	for _, cfg := range s.standInConfigs(l) {
		cfg.Netns = n.NetnsPath()
		srv, err := backend.Start(ctx, cfg)
		if err != nil {
			stop()
			return nil, fmt.Errorf("stand-in backend on %s: %w", cfg.Addr, err)
		}
		srvs = append(srvs, srv)
	}
	return stop, nil
}

// probeProfiles asks nginx for what each load profile needs; the main
// request must be served (else bad input), the rest is left out with
// its reason when it is not.
func (s *Site) probeProfiles(ctx context.Context, n *nginx.Node, p *Params) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ask := func(method, path, body string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, method, n.URL()+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return resp, nil
	}
	port := strings.TrimPrefix(n.InnerURL(), "http://127.0.0.1:")
	resp, err := ask("GET", "/", "")
	if err != nil {
		return fmt.Errorf("--config-dir %s: GET / on port %s: %v", s.Tree.Dir, port, err)
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("--config-dir %s: GET / on port %s answered %s: every request of the load would fail", s.Tree.Dir, port, resp.Status)
	}
	skip := func(profile, reason string) {
		s.Skipped = append(s.Skipped, record.SkippedProfile{Profile: profile, Reason: reason})
	}
	if p.Load.Method == "POST" {
		if resp, err := ask("POST", "/post", strings.Repeat("x", 512)); err != nil || resp.StatusCode != http.StatusOK {
			skip("POST /post", "this configuration does not answer POST /post with 200 ("+status(resp, err)+"): the http1 profile sends GET / instead")
			p.Load.Method = "GET"
		}
	}
	if p.Load.Slow > 0 {
		resp, err := ask("HEAD", loadgen.DefaultSlowPath+"?rate=1000000", "")
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != loadgen.DefaultSlowBytes {
			skip(fmt.Sprintf("%d long downloads (%s)", p.Load.Slow, loadgen.DefaultSlowPath),
				fmt.Sprintf("this configuration does not serve %s as a file of %d bytes (%s): no long downloads span the transitions",
					loadgen.DefaultSlowPath, loadgen.DefaultSlowBytes, status(resp, err)))
			p.Load.Slow = 0
		}
	}
	// The upstream of the proxy, WebSocket and upload kinds, once for all
	// of them, as the scenarios run it.
	stopBackend, err := p.startBackend(ctx, n)
	if err != nil {
		return err
	}
	if stopBackend != nil {
		defer stopBackend()
	}
	var keep []string
	for _, k := range p.Load.Traffic {
		if k == TrafficHTTP1 || k == TrafficHTTP1KeepAlive {
			keep = append(keep, k)
			continue
		}
		var err error
		if k == TrafficHTTP2 && n.TLSURL() == "" {
			err = errors.New("no TLS listener on every IPv4 address")
		} else {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = checkKind(cctx, k, n)
			cancel()
		}
		if err != nil {
			skip("--traffic "+k, oneLine(err.Error()))
			continue
		}
		keep = append(keep, k)
	}
	p.Load.Traffic = keep
	if len(keep) == 0 {
		p.Load.Traffic = nil
	}
	if err := p.Load.Validate(); err != nil {
		return err
	}
	// The targets too, while the stand-ins run: a target may be a proxied
	// location of the tree.
	return p.Load.checkTargets(ctx, n)
}

// SiteScenarios leaves out the scenarios this configuration cannot
// prove: a positive control (expect drops) is measured on the long
// downloads the killed or stopped workers hold, so without long downloads
// it could only fail. Each one left out is named in p.Site.Skipped.
func SiteScenarios(scs []Scenario, p *Params) []Scenario {
	if p.Site == nil || p.Load.Slow > 0 {
		return scs
	}
	var keep []Scenario
	for _, sc := range scs {
		if sc.Expect == ExpectDrops {
			p.Site.Skipped = append(p.Site.Skipped, record.SkippedProfile{Profile: "scenario " + sc.Name,
				Reason: "its positive control is measured on the long downloads the workers hold, and this configuration serves none"})
			continue
		}
		keep = append(keep, sc)
	}
	return keep
}

func status(resp *http.Response, err error) string {
	if err != nil {
		return oneLine(err.Error())
	}
	if resp.ContentLength >= 0 && resp.StatusCode == http.StatusOK {
		return fmt.Sprintf("answered %s with %d bytes", resp.Status, resp.ContentLength)
	}
	return "answered " + resp.Status
}

// siteScenario adapts a scenario to a configuration tree: the reload's
// generation header would be written into the user's files, so the new
// generation is verified by its workers alone (every accepting worker is
// new); reuseport is added to the first listen of each address in the
// tree's files (nginx allows it once per address). The notes say what
// changed.
func siteScenario(sc Scenario, s *Site) (Scenario, []nginx.NodeOption, []string, error) {
	var notes []string
	var opts []nginx.NodeOption
	moves := make([]Move, 0, len(sc.Moves))
	for _, m := range sc.Moves {
		switch m.Step.Name {
		case "change-config":
			m.Step = nginx.EditConfig("change-config", func(c []byte) ([]byte, error) { return c, nil })
			notes = append(notes, "configuration tree: the reload re-reads the unchanged tree (no generation header is written into the user's files); the new generation is verified by its workers: every accepting worker is new")
		case "reload-config":
			m.Step = nginx.Reload("reload-config", "reloaded", 0, 0)
		}
		moves = append(moves, m)
	}
	sc.Moves = moves
	if sc.ConfigEdit != nil {
		tree, changed, err := s.Tree.Edited(reuseportOnce())
		if err != nil {
			return sc, nil, nil, fmt.Errorf("%s: %w", sc.Name, err)
		}
		if len(changed) == 0 {
			return sc, nil, nil, fmt.Errorf("%s: no listen directive in the tree to add reuseport to", sc.Name)
		}
		opts = append(opts, nginx.WithTree(tree))
		notes = append(notes, "the harness added reuseport to the first listen of each address in "+strings.Join(changed, ", ")+" (this scenario's container only)")
		sc.ConfigEdit, sc.ConfigNote = nil, ""
	}
	return sc, opts, notes, nil
}

// reuseportOnce adds reuseport to the first listen directive of each
// address across the files it is given, in order (nginx rejects the
// parameter twice for one address).
func reuseportOnce() func(string, []byte) ([]byte, error) {
	seen := map[string]bool{}
	re := regexp.MustCompile(`(?m)^(\s*listen\s+)([^;\s]+)([^;]*);`)
	return func(_ string, data []byte) ([]byte, error) {
		return re.ReplaceAllFunc(data, func(m []byte) []byte {
			g := re.FindSubmatch(m)
			addr, params := string(g[2]), string(g[3])
			if strings.HasPrefix(addr, "unix:") || strings.Contains(params, "quic") {
				return m
			}
			l, _ := nginx.ParseListenArgs(append([]string{addr}, strings.Fields(params)...))
			key := l.Addr + ":" + strconv.Itoa(l.Port)
			if seen[key] || strings.Contains(params, "reuseport") {
				seen[key] = true
				return m
			}
			seen[key] = true
			return []byte(string(g[1]) + addr + params + " reuseport;")
		}), nil
	}
}

// siteMeta is the report's description of the site, with the listeners
// as node published them (node nil: before any container).
func (s *Site) siteMeta(n *nginx.Node, l Load) *record.Site {
	if s == nil || s.Declared == nil {
		return nil
	}
	rs := &record.Site{Dir: s.Tree.Dir, Files: s.Declared.Files, SkippedListeners: s.Declared.Skipped,
		Added: []string{}, Backends: []string{}, SkippedProfiles: append([]record.SkippedProfile{}, s.Skipped...)}
	if s.ServerLog {
		rs.Added = append(rs.Added, nginx.ServerLogAdded())
	}
	if s.UpstreamCmd != nil {
		rs.Backends = append(rs.Backends, fmt.Sprintf("the user's own backend, --upstream-cmd %q, run in each container (output and exit in upstream.log)", strings.Join(s.UpstreamCmd, " ")))
	}
	for _, b := range s.Backends {
		rs.Backends = append(rs.Backends, fmt.Sprintf("stand-in backend on %s in the container (answers %q on any path, header %s: %s)",
			b, strings.TrimSpace(string(backend.Body(siteBackendName))), backend.HeaderBackend, siteBackendName))
	}
	for _, m := range s.Mounts {
		rs.Mounts = append(rs.Mounts, m.Src+":"+m.Dst)
	}
	rs.Proxied = append(rs.Proxied, s.Proxied...)
	listeners := s.Declared.Listeners
	if n != nil {
		listeners = n.Listeners()
	}
	plain, tls := nginx.SiteMainPorts(s.Declared)
	for _, x := range listeners {
		sl := record.SiteListener{Address: x.Addr, Port: x.Port, SSL: x.SSL, HTTP2: x.HTTP2, Reuseport: x.Reuseport,
			DefaultServer: x.DefaultServer, ServerNames: append([]string{}, x.ServerNames...), HostAddress: x.HostAddr}
		switch {
		case x.Addr == "*" && x.Port == plain:
			sl.Load = "the harness's request profiles (" + strings.Join(requestKindsOn(l, false), ", ") + ")"
		case x.Addr == "*" && x.Port == tls && contains(l.Kinds(), TrafficHTTP2):
			sl.Load = "http2"
		case x.IPv6() && (x.Port == plain || x.Port == tls && contains(l.Kinds(), TrafficHTTP2)):
			sl.Load = fmt.Sprintf("port %d is loaded through its IPv4 listener (127.0.0.1), not this IPv6 socket", x.Port)
		default:
			sl.Load = "not loaded by the harness's own profiles (a --targets file can)"
		}
		rs.Listeners = append(rs.Listeners, sl)
	}
	return rs
}

func requestKindsOn(l Load, tls bool) []string {
	var out []string
	for _, k := range l.Kinds() {
		if (k == TrafficHTTP2) == tls {
			out = append(out, k)
		}
	}
	return out
}
