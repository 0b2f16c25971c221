package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A matrix file with an unknown key or value, and flags that do not go
// with a matrix, exit 2 with one line naming them, before anything starts.
func TestMatrixBadInputExitsTwo(t *testing.T) {
	// No case may reach an engine: were one to pass its checks, it would
	// find none here rather than start containers.
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker-for-tests.sock")
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good.yaml", "to: [debian:bookworm-security]\nscenarios: [upgrade]\n")
	if err := os.Mkdir(filepath.Join(dir, "etc-nginx"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"run", "--matrix", file("k.yaml", "to: [debian:bookworm-security]\nbuild: x\n")}, `k.yaml: unknown key "build"`},
		{"unknown key in JSON", []string{"run", "--matrix", file("k.json", `{"to": ["debian:bookworm-security"], "Scenarios": ["upgrade"]}`)}, `k.json: unknown key "Scenarios"`},
		{"unknown scenario", []string{"run", "--matrix", file("s.yaml", "to: [debian:bookworm-security]\nscenarios: [nope]\n")}, `s.yaml: scenarios: unknown scenario "nope"`},
		{"unknown traffic kind", []string{"run", "--matrix", file("t.yaml", "to: [debian:bookworm-security]\ntraffic: [http3]\n")}, `unknown traffic kind "http3"`},
		{"unknown fault", []string{"run", "--matrix", file("f.yaml", "to: [debian:bookworm-security]\nfaults: [gremlins]\n")}, `unknown fault "gremlins"`},
		{"build that does not parse", []string{"run", "--matrix", file("b.yaml", "to: [debian:Latest]\n")}, `"Latest" is neither a Debian suite`},
		{"unknown suite", []string{"run", "--matrix", file("u.yaml", "to: [debian:nosuch]\n")}, `debian:nosuch: unknown suite "nosuch" (known: bookworm`},
		{"a config tree without nginx.conf", []string{"run", "--matrix", file("d.yaml", "to: [debian:bookworm-security]\nconfigs: [etc-nginx]\n")}, "configs: etc-nginx: " + filepath.Join(dir, "etc-nginx") + " has no nginx.conf"},
		{"missing file", []string{"run", "--matrix", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"scenario flag with a matrix", []string{"run", "--matrix", good, "--scenario", "upgrade"}, "--scenario: with --matrix the matrix file says which"},
		{"repeat with a matrix", []string{"run", "--matrix", good, "--repeat", "2"}, "--repeat does not go with --matrix"},
		{"bad shard", []string{"run", "--matrix", good, "--shard", "2/1"}, `--shard: got "2/1"`},
		{"shard without a matrix", []string{"run", "--shard", "1/2"}, "go with --matrix FILE"},
		{"a remote engine", []string{"run", "--matrix", good, "--docker-host", "tcp://192.0.2.10:2375"}, "an engine on another machine"},
		{"an ssh engine", []string{"run", "--matrix", good, "--docker-host", "ssh://ci@build-2"}, "scheme \"ssh\" not supported"},
		{"merge of nothing", []string{"report", "merge"}, "want one or more shard directories"},
		{"merge of a plain directory", []string{"report", "merge", dir}, "is not a matrix run directory"},
		{"trend of one run", []string{"report", "trend", dir}, "want two or more"},
	} {
		t.Run(tc.name, func(t *testing.T) { expectBadInput(t, tc.args, tc.want) })
	}
}
