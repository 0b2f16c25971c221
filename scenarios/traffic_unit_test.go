package scenarios

import (
	"reflect"
	"strings"
	"testing"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func TestTrafficKindsAndRates(t *testing.T) {
	cases := []struct {
		load  Load
		kinds []string
		rates map[string]int
	}{
		{Load{Rate: 500}, []string{"http1"}, map[string]int{"http1": 500}},
		{Load{Rate: 500, KeepAlive: true}, []string{"http1-keepalive"}, map[string]int{"http1-keepalive": 500}},
		{Load{Rate: 500, Traffic: []string{"http2", "websocket"}}, []string{"http2", "websocket"}, map[string]int{"http2": 500}},
		// No request kind: the default one runs beside, at the full rate.
		{Load{Rate: 500, Traffic: []string{"upload"}}, []string{"http1", "upload"}, map[string]int{"http1": 500}},
		{Load{Rate: 500, Traffic: []string{"websocket"}, KeepAlive: true}, []string{"websocket", "http1-keepalive"}, map[string]int{"http1-keepalive": 500}},
		// The rate is shared; the remainder goes to the first kind.
		{Load{Rate: 500, Traffic: []string{"http1", "http2", "proxy"}}, []string{"http1", "http2", "proxy"},
			map[string]int{"http1": 168, "http2": 166, "proxy": 166}},
	}
	for _, c := range cases {
		if got := c.load.Kinds(); !reflect.DeepEqual(got, c.kinds) {
			t.Errorf("%+v: kinds %v, want %v", c.load, got, c.kinds)
		}
		rates := map[string]int{}
		total := 0
		for _, tp := range c.load.plan() {
			if tp.Rate > 0 {
				rates[tp.Kind] = tp.Rate
				total += tp.Rate
			}
		}
		if !reflect.DeepEqual(rates, c.rates) || total != c.load.Rate {
			t.Errorf("%+v: rates %v (total %d), want %v", c.load, rates, total, c.rates)
		}
	}
}

func TestTrafficValidation(t *testing.T) {
	if _, err := ParseTraffic([]string{"http3"}); err == nil || !strings.Contains(err.Error(), `unknown traffic kind "http3"`) {
		t.Errorf("unknown kind: %v", err)
	}
	if got, _ := ParseTraffic([]string{"http2", "http2", "proxy"}); !reflect.DeepEqual(got, []string{"http2", "proxy"}) {
		t.Errorf("duplicates: %v", got)
	}
	l := Load{Rate: 2, Method: "GET", Traffic: []string{"http1", "http2", "proxy"}}
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "gets none") {
		t.Errorf("a rate too small to share: %v", err)
	}
	if !(Load{Traffic: []string{"upload"}}).needsBackend() || (Load{Traffic: []string{"http2"}}).needsBackend() {
		t.Error("needsBackend")
	}
}

// The plan is recorded in meta.json as it was before it had a type of its
// own: each kind under a profile of its name, with its rate or its
// connections; and the load's settings as report.json has always had them.
func TestPlanRecord(t *testing.T) {
	l := Load{Rate: 500, Method: "POST", KeepAlive: true, Slow: 2, Traffic: []string{TrafficHTTP2, TrafficWebSocket, TrafficUpload}}
	want := []record.TrafficPlan{
		{Kind: TrafficHTTP2, Profile: TrafficHTTP2, Rate: 250},
		{Kind: TrafficWebSocket, Profile: TrafficWebSocket, Connections: WebSocketCount},
		{Kind: TrafficUpload, Profile: TrafficUpload, Connections: UploadCount, Bytes: UploadBytes},
		{Kind: TrafficHTTP1KeepAlive, Profile: TrafficHTTP1KeepAlive, Rate: 250},
	}
	if got := l.plan().record(); !reflect.DeepEqual(got, want) {
		t.Errorf("plan record %+v, want %+v", got, want)
	}
	if got := l.Record(); !reflect.DeepEqual(got, record.Load{Rate: 500, Method: "POST", KeepAlive: true, Slow: 2}) {
		t.Errorf("load record %+v", got)
	}
}
