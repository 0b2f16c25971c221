package harness

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// fakeEngine answers /info with info and records the body of a create.
func fakeEngine(t *testing.T, info string, created *map[string]any) *dockertest.Pool {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/info"):
			if info == "" {
				http.Error(w, `{"message":"engine broken"}`, http.StatusInternalServerError)
				return
			}
			io.WriteString(w, info)
		case strings.HasSuffix(r.URL.Path, "/containers/create"):
			json.NewDecoder(r.Body).Decode(created)
			io.WriteString(w, `{"Id":"abc123"}`)
		case strings.HasSuffix(r.URL.Path, "/start"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/json"):
			io.WriteString(w, `{"Id":"abc123","NetworkSettings":{"Ports":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"32768"}]}}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	pool, err := dockertest.NewPool("tcp://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestCgroupsOfAsksTheEngine(t *testing.T) {
	for _, c := range []struct {
		info string
		want EngineCgroups
		err  string
	}{
		{`{"CgroupVersion":"2","CgroupDriver":"systemd","SecurityOptions":["name=apparmor","name=seccomp,profile=builtin","name=cgroupns"]}`,
			EngineCgroups{Version: "2", Driver: "systemd", AppArmor: true}, ""},
		{`{"CgroupVersion":"1","CgroupDriver":"cgroupfs","SecurityOptions":["name=seccomp,profile=default"]}`,
			EngineCgroups{Version: "1", Driver: "cgroupfs"}, ""},
		// An engine before 20.10 does not say: it knew only cgroup v1.
		{`{"CgroupDriver":"cgroupfs"}`, EngineCgroups{Version: "1", Driver: "cgroupfs"}, ""},
		{"", EngineCgroups{}, "engine broken"},
	} {
		got, err := CgroupsOf(context.Background(), fakeEngine(t, c.info, nil))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "docker info at tcp://") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: got %v, want one line with %q", c.info, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v", c.info, got, err, c.want)
		}
	}
}

func TestRunPrivateCgroupnsSendsTheModeWithTheLibrarysHostConfig(t *testing.T) {
	var body map[string]any
	pool := fakeEngine(t, `{}`, &body)
	res, err := RunPrivateCgroupns(context.Background(), pool, CreateOptions{
		Config: &dc.Config{Image: "img:tag", Cmd: []string{"/bin/sh", "-c", "x"}, Labels: map[string]string{Label: "1"},
			ExposedPorts: map[dc.Port]struct{}{"8080/tcp": {}}},
		HostConfig: &dc.HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"SYS_ADMIN"},
			PortBindings: map[dc.Port][]dc.PortBinding{"8080/tcp": {{HostIP: "127.0.0.1"}}}, Tmpfs: map[string]string{"/run": ""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetHostPort("8080/tcp") != "127.0.0.1:32768" {
		t.Errorf("published port: %q", res.GetHostPort("8080/tcp"))
	}
	hc, _ := body["HostConfig"].(map[string]any)
	if hc["CgroupnsMode"] != "private" {
		t.Errorf("CgroupnsMode: %v", hc["CgroupnsMode"])
	}
	if caps, _ := hc["CapAdd"].([]any); len(caps) != 1 || caps[0] != "SYS_ADMIN" {
		t.Errorf("CapAdd: %v", hc["CapAdd"])
	}
	if _, ok := hc["PortBindings"].(map[string]any)["8080/tcp"]; !ok {
		t.Errorf("PortBindings: %v", hc["PortBindings"])
	}
	if body["Image"] != "img:tag" || body["Labels"].(map[string]any)[Label] != "1" {
		t.Errorf("Config: %v", body)
	}
}
