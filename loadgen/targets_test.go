package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const httpTargets = `# the site's pages
GET http://a.test:8080/
X-Trace: one
X-Trace: two

GET http://b.test:8080/page?q=1
# a comment between headers
Host: other.test

POST http://a.test:8080/post
Content-Type: text/plain
@bodies/post.txt

GET https://site.test:8443/
GET https://site.test/default-port
`

func TestParseHTTPTargets(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bodies/post.txt", "hello body")
	path := writeFile(t, dir, "targets.txt", httpTargets)
	ts, err := ReadTargets(path, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{Method: "GET", URL: "http://a.test:8080/", Header: http.Header{"X-Trace": {"one", "two"}}, Line: 2},
		{Method: "GET", URL: "http://b.test:8080/page?q=1", Header: http.Header{"Host": {"other.test"}}, Line: 6},
		{Method: "POST", URL: "http://a.test:8080/post", Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("hello body"), Line: 10},
		{Method: "GET", URL: "https://site.test:8443/", Header: http.Header{}, Line: 14},
		{Method: "GET", URL: "https://site.test/default-port", Header: http.Header{}, Line: 15},
	}
	if !reflect.DeepEqual(ts, want) {
		t.Fatalf("targets:\n got %+v\nwant %+v", ts, want)
	}
	if p := ts[4].Port(); p != 443 {
		t.Errorf("port of %s = %d, want 443", ts[4].URL, p)
	}
	if p := ts[0].Port(); p != 8080 {
		t.Errorf("port of %s = %d, want 8080", ts[0].URL, p)
	}

	// vegeta's own parser reads the same file the same way (run from the
	// file's directory, where vegeta looks for body files).
	t.Chdir(dir)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vts, err := vegeta.ReadAllTargets(vegeta.NewHTTPTargeter(f, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	sameAsVegeta(t, ts, vts)
}

func sameAsVegeta(t *testing.T, ts []Target, vts []vegeta.Target) {
	t.Helper()
	if len(vts) != len(ts) {
		t.Fatalf("vegeta read %d targets, we read %d", len(vts), len(ts))
	}
	for i, v := range vts {
		if v.Method != ts[i].Method || v.URL != ts[i].URL || !bytes.Equal(v.Body, ts[i].Body) || !reflect.DeepEqual(v.Header, ts[i].Header) {
			t.Errorf("target %d: vegeta %+v, we %+v", i, v, ts[i])
		}
	}
}

func TestParseJSONTargets(t *testing.T) {
	body := base64.StdEncoding.EncodeToString([]byte(`{"n":1}`))
	text := `{"method":"GET","url":"http://a.test:8080/","header":{"X-Trace":["one","two"]}}

{"method":"POST","url":"http://b.test:8080/post","body":"` + body + `","header":{"Content-Type":["application/json"]}}
{"method":"GET","url":"https://site.test:8443/"}
`
	dir := t.TempDir()
	path := writeFile(t, dir, "targets.json", text)
	for _, format := range []string{"", TargetsJSON} {
		ts, err := ReadTargets(path, format)
		if err != nil {
			t.Fatalf("format %q: %v", format, err)
		}
		want := []Target{
			{Method: "GET", URL: "http://a.test:8080/", Header: http.Header{"X-Trace": {"one", "two"}}, Line: 1},
			{Method: "POST", URL: "http://b.test:8080/post", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"n":1}`), Line: 3},
			{Method: "GET", URL: "https://site.test:8443/", Header: http.Header{}, Line: 4},
		}
		if !reflect.DeepEqual(ts, want) {
			t.Fatalf("format %q:\n got %+v\nwant %+v", format, ts, want)
		}
		vts, err := vegeta.ReadAllTargets(vegeta.NewJSONTargeter(strings.NewReader(text), nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		sameAsVegeta(t, ts, vts)
	}
}

func TestParseTargetsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "big.bin", strings.Repeat("x", MaxTargetBody+1))
	for _, tc := range []struct {
		name, format, text, want string
	}{
		{"empty", "", "# nothing\n\n", "2: no target in the file"},
		{"bad method", "", "GET http://a.test/\n\nget http://b.test/\n", `3: bad method "get"`},
		{"no URL", "", "\n\nGET\n", `3: bad target "GET"`},
		{"relative URL", "", "GET /index.html\n", `1: URL "/index.html": scheme "": want http or https`},
		{"ftp", "", "GET ftp://a.test/\n", `1: URL "ftp://a.test/": scheme "ftp": want http or https`},
		{"user info", "", "GET http://u:p@a.test/\n", "1: URL \"http://u:p@a.test/\": no user info allowed"},
		{"bad port", "", "GET http://a.test:99999/\n", `1: URL "http://a.test:99999/": bad port "99999"`},
		{"bad header", "", "GET http://a.test/\nX-Trace one\n", `2: bad header "X-Trace one": want Name: value`},
		{"empty header value", "", "GET http://a.test/\nX-Trace:\n", `2: bad header "X-Trace:"`},
		{"body too big", "", "POST http://a.test/\n@big.bin\n", "2: body: "},
		{"missing body", "", "POST http://a.test/\n\n\n@nope.txt\n", `4: bad target "@nope.txt"`},
		{"missing body file", "", "POST http://a.test/\n@nope.txt\n", "2: body: open "},
		{"header after @body", "", "POST http://a.test/\n@small.txt\nX-Late: 1\n", `3: "X-Late: 1" after an @body line`},
		{"two hosts", "", "GET http://a.test/\nHost: x\nhost: y\n", "3: Host given twice"},
		{"json syntax", "", "{\"method\":\"GET\",\"url\":\"http://a.test/\"}\n{\"method\":\"GET\",\n", "2: "},
		{"json no url", "", "{\"method\":\"GET\"}\n", "1: " + vegeta.ErrNoURL.Error()},
		{"json bad scheme", "json", "{\"method\":\"GET\",\"url\":\"file:///etc/passwd\"}\n", `1: URL "file:///etc/passwd": scheme "file"`},
		{"http forced on json", "http", "{\"method\":\"GET\",\"url\":\"http://a.test/\"}\n", "1: bad target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, dir, "small.txt", "s")
			path := writeFile(t, dir, "targets", tc.text)
			_, err := ReadTargets(path, tc.format)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), path+":") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %s:…%s…", err, path, tc.want)
			}
		})
	}
}

func TestParseTargetsBounds(t *testing.T) {
	var b strings.Builder
	for range MaxTargets + 1 {
		b.WriteString("GET http://a.test/\n")
	}
	_, err := ParseTargets(strings.NewReader(b.String()), "", ".")
	if err == nil || !strings.Contains(err.Error(), "more than 10000 targets") || !strings.HasPrefix(err.Error(), "10001: ") {
		t.Errorf("error %v, want line 10001: more than 10000 targets", err)
	}
}

func TestTargetIndex(t *testing.T) {
	vts := vegetaTargets([]Target{{Method: "GET", URL: "http://a.test/x#frag"}, {Method: "GET", URL: "http://a.test/y"}}, []int{3, 7})
	if vts[0].URL != "http://a.test/x#nuh-target-3" || vts[1].URL != "http://a.test/y#nuh-target-7" {
		t.Fatalf("URLs %q %q", vts[0].URL, vts[1].URL)
	}
	for url, want := range map[string]int{vts[0].URL: 3, vts[1].URL: 7} {
		if got, ok := TargetIndex(url); !ok || got != want {
			t.Errorf("TargetIndex(%q) = %d %v, want %d", url, got, ok, want)
		}
	}
	if _, ok := TargetIndex("http://127.0.0.1:8080/"); ok {
		t.Error("a harness URL names a target")
	}
}

// seen is what a test server saw of one request.
type seen struct {
	Host, Path, Body, SNI, Fragment string
	Proto                           int
	TLS                             bool
}

type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (rc *recorder) handler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s := seen{Host: r.Host, Path: r.URL.RequestURI(), Body: string(b), Proto: r.ProtoMajor, Fragment: r.URL.Fragment}
	if r.TLS != nil {
		s.TLS, s.SNI = true, r.TLS.ServerName
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
	io.WriteString(w, "page of "+r.Host+r.URL.Path)
}

func (rc *recorder) all() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

func readResults(t *testing.T, dir string) []vegeta.Result {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var out []vegeta.Result
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

// runTargets runs one targets profile to its MaxRequests and returns the
// run directory.
func runTargets(t *testing.T, base string, p Profile) (string, Summary) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Run(ctx, base, NewClock(), dir, []Profile{p}, Slow{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := l.Snapshot(); s.Profiles[0].Requests >= int64(p.MaxRequests) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sum, err := l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

// TestTargetsRouted sends targets naming other hosts, over HTTP/1.1 and
// TLS, to servers on 127.0.0.1: each reaches the server its port routes
// to, with its Host and SNI kept, and each result names its target.
func TestTargetsRouted(t *testing.T) {
	var plain, secure recorder
	srv := httptest.NewServer(http.HandlerFunc(plain.handler))
	defer srv.Close()
	cert, _ := testCert(t)
	tsrv := httptest.NewUnstartedServer(http.HandlerFunc(secure.handler))
	tsrv.EnableHTTP2 = true
	tsrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tsrv.StartTLS()
	defer tsrv.Close()

	ts, err := ParseTargets(strings.NewReader(`GET http://a.test/one
GET http://b.test/two#ignored
Host: named.test
POST http://a.test/post
Content-Type: text/plain
@body.txt

GET https://site.test:8443/tls
`), "", writeDir(t, "body.txt", "the body"))
	if err != nil {
		t.Fatal(err)
	}
	route := Route{80: strings.TrimPrefix(srv.URL, "http://"), 8443: strings.TrimPrefix(tsrv.URL, "https://")}
	for _, keepAlive := range []bool{false, true} {
		plain.reqs, secure.reqs = nil, nil
		dir, sum := runTargets(t, srv.URL, Profile{Name: "targets", Rate: 200, KeepAlive: keepAlive, MaxRequests: 8, Targets: ts, Route: route})
		if p := sum.Profiles[0]; p.Requests != 8 || p.OK != 8 {
			t.Fatalf("keepalive=%v: summary %+v, want 8 requests, 8 ok", keepAlive, p)
		}
		got := append(plain.all(), secure.all()...)
		sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
		want := []seen{
			{Host: "a.test", Path: "/one", Proto: 1}, {Host: "a.test", Path: "/one", Proto: 1},
			{Host: "a.test", Path: "/post", Body: "the body", Proto: 1}, {Host: "a.test", Path: "/post", Body: "the body", Proto: 1},
			{Host: "site.test:8443", Path: "/tls", SNI: "site.test", TLS: true, Proto: 1}, {Host: "site.test:8443", Path: "/tls", SNI: "site.test", TLS: true, Proto: 1},
			{Host: "named.test", Path: "/two", Proto: 1}, {Host: "named.test", Path: "/two", Proto: 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("keepalive=%v: servers saw\n%+v\nwant\n%+v", keepAlive, got, want)
		}
		perTarget := map[int]int{}
		for _, r := range readResults(t, dir) {
			i, ok := TargetIndex(r.URL)
			if !ok {
				t.Fatalf("result %q names no target", r.URL)
			}
			if !strings.HasPrefix(r.URL, ts[i].URL+"#") {
				t.Errorf("result %q is not target %d %q", r.URL, i, ts[i].URL)
			}
			perTarget[i]++
		}
		if !reflect.DeepEqual(perTarget, map[int]int{0: 2, 1: 2, 2: 2, 3: 2}) {
			t.Errorf("results per target %v, want 2 each (round-robin)", perTarget)
		}
	}
}

func writeDir(t *testing.T, name, text string) string {
	dir := t.TempDir()
	writeFile(t, dir, name, text)
	return dir
}

// TestTargetsHTTP2 sends https targets as HTTP/2 streams, SNI and
// :authority the URL's host.
func TestTargetsHTTP2(t *testing.T) {
	var secure recorder
	cert, _ := testCert(t)
	tsrv := httptest.NewUnstartedServer(http.HandlerFunc(secure.handler))
	tsrv.EnableHTTP2 = true
	tsrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tsrv.StartTLS()
	defer tsrv.Close()
	ts := []Target{{Method: "GET", URL: "https://site.test/a"}, {Method: "GET", URL: "https://www.site.test/b"}}
	dir, sum := runTargets(t, "http://127.0.0.1:1", Profile{Name: "h2", Rate: 100, HTTP2: true, MaxRequests: 4, Targets: ts, TargetIndex: []int{5, 9},
		Route: Route{443: strings.TrimPrefix(tsrv.URL, "https://")}})
	if p := sum.Profiles[0]; p.OK != 4 {
		t.Fatalf("summary %+v, want 4 ok", p)
	}
	for _, s := range secure.all() {
		if s.Proto != 2 || !s.TLS || s.SNI != s.Host || (s.Host != "site.test" && s.Host != "www.site.test") {
			t.Errorf("server saw %+v, want HTTP/2 with SNI = Host = the URL's host", s)
		}
	}
	for _, st := range readJSONL[StreamRecord](t, filepath.Join(dir, StreamsFile)) {
		if i, ok := TargetIndex(st.URL); !ok || (i != 5 && i != 9) {
			t.Errorf("stream record URL %q: want target 5 or 9", st.URL)
		}
	}
	// Two host names: two connections, each with its own SNI.
	conns := readJSONL[ConnRecord](t, filepath.Join(dir, ConnectionsFile))
	if len(conns) != 2 {
		t.Errorf("%d connections, want 2 (one per host name): %+v", len(conns), conns)
	}
}

// TestTargetsCA: without a CA the certificate is not verified; with one,
// it is, for the URL's host name.
func TestTargetsCA(t *testing.T) {
	cert, pool := testCert(t) // valid for nuh.test and 127.0.0.1
	tsrv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	tsrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tsrv.StartTLS()
	defer tsrv.Close()
	route := Route{443: strings.TrimPrefix(tsrv.URL, "https://")}
	for _, tc := range []struct {
		host string
		ca   bool
		ok   bool
	}{
		{"site.test", false, true},
		{"nuh.test", true, true},
		{"site.test", true, false},
	} {
		ts := []Target{{Method: "GET", URL: "https://" + tc.host + "/"}}
		p := Profile{Name: "tls", Rate: 100, MaxRequests: 2, Targets: ts, Route: route}
		if tc.ca {
			p.TLS.RootCAs = pool
		}
		_, sum := runTargets(t, "http://127.0.0.1:1", p)
		ps := sum.Profiles[0]
		if tc.ok && ps.OK != 2 || !tc.ok && (ps.Failed != 2 || ps.HandshakesFailed == 0) {
			t.Errorf("host %s, CA %v: %+v, want ok=%v", tc.host, tc.ca, ps, tc.ok)
		}
	}
}

// TestTargetsRouteRefused: a route anywhere but 127.0.0.1, or a target
// whose port has no route, is refused before anything is sent.
func TestTargetsRouteRefused(t *testing.T) {
	ts := []Target{{Method: "GET", URL: "http://a.test/"}}
	for _, tc := range []struct {
		route Route
		want  string
	}{
		{Route{80: "10.0.0.1:80"}, `refusing anything but 127.0.0.1`},
		{Route{80: "localhost:80"}, `refusing anything but 127.0.0.1`},
		{Route{80: "[::1]:80"}, `refusing anything but 127.0.0.1`},
		{Route{8080: "127.0.0.1:8080"}, `target GET http://a.test/: port 80: no route to nginx`},
	} {
		_, err := Run(context.Background(), "http://127.0.0.1:1", NewClock(), t.TempDir(),
			[]Profile{{Name: "t", Rate: 1, Targets: ts, Route: tc.route}}, Slow{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("route %v: error %v, want %q", tc.route, err, tc.want)
		}
	}
	if _, err := (Route{80: "127.0.0.1:80"}).resolve("a.test:81"); err == nil {
		t.Error("a port without a route resolved")
	}
}
