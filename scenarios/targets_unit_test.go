package scenarios

import (
	"reflect"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/loadgen"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func TestTargetsProfilesAndRoute(t *testing.T) {
	tg, err := LoadTargets("testdata/targets/default-site.txt", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Format != loadgen.TargetsHTTP || len(tg.List) != 4 || string(tg.List[2].Body) != "order=42&item=harness\n" {
		t.Fatalf("read %+v", tg)
	}
	l := Load{Rate: 300, Method: "GET", Traffic: []string{TrafficHTTP1, TrafficHTTP2, TrafficProxy}, Targets: tg}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	published := map[int]string{8080: "127.0.0.1:32768", 8443: "127.0.0.1:32769"}
	addr := func(port int) (string, bool) { a, ok := published[port]; return a, ok }
	ps, _, err := l.profiles(l.plan(), loadTargets{http: "http://127.0.0.1:32768", https: "https://127.0.0.1:32769", addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	route := loadgen.Route{8080: "127.0.0.1:32768", 8443: "127.0.0.1:32769"}
	h1, h2, proxy := ps[0], ps[1], ps[2]
	if len(h1.Targets) != 4 || h1.TargetIndex != nil || !reflect.DeepEqual(h1.Route, route) || h1.Path != "" {
		t.Errorf("http1: %+v", h1)
	}
	if len(h2.Targets) != 1 || !reflect.DeepEqual(h2.TargetIndex, []int{3}) || !h2.HTTP2 || h2.Target != "" || h2.TLS.ServerName != "" {
		t.Errorf("http2: %+v", h2)
	}
	if proxy.Targets != nil || proxy.Path != ProxyPath {
		t.Errorf("proxy keeps its own path: %+v", proxy)
	}

	delete(published, 8443)
	_, _, err = l.profiles(l.plan(), loadTargets{http: "http://127.0.0.1:32768", addr: addr}, nil)
	want := "--targets testdata/targets/default-site.txt:15: target URL https://site.test:8443/ port 8443: nginx does not listen there"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}

	var meta record.Meta
	l.describeTargets(&meta, l.plan())
	if len(meta.Targets) != 4 || !reflect.DeepEqual(meta.Targets[0].Profiles, []string{"http1"}) ||
		!reflect.DeepEqual(meta.Targets[3].Profiles, []string{"http1", "http2"}) || meta.Targets[2].BodyBytes != 22 || meta.Targets[3].Line != 15 {
		t.Errorf("meta targets %+v", meta.Targets)
	}
	if len(meta.Notes) != 1 || !strings.Contains(meta.Notes[0], "certificates not verified") {
		t.Errorf("notes %v", meta.Notes)
	}
}

func TestWithoutTargetsNothingChanges(t *testing.T) {
	l := Load{Rate: 300, Method: "POST", Traffic: []string{TrafficHTTP1}}
	ps, _, err := l.profiles(l.plan(), loadTargets{http: "http://127.0.0.1:1"}, nil)
	if err != nil || len(ps) != 1 || ps[0].Targets != nil || ps[0].Route != nil || ps[0].Path != "/post" {
		t.Errorf("profiles %+v, %v", ps, err)
	}
}
