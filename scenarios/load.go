package scenarios

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Load is the traffic every scenario of a run gets.
type Load struct {
	Rate      int
	Method    string // GET or POST
	KeepAlive bool
	Slow      int // long downloads in flight across the transitions
	// Traffic are the traffic kinds (--traffic; see Kinds for the default).
	Traffic []string
	// Targets, when set (--targets), are the requests of the request kinds.
	Targets *Targets
}

// DefaultLoad is the default suite's traffic; README says why.
var DefaultLoad = Load{Rate: 500, Method: "GET", KeepAlive: false, Slow: 4}

// Validate checks the load parameters before anything starts.
func (l Load) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("--rate: got %d, want at least 1 request per second", l.Rate)
	case l.Rate > 20000:
		return fmt.Errorf("--rate: got %d, want at most 20000 (above it this machine measures itself, not nginx)", l.Rate)
	case l.Method != "GET" && l.Method != "POST":
		return fmt.Errorf("--method: got %q, want GET or POST", l.Method)
	case l.Slow < 0 || l.Slow > 64:
		return fmt.Errorf("--slow: got %d, want 0 to 64 long downloads", l.Slow)
	}
	if _, err := ParseTraffic(l.Traffic); err != nil {
		return err
	}
	for _, kp := range l.plan() {
		if tk, _ := trafficKind(kp.Kind); tk.Requests && kp.Rate < 1 {
			return fmt.Errorf("rate %d: the request kinds share it, and %s gets none: give at least 1 per kind", l.Rate, kp.Kind)
		}
	}
	return l.validateTargets()
}

// Record is the load's settings as the records keep them: the load of
// meta.json, compare.json and matrix.json (and so of report.json). A
// trial's meta.json adds the kinds it ran (newMeta).
func (l Load) Record() record.Load {
	return record.Load{Rate: l.Rate, Method: l.Method, KeepAlive: l.KeepAlive, Slow: l.Slow}
}

// Kinds is the traffic the load runs: the kinds asked for; without any,
// the one --keepalive names (http1 or http1-keepalive). --keepalive=true
// with kinds adds http1-keepalive. When no kind asked for is a stream of
// requests (only websocket and upload), the default request kind is added:
// the premises of a verdict (the load covered the run at its rate) are
// measured on requests.
func (l Load) Kinds() []string {
	def := TrafficHTTP1
	if l.KeepAlive {
		def = TrafficHTTP1KeepAlive
	}
	if len(l.Traffic) == 0 {
		return []string{def}
	}
	kinds := append([]string(nil), l.Traffic...)
	requests := false
	for _, k := range kinds {
		if tk, _ := trafficKind(k); tk.Requests {
			requests = true
		}
	}
	if l.KeepAlive && !contains(kinds, TrafficHTTP1KeepAlive) {
		kinds = append(kinds, TrafficHTTP1KeepAlive)
	} else if !requests {
		kinds = append([]string{def}, kinds...)
	}
	return kinds
}

// trafficPlan is how the load runs each traffic kind, in the order of
// Kinds. Run and RunProcedure compute it once for their trial
// (Load.plan): it makes the profiles the load runs (Load.profiles) and is
// recorded in meta.json (record).
type trafficPlan []kindPlan

// kindPlan is how the load runs one kind, under a profile of the kind's
// name: a share of the rate, or a number of connections.
type kindPlan struct {
	Kind        string
	Rate        int   // requests per second (a request kind)
	Connections int   // WebSockets, or uploads at once
	Bytes       int64 // per upload
}

// plan is how the load runs each kind: --rate split evenly between the
// request kinds (the total stays --rate, which is what the premises
// check), the connection kinds at their fixed counts.
func (l Load) plan() trafficPlan {
	var reqKinds int
	kinds := l.Kinds()
	for _, k := range kinds {
		if tk, _ := trafficKind(k); tk.Requests {
			reqKinds++
		}
	}
	var out trafficPlan
	first := true
	for _, k := range kinds {
		tk, _ := trafficKind(k)
		kp := kindPlan{Kind: k}
		switch {
		case tk.Requests:
			kp.Rate = l.Rate / reqKinds
			if first {
				kp.Rate += l.Rate % reqKinds
				first = false
			}
		case k == TrafficWebSocket:
			kp.Connections = WebSocketCount
		case k == TrafficUpload:
			kp.Connections, kp.Bytes = UploadCount, UploadBytes
		}
		out = append(out, kp)
	}
	return out
}

