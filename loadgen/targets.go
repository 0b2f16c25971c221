package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/net/http/httpguts"
)

// Bounds of a targets file: they are all read up front, before any
// container starts, and held in memory for the whole run.
const (
	MaxTargets       = 10000
	MaxTargetBody    = 1 << 20  // bytes of one body (an @file or a JSON body)
	MaxTargetsBodies = 64 << 20 // bytes of every body together
	maxTargetLine    = 2 << 20  // a JSON line carries its body in base64
)

// Targets formats (vegeta's -format names).
const (
	TargetsHTTP = vegeta.HTTPTargetFormat // "METHOD URL" lines, header lines, an optional @body line
	TargetsJSON = vegeta.JSONTargetFormat // one {"method","url","body","header"} object a line
)

// Target is one request of a user's targets file. Its URL may name any host
// and port: the load never dials that host, it dials the address the
// profile's Route gives for the URL's port (always 127.0.0.1) and keeps the
// URL's host as the Host header and, for https, as the TLS server name.
type Target struct {
	Method string      `json:"method"`
	URL    string      `json:"url"` // as written, without any fragment
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"-"`
	Line   int         `json:"line"` // where it starts in its file (1-based)
}

// Name is how reports name the target: METHOD URL.
func (t Target) Name() string { return t.Method + " " + t.URL }

// HTTPS tells whether the target speaks TLS.
func (t Target) HTTPS() bool { return strings.HasPrefix(t.URL, "https://") }

// Port is the URL's port (80 or 443 when it names none).
func (t Target) Port() int {
	u, err := url.Parse(t.URL)
	if err != nil {
		return 0
	}
	return urlPort(u)
}

func urlPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// Route maps the port of a target URL to the 127.0.0.1 address where nginx
// listens for it (a port published on the host's loopback, or the port
// itself inside the container's network namespace).
type Route map[int]string

// check refuses any address that is not 127.0.0.1:PORT: the load goes to the
// node's loopback and nowhere else, whatever host a target names.
func (r Route) check() error {
	for port, addr := range r {
		if err := checkRouteAddr(addr); err != nil {
			return fmt.Errorf("route for port %d: %w", port, err)
		}
	}
	return nil
}

func checkRouteAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host != "127.0.0.1" {
		return fmt.Errorf("address %q: refusing anything but 127.0.0.1", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: bad port", addr)
	}
	return nil
}

// resolve is the address to dial for addr (host:port as net/http asks for
// it): the route of its port. The host is never looked up.
func (r Route) resolve(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("loadgen: dial %s: %w", addr, err)
	}
	n, _ := strconv.Atoi(port)
	to, ok := r[n]
	if !ok {
		return "", fmt.Errorf("loadgen: dial %s: no route for port %s to nginx", addr, port)
	}
	if err := checkRouteAddr(to); err != nil { // checked when the load started: a bug if it fails here
		return "", fmt.Errorf("loadgen: dial %s: %w", addr, err)
	}
	return to, nil
}

// Results of a targets profile carry the target's index in their URL's
// fragment (vegeta's Result.URL is the target's URL): a fragment is never
// sent, and it makes every target a request of its own for the body check
// (two targets on one URL with different bodies are compared apart).
const targetFragment = "nuh-target-"

// TargetIndex returns the index of the target a result's URL names (see
// Profile.Targets), or false for a result of the harness's own requests.
func TargetIndex(resultURL string) (int, bool) {
	i := strings.LastIndex(resultURL, "#"+targetFragment)
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(resultURL[i+len(targetFragment)+1:])
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// vegetaTargets are the targets as the attacker sends them: every URL
// marked with its index in the whole list, each Host header kept as the
// request's host.
func vegetaTargets(ts []Target, idx []int) []vegeta.Target {
	out := make([]vegeta.Target, len(ts))
	for i, t := range ts {
		u := t.URL
		if j := strings.IndexByte(u, '#'); j >= 0 {
			u = u[:j]
		}
		out[i] = vegeta.Target{Method: t.Method, URL: u + "#" + targetFragment + strconv.Itoa(idx[i]), Header: t.Header, Body: t.Body}
	}
	return out
}

// checkTargets validates a targets profile: every URL's port routed to
// 127.0.0.1, https only for HTTP/2.
func (p Profile) checkTargets() error {
	if len(p.Targets) == 0 {
		return nil
	}
	if p.Target != "" {
		return errors.New("Target and Targets are exclusive")
	}
	if len(p.Targets) > MaxTargets {
		return fmt.Errorf("%d targets: at most %d", len(p.Targets), MaxTargets)
	}
	if p.TargetIndex != nil && len(p.TargetIndex) != len(p.Targets) {
		return fmt.Errorf("%d target indexes for %d targets", len(p.TargetIndex), len(p.Targets))
	}
	if err := p.Route.check(); err != nil {
		return err
	}
	for _, t := range p.Targets {
		u, err := checkTargetURL(t.URL)
		if err != nil {
			return err
		}
		if p.HTTP2 && u.Scheme != "https" {
			return fmt.Errorf("target %s: HTTP/2 needs an https URL (HTTP/2 over TLS, ALPN h2)", t.Name())
		}
		if _, ok := p.Route[urlPort(u)]; !ok {
			return fmt.Errorf("target %s: port %d: no route to nginx", t.Name(), urlPort(u))
		}
	}
	return nil
}

// targetIndexes are the targets' indexes in the whole list (default: their
// positions).
func (p Profile) targetIndexes() []int {
	if p.TargetIndex != nil {
		return p.TargetIndex
	}
	idx := make([]int, len(p.Targets))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// targetsClient sets up a client config for a targets profile: routed
// dials, TLS for https URLs with the server name of each URL's host, the
// URL in retry and stream records.
func (p Profile) targetsClient(cc clientConfig) clientConfig {
	if len(p.Targets) == 0 {
		return cc
	}
	cc.route, cc.recordURL = p.Route, true
	for _, t := range p.Targets {
		cc.https = cc.https || t.HTTPS()
	}
	return cc
}

// ReadTargets reads every target of a targets file in format (TargetsHTTP,
// TargetsJSON, or "" to tell from the first line: a JSON object is the
// JSON format). Errors name the file, the line and the cause. A body file
// (@path) in the HTTP format is read relative to the targets file's
// directory (vegeta reads it relative to its working directory): a targets
// file and its bodies can be moved together.
func ReadTargets(path, format string) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ts, err := ParseTargets(f, format, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return ts, nil
}

// lineError is a parse error at a line: "LINE: cause".
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("%d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

func atLine(n int, format string, args ...any) error {
	return &lineError{line: n, err: fmt.Errorf(format, args...)}
}

// ParseTargets reads targets from r (see ReadTargets); body files are
// relative to dir. Errors read "LINE: cause".
func ParseTargets(r io.Reader, format, dir string) ([]Target, error) {
	lines, err := readLines(r)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = TargetsHTTP
		for _, l := range lines {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				if strings.HasPrefix(t, "{") {
					format = TargetsJSON
				}
				break
			}
		}
	}
	var ts []Target
	switch format {
	case TargetsHTTP:
		ts, err = parseHTTPTargets(lines, dir)
	case TargetsJSON:
		ts, err = parseJSONTargets(lines)
	default:
		return nil, fmt.Errorf("format %q: want %s or %s", format, TargetsHTTP, TargetsJSON)
	}
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%d: no target in the file", len(lines))
	}
	var bodies int
	for _, t := range ts {
		bodies += len(t.Body)
	}
	if bodies > MaxTargetsBodies {
		return nil, fmt.Errorf("%d: the bodies add up to %d bytes, at most %d", len(lines), bodies, MaxTargetsBodies)
	}
	return ts, nil
}

// readLines reads the whole file, line by line, bounded.
func readLines(r io.Reader) ([]string, error) {
	rd := bufio.NewReaderSize(r, 64<<10)
	var lines []string
	for {
		var line []byte
		for {
			chunk, isPrefix, err := rd.ReadLine()
			line = append(line, chunk...)
			if len(line) > maxTargetLine {
				return nil, fmt.Errorf("%d: line longer than %d bytes", len(lines)+1, maxTargetLine)
			}
			if err == io.EOF {
				if len(line) > 0 {
					lines = append(lines, string(line))
				}
				return lines, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%d: %w", len(lines)+1, err)
			}
			if !isPrefix {
				break
			}
		}
		lines = append(lines, string(line))
	}
}

// startsWithMethod is vegeta's test for a request line: an upper-case word
// and a space.
var startsWithMethod = regexp.MustCompile(`^[A-Z]+\s`)

// parseHTTPTargets reads vegeta's HTTP format:
//
//	# a comment
//	GET https://site.test/
//	Header-Name: value
//	@path/to/body
//
//	POST http://api.test:8080/items
//
// A target is a request line (METHOD URL), then header lines ("Name:
// value", kept as written), ended by a blank line, an @body line, or the
// next request line; lines starting with # are comments anywhere. As in
// vegeta, nothing but a comment or a blank line may follow an @body line
// in the same target.
func parseHTTPTargets(lines []string, dir string) ([]Target, error) {
	var out []Target
	var cur *Target
	afterBody := false
	var bodies int
	finish := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
		afterBody = false
	}
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			finish()
			continue
		case strings.HasPrefix(line, "#"):
			continue
		case startsWithMethod.MatchString(line):
			finish()
			if len(out) >= MaxTargets {
				return nil, atLine(n, "more than %d targets", MaxTargets)
			}
			method, rest, _ := strings.Cut(line, " ")
			t, err := newTarget(n, method, strings.TrimSpace(rest), http.Header{})
			if err != nil {
				return nil, err
			}
			cur = &t
			continue
		case cur == nil && afterBody:
			return nil, atLine(n, "%q after an @body line: a body line ends its target (leave a blank line, then METHOD URL)", clip(line))
		case cur == nil:
			if m, _, ok := strings.Cut(line, " "); ok && strings.ToUpper(m) != m {
				return nil, atLine(n, "bad method %q: want an upper-case METHOD then a URL", m)
			}
			return nil, atLine(n, "bad target %q: want METHOD URL", clip(line))
		case strings.HasPrefix(line, "@"):
			body, err := readBody(dir, line[1:])
			if err != nil {
				return nil, atLine(n, "body: %v", err)
			}
			if bodies += len(body); bodies > MaxTargetsBodies {
				return nil, atLine(n, "the bodies add up to more than %d bytes", MaxTargetsBodies)
			}
			cur.Body = body
			finish()
			afterBody = true
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, atLine(n, "bad header %q: want Name: value", clip(line))
		}
		if err := addHeader(cur.Header, name, value); err != nil {
			return nil, atLine(n, "%v", err)
		}
	}
	finish()
	return out, nil
}

// parseJSONTargets reads vegeta's JSON format, one line at a time with
// vegeta's own decoder (so that what vegeta accepts, this accepts).
func parseJSONTargets(lines []string) ([]Target, error) {
	var out []Target
	var bodies int
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if len(out) >= MaxTargets {
			return nil, atLine(n, "more than %d targets", MaxTargets)
		}
		var vt vegeta.Target
		if err := vegeta.NewJSONTargeter(strings.NewReader(line+"\n"), nil, nil)(&vt); err != nil {
			return nil, atLine(n, "%v", err)
		}
		h := http.Header{}
		for name, values := range vt.Header {
			for _, v := range values {
				if err := addHeader(h, name, v); err != nil {
					return nil, atLine(n, "%v", err)
				}
			}
		}
		t, err := newTarget(n, vt.Method, vt.URL, h)
		if err != nil {
			return nil, err
		}
		if len(vt.Body) > MaxTargetBody {
			return nil, atLine(n, "body of %d bytes: at most %d", len(vt.Body), MaxTargetBody)
		}
		if bodies += len(vt.Body); bodies > MaxTargetsBodies {
			return nil, atLine(n, "the bodies add up to more than %d bytes", MaxTargetsBodies)
		}
		t.Body = vt.Body
		out = append(out, t)
	}
	return out, nil
}

// newTarget checks a target's method and URL.
func newTarget(line int, method, rawURL string, h http.Header) (Target, error) {
	if !httpguts.ValidHeaderFieldName(method) || method == "" { // a method is a token
		return Target{}, atLine(line, "bad method %q", method)
	}
	if _, err := checkTargetURL(rawURL); err != nil {
		return Target{}, atLine(line, "%v", err)
	}
	if i := strings.IndexByte(rawURL, '#'); i >= 0 {
		rawURL = rawURL[:i] // never sent
	}
	return Target{Method: method, URL: rawURL, Header: h, Line: line}, nil
}

// checkTargetURL accepts an absolute http or https URL with a host, any
// host: it only names the Host header and the TLS server name.
func checkTargetURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %v", clip(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme %q: want http or https", clip(raw), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q: no host", clip(raw))
	}
	if u.User != nil {
		return nil, fmt.Errorf("URL %q: no user info allowed", clip(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("URL %q: bad port %q", clip(raw), p)
		}
	}
	return u, nil
}

// addHeader adds a header as written (vegeta keeps names case-sensitive),
// but Host under its canonical name, which is what sets the request's host.
func addHeader(h http.Header, name, value string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("bad header name %q", clip(name))
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return fmt.Errorf("bad value of header %s", name)
	}
	if strings.EqualFold(name, "Host") {
		if len(h["Host"]) > 0 {
			return errors.New("Host given twice")
		}
		name = "Host"
	}
	h[name] = append(h[name], value)
	return nil
}

// readBody reads a body file, relative to dir, bounded.
func readBody(dir, path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("@ names no file")
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > MaxTargetBody {
		return nil, fmt.Errorf("%s has %d bytes: at most %d", path, st.Size(), MaxTargetBody)
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(f, MaxTargetBody+1)); err != nil {
		return nil, err
	}
	if b.Len() > MaxTargetBody {
		return nil, fmt.Errorf("%s has more than %d bytes", path, MaxTargetBody)
	}
	return b.Bytes(), nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
