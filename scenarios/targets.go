package scenarios

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/net/http2"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Targets is a user's targets file (--targets): the requests the request
// kinds (http1, http1-keepalive, http2) send, round-robin, instead of the
// harness's own. The long downloads, the other kinds and the harness's
// checks keep their own paths on the harness's config.
type Targets struct {
	File   string
	Format string // loadgen.TargetsHTTP or loadgen.TargetsJSON, as read
	List   []loadgen.Target
	// CA, when set (--ca), verifies every https target's certificate for
	// its URL's host name; nil: certificates are not verified.
	CA     *x509.CertPool
	CAFile string
}

// LoadTargets reads a targets file (format "" : told from its first line)
// and the CA file, if any, before anything starts.
func LoadTargets(file, format, caFile string) (*Targets, error) {
	switch format {
	case "", loadgen.TargetsHTTP, loadgen.TargetsJSON:
	default:
		return nil, fmt.Errorf("--targets-format: got %q, want %s or %s", format, loadgen.TargetsHTTP, loadgen.TargetsJSON)
	}
	list, err := loadgen.ReadTargets(file, format)
	if err != nil {
		return nil, fmt.Errorf("--targets %w", err)
	}
	t := &Targets{File: file, Format: format, List: list, CAFile: caFile}
	if t.Format == "" {
		t.Format = loadgen.TargetsHTTP
		if data, err := os.ReadFile(file); err == nil && firstSignificant(data) == '{' {
			t.Format = loadgen.TargetsJSON
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		t.CA = x509.NewCertPool()
		if !t.CA.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
		}
	}
	return t, nil
}

func firstSignificant(data []byte) byte {
	for _, l := range bytes.Split(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return l[0]
		}
	}
	return 0
}

// https are the indexes of the https targets.
func (t *Targets) https() []int {
	var idx []int
	for i, tg := range t.List {
		if tg.HTTPS() {
			idx = append(idx, i)
		}
	}
	return idx
}

// validateTargets checks what can be checked before a container starts.
func (l Load) validateTargets() error {
	if l.Targets == nil {
		return nil
	}
	if contains(l.Kinds(), TrafficHTTP2) && len(l.Targets.https()) == 0 {
		return fmt.Errorf("--traffic http2 sends the https targets as HTTP/2 streams, and %s has none", l.Targets.File)
	}
	return nil
}

// route maps each port the targets name to where nginx listens for it on
// this load path (addr: the node's HostAddr, or its InnerAddr for a port
// it listens on). A port nginx does not listen on is bad input.
func (t *Targets) route(addr func(port int) (string, bool)) (loadgen.Route, error) {
	r := loadgen.Route{}
	for _, tg := range t.List {
		port := tg.Port()
		if _, done := r[port]; done {
			continue
		}
		a, ok := addr(port)
		if !ok {
			return nil, fmt.Errorf("--targets %s:%d: target URL %s port %d: nginx does not listen there", t.File, tg.Line, tg.URL, port)
		}
		r[port] = a
	}
	return r, nil
}

// innerAddr is where nginx listens for port inside the node's network
// namespace: InnerAddr, for a port the node listens on.
func innerAddr(n *nginx.Node) func(int) (string, bool) {
	return func(port int) (string, bool) {
		if _, ok := n.HostAddr(port); !ok {
			return "", false
		}
		return n.InnerAddr(port), true
	}
}

// targetsProfile turns a request kind's profile into one that sends the
// targets (all of them; https ones only for HTTP/2) through route.
func (t *Targets) targetsProfile(p loadgen.Profile, route loadgen.Route) loadgen.Profile {
	p.Method, p.Path, p.Body, p.Target = "", "", nil, ""
	p.Route = route
	p.TLS = loadgen.TLSOptions{RootCAs: t.CA}
	if p.HTTP2 {
		for _, i := range t.https() {
			p.Targets = append(p.Targets, t.List[i])
			p.TargetIndex = append(p.TargetIndex, i)
		}
		return p
	}
	p.Targets = t.List
	return p
}

