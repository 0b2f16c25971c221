package scenarios

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
)

// Traffic kinds (--traffic KIND). Each runs under a profile of its own name,
// so every record on disk says which kind it belongs to.
const (
	TrafficHTTP1          = "http1"           // GET (or --method POST), a new connection per request
	TrafficHTTP1KeepAlive = "http1-keepalive" // the same, connections reused
	TrafficHTTP2          = "http2"           // GET streams of HTTP/2 over TLS (ALPN h2) on TLSPort
	TrafficWebSocket      = "websocket"       // long-lived WebSockets through nginx to the backend, echoing numbered messages
	TrafficProxy          = "proxy"           // GET through nginx to the backend, keep-alive on both sides
	TrafficUpload         = "upload"          // large bodies sent slowly through nginx to the backend
)

// TrafficKind describes one kind for --help, run --list and the checks.
type TrafficKind struct {
	Name string
	What string
	// Requests: the kind is a constant-rate stream of requests (it takes a
	// share of --rate); the others are a fixed number of connections.
	Requests bool
	// Backend: nginx proxies it to loadgen/backend, which the harness
	// starts in the container's network namespace on BackendAddr.
	Backend bool
}

// BackendAddr is where the default nginx.conf's upstream is: a loopback
// address of the container's own network namespace.
const BackendAddr = "127.0.0.2:9000"

// Defaults of the connection-count kinds (README: "Traffic kinds").
const (
	WebSocketCount    = 16
	WebSocketInterval = 200 * time.Millisecond
	UploadCount       = 2
	UploadBytes       = 4 << 20
	UploadRate        = 1 << 20 // 4 s per upload: some are always on the wire
	// ProxyPath asks the backend to hold each answer 20 ms, so that requests
	// are in flight upstream when a signal lands.
	ProxyPath = "/backend/page?delay=20ms"
)

// TrafficKinds lists every kind, in the order of the report's rows.
func TrafficKinds() []TrafficKind {
	return []TrafficKind{
		{TrafficHTTP1, "GET (POST with --method POST), a new connection per request (the default)", true, false},
		{TrafficHTTP1KeepAlive, "the same with keep-alive connections (--keepalive=true)", true, false},
		{TrafficHTTP2, fmt.Sprintf("GET streams of HTTP/2 over TLS (ALPN h2) on port %d, one session cache (resumption counted)", nginx.TLSPort), true, false},
		{TrafficWebSocket, fmt.Sprintf("%d WebSockets on /ws through nginx to the backend, a numbered message every %s each, echoed", WebSocketCount, WebSocketInterval), false, true},
		{TrafficProxy, "GET /backend/ through nginx to the backend (held 20 ms), keep-alive client and upstream", true, true},
		{TrafficUpload, fmt.Sprintf("%d uploads at a time of %d MiB at %d MiB/s through nginx to the backend (/upload, unbuffered)", UploadCount, UploadBytes>>20, UploadRate>>20), false, true},
	}
}

func trafficKind(name string) (TrafficKind, bool) {
	for _, k := range TrafficKinds() {
		if k.Name == name {
			return k, true
		}
	}
	return TrafficKind{}, false
}

// TrafficNames lists the kinds' names.
func TrafficNames() []string {
	var out []string
	for _, k := range TrafficKinds() {
		out = append(out, k.Name)
	}
	return out
}

