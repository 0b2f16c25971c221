package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
)

// archiveProxy is an HTTP proxy on 127.0.0.1 that forwards to the archive
// the harness asks for (the mirror this host's apt sources name) and
// rewrites every InRelease it carries with alter; served counts the
// rewritten ones.
func archiveProxy(t *testing.T, alter func([]byte) []byte) (url string, served *atomic.Int64) {
	t.Helper()
	served = new(atomic.Int64)
	direct := &http.Transport{Proxy: nil}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp, err := direct.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if resp.StatusCode == http.StatusOK && strings.HasSuffix(r.URL.Path, "/InRelease") {
			body = alter(body)
			served.Add(1)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, served
}

// flipSignedByte changes one byte of an InRelease's signed text: the first
// digit of the first SHA256 the Release file gives.
func flipSignedByte(t *testing.T) func([]byte) []byte {
	return func(raw []byte) []byte {
		i := bytes.Index(raw, []byte("\nSHA256:\n "))
		if i < 0 {
			t.Errorf("InRelease without a SHA256 section")
			return raw
		}
		out := bytes.Clone(raw)
		i += len("\nSHA256:\n ")
		if out[i] == '0' {
			out[i] = '1'
		} else {
			out[i] = '0'
		}
		return out
	}
}

// resignWith replaces an InRelease's signatures with one by key, over the
// same text.
func resignWith(t *testing.T, key *openpgp.Entity) func([]byte) []byte {
	return func(raw []byte) []byte {
		block, _ := clearsign.Decode(raw)
		if block == nil {
			t.Errorf("InRelease is not clearsigned")
			return raw
		}
		var out bytes.Buffer
		w, err := clearsign.Encode(&out, key.PrivateKey, nil)
		if err != nil {
			t.Error(err)
			return raw
		}
		w.Write(block.Plaintext)
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		return out.Bytes()
	}
}

// cliRun runs the built CLI with env added and returns its exit code,
// stderr and pid.
func cliRun(t *testing.T, bin string, env []string, args ...string) (int, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, stderr.String(), cmd.Process.Pid
}

// containersCreatedBy lists the containers the process pid created since
// since, from the engine's own event log.
func containersCreatedBy(t *testing.T, pid int, since time.Time) string {
	t.Helper()
	out, err := exec.Command("docker", "events", "--since", strconv.FormatInt(since.Unix()-1, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=container", "--filter", "event=create",
		"--filter", "label="+harness.Label+".owner-pid="+strconv.Itoa(pid), "--format", "{{.Actor.Attributes.name}}").Output()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// An archive altered on the way, or signed by someone else, is exit 2 in
// one line naming the suite and the key, before any engine is reached —
// even with the last resolution in the cache and a lock naming the
// builds. An unreachable archive still falls back on them, and
// --insecure-archive takes the altered one, saying so first. The archive
// is the real one, through a proxy on 127.0.0.1; each run stops before a
// scenario starts (at the signature, or at an engine that does not answer).
func TestTamperedArchiveExitsTwoWithoutFallback(t *testing.T) {
	requireDocker(t)
	bin := filepath.Join(t.TempDir(), "nginx-upgrade-harness")
	if out, err := staticBuild(bin).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// The default builds resolved from the real archive: the cache holds
	// their files and last resolution, and the lock names them.
	lock := filepath.Join(t.TempDir(), "nuh.lock")
	r, err := image.NewResolver(image.WithLock(lock))
	if err != nil {
		t.Fatal(err)
	}
	from, _ := image.ParseBuild(image.DefaultFrom)
	to, _ := image.ParseBuild(image.DefaultTo)
	if err := r.Resolve(context.Background(), &from, &to); err != nil {
		t.Fatalf("the archive as it is: %v", err)
	}
	proxied := func(url string) []string {
		return []string{"HTTP_PROXY=" + url, "http_proxy=" + url, "NO_PROXY=", "no_proxy="}
	}
	forger, err := openpgp.NewEntity("Debian Archive Automatic Signing Key", "forged", "ftpmaster@invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	forgerKey := fmt.Sprintf("%X", forger.PrimaryKey.Fingerprint)

	for _, tc := range []struct {
		name  string
		alter func([]byte) []byte
		want  *regexp.Regexp
	}{
		{"one byte changed", flipSignedByte(t), regexp.MustCompile(`^nginx-upgrade-harness: debian:bookworm: suite bookworm: InRelease has a bad signature: its text was changed after it was signed \(keys? [0-9A-F]{40}(, [0-9A-F]{40})*\); nothing falls back on the cache or the lock`)},
		{"signed by a key not shipped", resignWith(t, forger), regexp.MustCompile(`^nginx-upgrade-harness: debian:bookworm: suite bookworm: InRelease is signed by no Debian archive key the tool ships \(key ` + forgerKey + `\)`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, served := archiveProxy(t, tc.alter)
			for _, args := range [][]string{
				{"run", "--scenario", "upgrade", "--out", t.TempDir()},
				{"run", "--scenario", "upgrade", "--lock", lock, "--out", t.TempDir()},
			} {
				start := time.Now()
				code, stderr, pid := cliRun(t, bin, proxied(url), args...)
				errLine := errorText(stderr)
				if code != exitBadInput || !tc.want.MatchString(errLine) || strings.Count(errLine, "\n") != 0 {
					t.Errorf("%v: exit %d, error %q; want exit 2 and %s\n%s", args, code, errLine, tc.want, stderr)
				}
				if served.Load() == 0 {
					t.Errorf("%v: the proxy served no InRelease: the run did not read the archive through it", args)
				}
				if strings.Contains(stderr, "= 1.22.1") || strings.Contains(stderr, "building") {
					t.Errorf("%v: went on past the signature:\n%s", args, stderr)
				}
				if made := containersCreatedBy(t, pid, start); made != "" {
					t.Errorf("%v: containers created: %s", args, made)
				}
			}
		})
	}

	// The same altered archive, taken on purpose: said first, resolved,
	// then stopped by an engine that does not answer.
	url, _ := archiveProxy(t, flipSignedByte(t))
	code, stderr, _ := cliRun(t, bin, append(proxied(url), "DOCKER_HOST=tcp://127.0.0.1:1"),
		"run", "--scenario", "upgrade", "--insecure-archive", "--out", t.TempDir())
	if first, _, _ := strings.Cut(stderr, "\n"); code != exitBadInput || !strings.Contains(first, "Archive signatures NOT checked (--insecure-archive)") ||
		!strings.Contains(stderr, "debian:bookworm = ") || !strings.Contains(stderr, "docker unreachable") {
		t.Errorf("--insecure-archive: exit %d\n%s", code, stderr)
	}
	// An archive out of reach is not a tampered one: the cache and the
	// lock stand in, as before.
	code, stderr, _ = cliRun(t, bin, append(proxied("http://127.0.0.1:9"), "DOCKER_HOST=tcp://127.0.0.1:1"),
		"run", "--scenario", "upgrade", "--lock", lock, "--out", t.TempDir())
	if code != exitBadInput || !strings.Contains(stderr, "warning: suite bookworm cannot be read") ||
		!strings.Contains(stderr, "debian:bookworm-security = "+to.Res.Version+" (cache") || !strings.Contains(stderr, "docker unreachable") {
		t.Errorf("archive cut: exit %d\n%s", code, stderr)
	}
}