// describeTargets records the targets in meta, with the request kinds of
// plan that send them, for the report to name them.
func (l Load) describeTargets(meta *record.Meta, plan trafficPlan) {
	if l.Targets == nil {
		return
	}
	t := l.Targets
	var reqKinds []string
	for _, kp := range plan {
		if tk, _ := trafficKind(kp.Kind); tk.Requests && kp.Kind != TrafficProxy {
			reqKinds = append(reqKinds, kp.Kind)
		}
	}
	for i, tg := range t.List {
		plan := record.TargetPlan{Index: i, Method: tg.Method, URL: tg.URL, Line: tg.Line, BodyBytes: len(tg.Body), Profiles: []string{}}
		for _, k := range reqKinds {
			if k != TrafficHTTP2 || tg.HTTPS() {
				plan.Profiles = append(plan.Profiles, k)
			}
		}
		meta.Targets = append(meta.Targets, plan)
	}
	verify := "not verified"
	if t.CAFile != "" {
		verify = "verified against " + t.CAFile + " for each URL's host name"
	}
	meta.Notes = append(meta.Notes, fmt.Sprintf("targets: %s (%d, %s format), sent round-robin by the request kinds to nginx on the node's loopback, by each URL's port; Host and TLS server name are the URL's host; certificates %s",
		t.File, len(t.List), t.Format, verify))
}

// targetsError is a target nginx cannot serve, named as such (not as the
// config's fault).
type targetsError struct{ error }

// maxTargetChecks bounds the targets CheckConfig sends one by one.
const maxTargetChecks = 200

// checkTargets asks nginx in n for each target once (the first
// maxTargetChecks of them), as the load will — routed to the node, Host
// and SNI the URL's, over HTTP/2 too for the https ones when the http2
// kind runs — so that a target nginx does not serve (a port it does not
// listen on, an answer other than 2xx, a TLS name the CA does not vouch
// for) is bad input before any scenario starts.
func (l Load) checkTargets(ctx context.Context, n *nginx.Node) error {
	t := l.Targets
	if t == nil {
		return nil
	}
	route, err := t.route(n.HostAddr)
	if err != nil {
		return err
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var p int
		fmt.Sscan(port, &p)
		to, ok := route[p]
		if !ok {
			return nil, fmt.Errorf("no route for port %s", port)
		}
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, to)
	}
	tlsConf := &tls.Config{RootCAs: t.CA, InsecureSkipVerify: t.CA == nil, NextProtos: []string{"http/1.1"}}
	h1 := &http.Transport{Proxy: nil, DialContext: dial, TLSClientConfig: tlsConf, DisableKeepAlives: true, ForceAttemptHTTP2: false}
	defer h1.CloseIdleConnections()
	h2 := &http2.Transport{DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}, TLSClientConfig: &tls.Config{RootCAs: t.CA, InsecureSkipVerify: t.CA == nil, NextProtos: []string{"h2"}}}
	defer h2.CloseIdleConnections()
	h2Kind := contains(l.Kinds(), TrafficHTTP2)
	for i, tg := range t.List {
		if i == maxTargetChecks {
			break
		}
		rts := []struct {
			name string
			rt   http.RoundTripper
		}{{"HTTP/1.1", h1}}
		if h2Kind && tg.HTTPS() {
			rts = append(rts, struct {
				name string
				rt   http.RoundTripper
			}{"HTTP/2", h2})
		}
		for _, rt := range rts {
			if err := checkTarget(ctx, rt.rt, tg); err != nil {
				return fmt.Errorf("--targets %s:%d: %s %s over %s: %w", t.File, tg.Line, tg.Method, tg.URL, rt.name, err)
			}
		}
	}
	return nil
}

// checkTarget sends one target as the load's attacker builds it (vegeta's
// Target.Request: a Host header sets the request's host).
func checkTarget(ctx context.Context, rt http.RoundTripper, tg loadgen.Target) error {
	vt := vegeta.Target{Method: tg.Method, URL: tg.URL, Header: tg.Header, Body: tg.Body}
	req, err := vt.Request()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := rt.RoundTrip(req.WithContext(cctx))
	if err != nil {
		return errors.New(oneLine(err.Error()))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s, and the load counts anything but a 2xx as a failed request", resp.Status)
	}
	return nil
}