// ParseTraffic checks the kinds asked for (in the order given, each once).
func ParseTraffic(names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if _, ok := trafficKind(n); !ok {
			return nil, fmt.Errorf("unknown traffic kind %q (known: %s)", n, strings.Join(TrafficNames(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// needsBackend tells whether any kind goes through nginx to the backend.
func (l Load) needsBackend() bool {
	for _, k := range l.Kinds() {
		if tk, _ := trafficKind(k); tk.Backend {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// startBackend starts the upstream of the proxy, WebSocket and upload
// traffic inside node's network namespace, on BackendAddr — from this
// process when it may enter it, else in a load agent — and returns what
// stops it; nil when the traffic needs none.
func (p Params) startBackend(ctx context.Context, node *nginx.Node) (stop func(), err error) {
	l := p.Load
	if !l.needsBackend() {
		return nil, nil
	}
	cfg := backend.Config{Addr: BackendAddr, Name: "nuh"}
	switch path := p.loadPath(node); path {
	case LoadPathNetns:
		cfg.Netns = node.NetnsPath()
		srv, err := backend.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return func() { srv.Close() }, nil
	case LoadPathAgent:
		c := node.Agent()
		if c == nil {
			return nil, errNoAgent
		}
		if err := c.StartBackends([]backend.Config{cfg}, checkBound); err != nil {
			return nil, err
		}
		return func() { c.StopBackends() }, nil
	default:
		return nil, fmt.Errorf("the %s traffic needs its backend inside the container's network namespace: run as root, or with a static build of the tool for a load agent (--load-path %s or agent): %v",
			strings.Join(backendKinds(l.Kinds()), ", "), path, node.NetnsReachable())
	}
}

// checkBound bounds the stand-ins the checks before a run start.
const checkBound = 5 * time.Minute

// errNoAgent is the agent path asked of a node without a load agent: the
// tool is not a static build (nodeOptions gives a node its agent).
var errNoAgent = errors.New("--load-path agent: no static build of the tool to run as the load agent (build it with CGO_ENABLED=0, as `make build` does)")

func backendKinds(kinds []string) []string {
	var out []string
	for _, k := range kinds {
		if tk, _ := trafficKind(k); tk.Backend {
			out = append(out, k)
		}
	}
	return out
}

// checkTraffic asks nginx in n (with the backend running when the
// traffic needs it) for what each kind will ask, so that a config that
// cannot serve a kind is named before any scenario starts.
func (p Params) checkTraffic(ctx context.Context, n *nginx.Node) error {
	l := p.Load
	stop, err := p.startBackend(ctx, n)
	if err != nil {
		return err
	}
	if stop != nil {
		defer stop()
	}
	for _, k := range l.Kinds() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := checkKind(cctx, k, n)
		cancel()
		if err != nil {
			return fmt.Errorf("--traffic %s: %w", k, err)
		}
	}
	// The targets too, while the backend runs: a target may be a proxied
	// location.
	if err := l.checkTargets(ctx, n); err != nil {
		return targetsError{err}
	}
	return nil
}

func checkKind(ctx context.Context, kind string, n *nginx.Node) error {
	switch kind {
	case TrafficHTTP2:
		if n.TLSURL() == "" {
			return fmt.Errorf("port %d is not published", nginx.TLSPort)
		}
		a, err := n.Ask(ctx, nginx.Ask{Method: "GET", Path: "/", HTTP2: true})
		if err != nil {
			return fmt.Errorf("no HTTP/2 over TLS (ALPN h2) on port %d: %v", nginx.TLSPort, oneLine(err.Error()))
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("GET / over HTTP/2 on port %d answered %s, the load needs 200", nginx.TLSPort, a.StatusText)
		}
	case TrafficProxy:
		a, err := n.Ask(ctx, nginx.Ask{Method: "GET", Path: ProxyPath})
		if err != nil {
			return fmt.Errorf("GET %s: %v", ProxyPath, err)
		}
		if a.Status != http.StatusOK || a.Header.Get(backend.HeaderBackend) == "" {
			return fmt.Errorf("GET %s answered %s without the backend's answer: the config must proxy /backend/ to %s", ProxyPath, a.StatusText, BackendAddr)
		}
	case TrafficUpload:
		a, err := n.Ask(ctx, nginx.Ask{Method: "POST", Path: loadgen.DefaultUploadPath, Body: []byte(strings.Repeat("u", 65536))})
		if err != nil {
			return fmt.Errorf("POST %s: %v", loadgen.DefaultUploadPath, err)
		}
		if a.Status != http.StatusOK || a.Header.Get(backend.HeaderUploadBytes) != "65536" {
			return fmt.Errorf("POST %s answered %s without the backend's count of the body: the config must proxy /upload to %s", loadgen.DefaultUploadPath, a.StatusText, BackendAddr)
		}
	case TrafficWebSocket:
		if c := n.Agent(); c != nil {
			a, err := c.Get(agent.Get{Method: "GET", URL: n.InnerURL() + loadgen.DefaultWebSocketPath, WebSocket: true, Body: []byte("0 check")})
			if err != nil {
				return fmt.Errorf("no WebSocket on %s: the config must proxy the upgrade to %s: %v", loadgen.DefaultWebSocketPath, BackendAddr, oneLine(err.Error()))
			}
			if string(a.Body) != "0 check" {
				return fmt.Errorf("WebSocket on %s: no echo (got %q)", loadgen.DefaultWebSocketPath, a.Body)
			}
			return nil
		}
		plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		url := "ws" + strings.TrimPrefix(n.URL(), "http") + loadgen.DefaultWebSocketPath
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: plain})
		if err != nil {
			status := ""
			if resp != nil {
				status = " (answered " + resp.Status + ")"
			}
			return fmt.Errorf("no WebSocket on %s%s: the config must proxy the upgrade to %s: %v", loadgen.DefaultWebSocketPath, status, BackendAddr, oneLine(err.Error()))
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("0 check")); err != nil {
			return fmt.Errorf("WebSocket on %s: write: %v", loadgen.DefaultWebSocketPath, err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "0 check" {
			return fmt.Errorf("WebSocket on %s: no echo: %v", loadgen.DefaultWebSocketPath, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}