// record is the plan as meta.json keeps it: each kind with the profile its
// records carry.
func (tp trafficPlan) record() []record.TrafficPlan {
	var out []record.TrafficPlan
	for _, kp := range tp {
		out = append(out, record.TrafficPlan{Kind: kp.Kind, Profile: kp.Kind, Rate: kp.Rate, Connections: kp.Connections, Bytes: kp.Bytes})
	}
	return out
}

// loadTargets are the base URLs the load uses on its path.
type loadTargets struct {
	http, https string
	// addr is where nginx listens for a port on this path (for --targets).
	addr func(port int) (string, bool)
}

// connKinds are the load's connection kinds beside its request profiles.
type connKinds struct {
	ws *loadgen.WebSockets
	up *loadgen.Uploads
}

// options are the loadgen options that run them.
func (c connKinds) options() []loadgen.Option {
	var opts []loadgen.Option
	if c.ws != nil {
		opts = append(opts, loadgen.WithWebSockets(*c.ws))
	}
	if c.up != nil {
		opts = append(opts, loadgen.WithUploads(*c.up))
	}
	return opts
}

// profiles builds, by plan, the request profiles and the connection kinds
// for the targets; cert, when set, is the node's certificate, which the
// HTTP/2 client then verifies.
func (l Load) profiles(plan trafficPlan, tg loadTargets, cert *x509.Certificate) ([]loadgen.Profile, connKinds, error) {
	var profiles []loadgen.Profile
	var opts connKinds
	var tlsOpts loadgen.TLSOptions
	if cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		tlsOpts = loadgen.TLSOptions{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	var route loadgen.Route
	if l.Targets != nil {
		var err error
		if route, err = l.Targets.route(tg.addr); err != nil {
			return nil, opts, err
		}
	}
	for _, kp := range plan {
		switch kp.Kind {
		case TrafficHTTP1, TrafficHTTP1KeepAlive:
			p := loadgen.Profile{Name: kp.Kind, Rate: kp.Rate, Method: l.Method, KeepAlive: kp.Kind == TrafficHTTP1KeepAlive}
			if l.Method == "POST" {
				p.Path, p.Body = "/post", []byte(strings.Repeat("x", 512))
			}
			if l.Targets != nil {
				p = l.Targets.targetsProfile(p, route)
			}
			profiles = append(profiles, p)
		case TrafficHTTP2:
			if l.Targets != nil {
				profiles = append(profiles, l.Targets.targetsProfile(loadgen.Profile{Name: kp.Kind, Rate: kp.Rate, HTTP2: true}, route))
				continue
			}
			if tg.https == "" {
				return nil, opts, fmt.Errorf("--traffic http2: port %d is not published on this load path", nginx.TLSPort)
			}
			profiles = append(profiles, loadgen.Profile{Name: kp.Kind, Rate: kp.Rate, HTTP2: true, Target: tg.https, TLS: tlsOpts})
		case TrafficProxy:
			profiles = append(profiles, loadgen.Profile{Name: kp.Kind, Rate: kp.Rate, Path: ProxyPath, KeepAlive: true})
		case TrafficWebSocket:
			opts.ws = &loadgen.WebSockets{Name: kp.Kind, Count: kp.Connections, Interval: WebSocketInterval}
		case TrafficUpload:
			opts.up = &loadgen.Uploads{Name: kp.Kind, Count: kp.Connections, Bytes: kp.Bytes, BytesPerSec: UploadRate}
		}
	}
	return profiles, opts, nil
}

// Load paths (Params.LoadPath).
const (
	LoadPathAuto  = "auto"
	LoadPathNetns = "netns"
	LoadPathAgent = "agent"
	LoadPathHost  = "host"
)

// LoadPaths are the values --load-path takes.
var LoadPaths = []string{LoadPathAuto, LoadPathNetns, LoadPathAgent, LoadPathHost}

// loadPath is the path the load takes to nginx in node: the one asked, or
// for auto the node's load agent when it has one (nodeOptions gives it one
// when this process cannot enter the container's namespace, or sees
// another pid there than the engine's, and the tool is a static build),
// else the namespace, else the host's published ports.
func (p Params) loadPath(node *nginx.Node) string {
	if p.LoadPath != "" && p.LoadPath != LoadPathAuto {
		return p.LoadPath
	}
	if node.Agent() != nil {
		return LoadPathAgent
	}
	if node.NetnsReachable() == nil {
		return LoadPathNetns
	}
	return LoadPathHost
}

// agentBinary is the static build of the tool a load agent runs ("" when
// there is none: the heartbeat's binary, p.Heartbeat).
func (p Params) agentBinary() string {
	if p.Heartbeat == "" || harness.StaticBinary(p.Heartbeat) != nil {
		return ""
	}
	return p.Heartbeat
}

// innerTarget names where a load inside the container's namespace goes.
func innerTarget(node *nginx.Node) string {
	tlsNote := ""
	if node.TLSURL() != "" {
		tlsNote = " (and " + strings.TrimPrefix(node.InnerTLSURL(), "https://") + " for TLS)"
	}
	return strings.TrimPrefix(node.InnerURL(), "http://") + tlsNote + ": straight to nginx, no proxy between"
}

// loadControl is what a run drives its load through: a *loadgen.Load of
// its own, or a load agent's client.
type loadControl interface {
	Snapshot() loadgen.Summary
	StopAttack()
	StartDownloads(n int, bytesPerSec int64) error
	StartTricklers(n int) error
	ReleaseDownloads() error
	WaitDownloads(ctx context.Context) error
	Close() (loadgen.Summary, error)
}

// startLoad starts the run's load on node — the profiles of plan, and long
// downloads sized to last span, held at their last holdTail bytes until
// released (0: never held) — by path (through ag on the agent path),
// and records in meta (rewritten on disk) which path it took.
func (p Params) startLoad(ctx context.Context, node *nginx.Node, plan trafficPlan, clock loadgen.Clock, dir string,
	span, hardStop time.Duration, holdTail int64, meta *record.Meta, path string, ag *agent.Client) (loadControl, loadgen.Slow, error) {
	slow := loadgen.Slow{Count: p.Load.Slow, BytesPerSec: int64(float64(loadgen.DefaultSlowBytes) / span.Seconds()), HoldTail: holdTail}
	var load loadControl
	var err error
	switch path {
	case LoadPathNetns:
		profiles, kinds, perr := p.Load.profiles(plan, loadTargets{http: node.InnerURL(), https: node.InnerTLSURL(), addr: innerAddr(node)}, node.Certificate())
		if perr != nil {
			return nil, slow, perr
		}
		load, err = loadgen.RunWithOptions(ctx, node.InnerURL(), clock, dir, profiles, slow, append(kinds.options(), loadgen.InNetns(node.NetnsPath()))...)
		meta.LoadPath = "inside the container's network namespace, to " + innerTarget(node)
	case LoadPathAgent:
		if ag == nil {
			return nil, slow, errNoAgent
		}
		profiles, kinds, perr := p.Load.profiles(plan, loadTargets{http: node.InnerURL(), https: node.InnerTLSURL(), addr: innerAddr(node)}, node.Certificate())
		if perr != nil {
			return nil, slow, perr
		}
		st := agent.Start{Target: node.InnerURL(), Profiles: agent.WireProfiles(profiles), Slow: slow,
			WebSockets: kinds.ws, Uploads: kinds.up, HardStopMs: hardStop.Milliseconds()}
		if c := node.Certificate(); c != nil {
			st.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		if err = ag.Start(st, clock); err == nil {
			load = ag
		}
		meta.LoadPath = fmt.Sprintf("from a load agent (the tool's own binary in a helper container sharing nginx's network namespace, clock offset %s ± %s), to %s; its control probe on a unix socket",
			ag.Offset.Round(time.Microsecond), (ag.RoundTrip / 2).Round(time.Microsecond), innerTarget(node))
	case LoadPathHost:
		profiles, kinds, perr := p.Load.profiles(plan, loadTargets{http: node.URL(), https: node.TLSURL(), addr: node.HostAddr}, node.Certificate())
		if perr != nil {
			return nil, slow, perr
		}
		load, err = loadgen.RunWithOptions(ctx, node.URL(), clock, dir, profiles, slow, kinds.options()...)
		meta.LoadPath = "from the host to " + strings.TrimPrefix(node.URL(), "http://") +
			", through Docker's port proxy, to nginx on port " + strings.TrimPrefix(node.InnerURL(), "http://127.0.0.1:") +
			" in the container (a reset may reach the client as eof)"
		if contains(p.Load.Kinds(), TrafficHTTP2) {
			meta.LoadPath += "; HTTP/2 to " + strings.TrimPrefix(node.TLSURL(), "https://") + ", port " +
				strings.TrimPrefix(node.InnerTLSURL(), "https://127.0.0.1:") + " in the container"
		}
	default:
		return nil, slow, fmt.Errorf("load path %q: want %s", p.LoadPath, strings.Join(LoadPaths, ", "))
	}
	if err != nil {
		return nil, slow, err
	}
	if p.Site != nil {
		meta.Site = p.Site.siteMeta(node, p.Load)
	}
	serverLog := node.Witness()
	meta.ServerLog = &serverLog
	if err := writeJSON(filepath.Join(dir, record.MetaFile), meta); err != nil {
		load.Close()
		return nil, slow, err
	}
	return load, slow, nil
}
