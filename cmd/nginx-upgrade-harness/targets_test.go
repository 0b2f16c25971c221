package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bad targets file, and the flags that need one, exit 2 with one line
// naming the file and the line, before any container starts.
func TestBadTargetsExitTwo(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join("..", "..", "scenarios", "testdata", "targets", "bad-header.txt")
	good := filepath.Join("..", "..", "scenarios", "testdata", "targets", "default-site.txt")
	plain := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(plain, []byte("GET http://a.test:8080/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad header", []string{"run", "--targets", bad}, "--targets " + bad + `:4: bad header "Content-Type text/plain": want Name: value`},
		{"missing file", []string{"run", "--targets", filepath.Join(dir, "nope.txt")}, "--targets open " + filepath.Join(dir, "nope.txt")},
		{"wrong format", []string{"run", "--targets", good, "--targets-format", "json"}, "--targets " + good + ":1: parse error"},
		{"unknown format", []string{"run", "--targets", good, "--targets-format", "csv"}, `--targets-format: got "csv", want http or json`},
		{"ca without targets", []string{"run", "--ca", notPEM}, "--ca: verifies the https targets of --targets, and there is no --targets"},
		{"ca not PEM", []string{"run", "--targets", good, "--ca", notPEM}, "--ca " + notPEM + ": no PEM certificate in it"},
		{"http2 without https", []string{"run", "--targets", plain, "--traffic", "http2"}, "--traffic http2 sends the https targets as HTTP/2 streams, and " + plain + " has none"},
	} {
		t.Run(tc.name, func(t *testing.T) { expectBadInput(t, tc.args, tc.want) })
	}
}

// A target nginx cannot serve — a port it does not listen on, an answer
// other than 2xx — is bad input, named with its line before any scenario
// starts (runs nginx in a container).
func TestTargetsNginxCannotServeExitTwo(t *testing.T) {
	requireDocker(t)
	dir := t.TempDir()
	twoNames := filepath.Join("..", "..", "scenarios", "testdata", "targets", "two-names.conf")
	for _, tc := range []struct{ name, conf, text, want string }{
		{"port", "", "GET http://a.test:8080/\n\nGET https://site.test/\n", ":3: target URL https://site.test/ port 443: nginx does not listen there"},
		{"404", "", "GET http://a.test:8080/\nGET http://a.test:8080/missing\n", ":2: GET http://a.test:8080/missing over HTTP/1.1: answered 404 Not Found"},
		// two-names.conf serves /only-site to the server name site.test
		// only: another SNI and Host reach the default server.
		{"other server name", twoNames, "GET https://site.test:8443/only-site\n\nGET https://other.test:8443/only-site\n",
			":3: GET https://other.test:8443/only-site over HTTP/1.1: answered 404 Not Found"},
		// A Host header wins over the URL's host.
		{"host header", twoNames, "GET http://api.site.test:8080/only-api\nHost: www.site.test\n",
			":1: GET http://api.site.test:8080/only-api over HTTP/1.1: answered 404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".txt")
			os.WriteFile(path, []byte(tc.text), 0o644)
			args := []string{"run", "--scenario", "upgrade", "--targets", path, "--out", t.TempDir()}
			if tc.conf != "" {
				args = append(args, "--config", tc.conf)
			}
			code, stderr := run(t, args...)
			if code != exitBadInput || !strings.Contains(stderr, "--targets "+path+tc.want) || strings.Count(errorText(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q, want one line with %q", code, stderr, tc.want)
			}
		})
	}
	assertNoLeftovers(t)
}
