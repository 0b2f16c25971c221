package nginx

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// A dump as nginx -T prints it: the main file first, then each included
// file after its marker (includes are not expanded in place).
const testDump = `# configuration file /etc/nginx/nginx.conf:
user www-data;
pid /run/nginx.pid;
events { worker_connections 768; }
http {
    include /etc/nginx/mime.types;
    upstream app { server 127.0.0.3:9000 weight=2; server unix:/run/app.sock; keepalive 8; }
    include /etc/nginx/conf.d/*.conf;
    include sites-enabled/*;
}
stream {
    server { listen 5353; proxy_pass 10.0.0.1:53; }
}

# configuration file /etc/nginx/mime.types:
types { text/html html; }

# configuration file /etc/nginx/conf.d/tls.conf:
server {
    listen 443 ssl;   # the TLS site
    listen [::]:443 ssl;
    http2 on;
    server_name secure.example.test;
    location /api/ { proxy_pass http://app; }
    location /direct/ { proxy_pass http://127.0.0.2:8081/x/; }
    location /var/ { proxy_pass http://$host; }
}

# configuration file /etc/nginx/sites-enabled/default:
server {
    listen 80 default_server reuseport;
    listen [::]:80 default_server;
    server_name "a.example.test" b.example.test;
    location /other { proxy_pass http://backend.internal; }
}
server {
    listen 127.0.0.1:8081;
    listen unix:/run/nginx.sock;
    server_name c.example.test;
}
server {
    listen 0.0.0.0:80;
    server_name d.example.test;
}
server {
    listen 8443 ssl http2;
    listen 443 quic;
}
server {
    server_name implicit.example.test;
}
`

func TestParseDump(t *testing.T) {
	s, err := ParseDump("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n" + testDump)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Listener{}
	var order []string
	for _, l := range s.Listeners {
		k := l.Addr + ":" + itoa(l.Port)
		got[k] = l
		order = append(order, k)
	}
	wantOrder := []string{"*:443", "[::]:443", "*:80", "[::]:80", "127.0.0.1:8081", "*:8443"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("listeners %v, want %v", order, wantOrder)
	}
	if l := got["*:443"]; !l.SSL || !l.HTTP2 || l.Reuseport || !reflect.DeepEqual(l.ServerNames, []string{"secure.example.test"}) {
		t.Errorf("*:443 = %+v: want ssl, http2 (http2 on;), secure.example.test", l)
	}
	// *:80 merges three server blocks: listen 80, 0.0.0.0:80 and the implicit one.
	if l := got["*:80"]; l.SSL || !l.Reuseport || !l.DefaultServer ||
		!reflect.DeepEqual(l.ServerNames, []string{"a.example.test", "b.example.test", "d.example.test", "implicit.example.test"}) {
		t.Errorf("*:80 = %+v", l)
	}
	if l := got["[::]:80"]; l.Reuseport || !l.DefaultServer {
		t.Errorf("[::]:80 = %+v", l)
	}
	if l := got["*:8443"]; !l.SSL || !l.HTTP2 {
		t.Errorf("*:8443 = %+v: want ssl http2 on the listen line", l)
	}
	if len(s.Skipped) != 2 || !strings.Contains(s.Skipped[0], "unix:/run/nginx.sock") || !strings.Contains(s.Skipped[1], "quic") {
		t.Errorf("skipped = %q: want the unix socket and the QUIC listener", s.Skipped)
	}
	// The stream block's proxy_pass is not HTTP; the variable one is unknown;
	// the upstream's unix socket is not an address.
	wantUp := []string{"127.0.0.3:9000", "127.0.0.2:8081", "backend.internal:80"}
	if !reflect.DeepEqual(s.Upstreams, wantUp) {
		t.Errorf("upstreams %v, want %v", s.Upstreams, wantUp)
	}
	if len(s.Files) != 4 || s.Files[0] != "/etc/nginx/nginx.conf" {
		t.Errorf("files %v", s.Files)
	}
	wantProxied := []Proxied{
		{Location: "/api/", ServerName: "secure.example.test", Upstreams: []string{"127.0.0.3:9000"}},
		{Location: "/direct/", ServerName: "secure.example.test", Upstreams: []string{"127.0.0.2:8081"}},
		{Location: "/other", Ports: []int{80}, ServerName: "a.example.test", Upstreams: []string{"backend.internal:80"}},
	}
	if !reflect.DeepEqual(s.Proxied, wantProxied) {
		t.Errorf("proxied %+v, want %+v", s.Proxied, wantProxied)
	}
	if p := s.Ports(); !reflect.DeepEqual(p, []int{443, 80, 8081, 8443}) {
		t.Errorf("ports %v", p)
	}
}

func TestParseListen(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		addr       string
		port       int
		skip       bool
		ssl, http2 bool
	}{
		{[]string{"8080"}, "*", 8080, false, false, false},
		{[]string{"*:8080"}, "*", 8080, false, false, false},
		{[]string{"127.0.0.1"}, "127.0.0.1", 80, false, false, false},
		{[]string{"localhost:81"}, "127.0.0.1", 81, false, false, false},
		{[]string{"[::1]:443", "ssl", "http2"}, "[::1]", 443, false, true, true},
		{[]string{"[::]"}, "[::]", 80, false, false, false},
		{[]string{"10.1.2.3:80"}, "10.1.2.3", 80, false, false, false},
		{[]string{"unix:/tmp/s"}, "", 0, true, false, false},
	} {
		l, skip := parseListen(tc.args)
		if (skip != "") != tc.skip || (!tc.skip && (l.Addr != tc.addr || l.Port != tc.port || l.SSL != tc.ssl || l.HTTP2 != tc.http2)) {
			t.Errorf("listen %v = %+v skip %q", tc.args, l, skip)
		}
	}
}

func TestParseDumpRejectsNonDump(t *testing.T) {
	if _, err := ParseDump("nginx: [emerg] unknown directive \"foo\"\n"); err == nil {
		t.Fatal("want an error for output with no configuration file marker")
	}
	if _, err := ParseDump("# configuration file /etc/nginx/nginx.conf:\nhttp {\n"); err == nil {
		t.Fatal("want an error for an unclosed block")
	}
}

func TestTokenizeQuotesAndComments(t *testing.T) {
	toks, err := tokenize("add_header X \"a; b # c\"; # comment ; {\nreturn 200 'x\\'y';")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range toks {
		got = append(got, tk.s)
	}
	want := []string{"add_header", "X", "a; b # c", ";", "return", "200", "x'y", ";"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tokens %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
