package scenarios

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/backend"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
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

// plan is how the load runs each kind: --rate split evenly between the
// request kinds (the total stays --rate, which is what the premises
// check), the connection kinds at their fixed counts.
func (l Load) plan() []record.TrafficPlan {
	var reqKinds int
	kinds := l.Kinds()
	for _, k := range kinds {
		if tk, _ := trafficKind(k); tk.Requests {
			reqKinds++
		}
	}
	var out []record.TrafficPlan
	first := true
	for _, k := range kinds {
		tk, _ := trafficKind(k)
		tp := record.TrafficPlan{Kind: k, Profile: k}
		switch {
		case tk.Requests:
			tp.Rate = l.Rate / reqKinds
			if first {
				tp.Rate += l.Rate % reqKinds
				first = false
			}
		case k == TrafficWebSocket:
			tp.Connections = WebSocketCount
		case k == TrafficUpload:
			tp.Connections, tp.Bytes = UploadCount, UploadBytes
		}
		out = append(out, tp)
	}
	return out
}

// loadTargets are the base URLs the load uses on its path.
type loadTargets struct {
	http, https string
	// addr is where nginx listens for a port on this path (for --targets).
	addr func(port int) (string, bool)
}

// profiles builds the request profiles and the options of the connection
// kinds for the targets; cert, when set, is the node's certificate, which
// the HTTP/2 client then verifies.
func (l Load) profiles(tg loadTargets, cert *x509.Certificate) ([]loadgen.Profile, []loadgen.Option, error) {
	var profiles []loadgen.Profile
	var opts []loadgen.Option
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
			return nil, nil, err
		}
	}
	for _, tp := range l.plan() {
		switch tp.Kind {
		case TrafficHTTP1, TrafficHTTP1KeepAlive:
			p := loadgen.Profile{Name: tp.Profile, Rate: tp.Rate, Method: l.Method, KeepAlive: tp.Kind == TrafficHTTP1KeepAlive}
			if l.Method == "POST" {
				p.Path, p.Body = "/post", []byte(strings.Repeat("x", 512))
			}
			if l.Targets != nil {
				p = l.Targets.targetsProfile(p, route)
			}
			profiles = append(profiles, p)
		case TrafficHTTP2:
			if l.Targets != nil {
				profiles = append(profiles, l.Targets.targetsProfile(loadgen.Profile{Name: tp.Profile, Rate: tp.Rate, HTTP2: true}, route))
				continue
			}
			if tg.https == "" {
				return nil, nil, fmt.Errorf("--traffic http2: port %d is not published on this load path", nginx.TLSPort)
			}
			profiles = append(profiles, loadgen.Profile{Name: tp.Profile, Rate: tp.Rate, HTTP2: true, Target: tg.https, TLS: tlsOpts})
		case TrafficProxy:
			profiles = append(profiles, loadgen.Profile{Name: tp.Profile, Rate: tp.Rate, Path: ProxyPath, KeepAlive: true})
		case TrafficWebSocket:
			opts = append(opts, loadgen.WithWebSockets(loadgen.WebSockets{Name: tp.Profile, Count: tp.Connections, Interval: WebSocketInterval}))
		case TrafficUpload:
			opts = append(opts, loadgen.WithUploads(loadgen.Uploads{Name: tp.Profile, Count: tp.Connections, Bytes: tp.Bytes, BytesPerSec: UploadRate}))
		}
	}
	return profiles, opts, nil
}

// startBackend starts the upstream of the proxy, WebSocket and upload
// traffic inside node's network namespace, on BackendAddr; nil when the
// traffic needs none.
func (l Load) startBackend(ctx context.Context, node *nginx.Node) (*backend.Server, error) {
	if !l.needsBackend() {
		return nil, nil
	}
	if err := loadgen.CheckNetns(node.NetnsPath()); err != nil {
		return nil, fmt.Errorf("the %s traffic needs its backend inside the container's network namespace (root or CAP_SYS_ADMIN): %w",
			strings.Join(backendKinds(l.Kinds()), ", "), err)
	}
	return backend.Start(ctx, backend.Config{Netns: node.NetnsPath(), Addr: BackendAddr, Name: "nuh"})
}

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
func (l Load) checkTraffic(ctx context.Context, n *nginx.Node) error {
	srv, err := l.startBackend(ctx, n)
	if err != nil {
		return err
	}
	if srv != nil {
		defer srv.Close()
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
	get := func(client *http.Client, method, url string, body io.Reader) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, url, body)
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, b, err
	}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	switch kind {
	case TrafficHTTP2:
		if n.TLSURL() == "" {
			return fmt.Errorf("port %d is not published", nginx.TLSPort)
		}
		tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}}
		defer tr.CloseIdleConnections()
		resp, _, err := get(&http.Client{Transport: tr}, "GET", n.TLSURL()+"/", nil)
		if err != nil {
			return fmt.Errorf("no HTTP/2 over TLS (ALPN h2) on port %d: %v", nginx.TLSPort, oneLine(err.Error()))
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET / over HTTP/2 on port %d answered %s, the load needs 200", nginx.TLSPort, resp.Status)
		}
	case TrafficProxy:
		resp, body, err := get(plain, "GET", n.URL()+ProxyPath, nil)
		if err != nil {
			return fmt.Errorf("GET %s: %v", ProxyPath, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get(backend.HeaderBackend) == "" {
			return fmt.Errorf("GET %s answered %s without the backend's answer: the config must proxy /backend/ to %s", ProxyPath, resp.Status, BackendAddr)
		}
		_ = body
	case TrafficUpload:
		resp, _, err := get(plain, "POST", n.URL()+loadgen.DefaultUploadPath, strings.NewReader(strings.Repeat("u", 65536)))
		if err != nil {
			return fmt.Errorf("POST %s: %v", loadgen.DefaultUploadPath, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get(backend.HeaderUploadBytes) != "65536" {
			return fmt.Errorf("POST %s answered %s without the backend's count of the body: the config must proxy /upload to %s", loadgen.DefaultUploadPath, resp.Status, BackendAddr)
		}
	case TrafficWebSocket:
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
