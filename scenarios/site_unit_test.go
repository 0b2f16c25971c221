package scenarios

import (
	"reflect"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

func TestReachable(t *testing.T) {
	l := func(addr string, port int, ssl bool) nginx.Listener {
		return nginx.Listener{Addr: addr, Port: port, SSL: ssl}
	}
	for _, tc := range []struct {
		name      string
		listeners []nginx.Listener
		path      string
		want      string // "" : reachable
	}{
		{"debian default", []nginx.Listener{l("*", 80, false), l("[::]", 80, false)}, LoadPathHost, ""},
		{"tls and plain", []nginx.Listener{l("*", 80, false), l("*", 443, true)}, LoadPathNetns, ""},
		{"none", nil, LoadPathNetns, "no listener the load can reach"},
		{"ipv6 only", []nginx.Listener{l("*", 80, false), l("[::]", 443, true)}, LoadPathNetns, "IPv6 only"},
		{"other address", []nginx.Listener{l("*", 80, false), l("192.0.2.10", 80, false)}, LoadPathNetns, "cannot reach"},
		{"loopback from the host", []nginx.Listener{l("*", 80, false), l("127.0.0.1", 8081, false)}, LoadPathHost, "port proxy does not reach"},
		{"loopback from inside", []nginx.Listener{l("*", 80, false), l("127.0.0.1", 8081, false)}, LoadPathNetns, ""},
		{"loopback from an agent", []nginx.Listener{l("*", 80, false), l("127.0.0.1", 8081, false)}, LoadPathAgent, ""},
		{"tls only", []nginx.Listener{l("*", 443, true)}, LoadPathNetns, "no plain-HTTP listener"},
	} {
		err := reachable(&nginx.Site{Listeners: tc.listeners}, tc.path)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: reachable = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestStandIns(t *testing.T) {
	site := &nginx.Site{Listeners: []nginx.Listener{{Addr: "*", Port: 80}},
		Upstreams: []string{"127.0.0.3:9000", "app.internal:8080", "localhost:80", "127.0.0.3:9000"}}
	got, err := standIns(site, []string{"app.internal:127.0.0.4"})
	if err != nil {
		t.Fatal(err)
	}
	// localhost:80 is nginx itself (listen 80): no stand-in there.
	if want := []string{"127.0.0.3:9000", "127.0.0.4:8080"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stand-ins %v, want %v", got, want)
	}
	if _, err := standIns(site, nil); err == nil || !strings.Contains(err.Error(), "--add-host app.internal:127.0.0.x") {
		t.Errorf("an unmapped name: %v", err)
	}
	if _, err := standIns(&nginx.Site{Upstreams: []string{"10.0.0.1:80"}}, nil); err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Errorf("a remote address: %v", err)
	}
}

func TestParseAddHost(t *testing.T) {
	if h, err := ParseAddHost("app.internal:127.0.0.4"); err != nil || h != "app.internal:127.0.0.4" {
		t.Errorf("ParseAddHost = %q, %v", h, err)
	}
	for _, bad := range []string{"app:10.0.0.1", "app", ":127.0.0.1", "app:::1"} {
		if _, err := ParseAddHost(bad); err == nil {
			t.Errorf("ParseAddHost(%q): want an error", bad)
		}
	}
}

func TestReuseportOnce(t *testing.T) {
	edit := reuseportOnce()
	a, _ := edit("a.conf", []byte("server {\n    listen 80 default_server;\n    listen [::]:80;\n}\n"))
	b, _ := edit("b.conf", []byte("server {\n    listen 80;\n    listen 443 ssl reuseport;\n    listen unix:/run/x.sock;\n}\n"))
	if want := "server {\n    listen 80 default_server reuseport;\n    listen [::]:80 reuseport;\n}\n"; string(a) != want {
		t.Errorf("first file:\n%s\nwant\n%s", a, want)
	}
	// 80 already has it (nginx allows it once per address); 443 keeps its own.
	if want := "server {\n    listen 80;\n    listen 443 ssl reuseport;\n    listen unix:/run/x.sock;\n}\n"; string(b) != want {
		t.Errorf("second file:\n%s\nwant\n%s", b, want)
	}
}

func TestSiteScenarioReload(t *testing.T) {
	sc, err := Lookup([]string{"reload"})
	if err != nil {
		t.Fatal(err)
	}
	out, _, notes, err := siteScenario(sc[0], &Site{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Moves {
		if m.Step.Name == "change-config" && m.Step.Action == nil {
			t.Fatal("change-config lost its action")
		}
		if m.Step.Name == "reload-config" && m.Step.Confirm != nil {
			t.Error("with a tree the reload must not look for a generation header in the user's responses")
		}
	}
	if len(notes) == 0 {
		t.Error("the report must say how the reload is verified with a tree")
	}
}
