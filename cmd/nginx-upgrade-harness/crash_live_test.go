package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// A new build whose workers crash is a finding the report names, as a
// release engineer would meet it (`--to source:TARBALL`): nginx 1.26.3
// from the archive, patched so that a worker dies of SIGSEGV on every
// NGX_CRASH_EVERY-th request it reads (under load: it dies holding
// requests), or once it has run NGX_CRASH_IDLE_MS and holds no
// connection (idle: nothing in flight). The period comes from an `env`
// line of the configuration, which nginx passes to the binary it starts
// on USR2 and to its workers.
func TestCrashingBuildIsNamed(t *testing.T) {
	requireDocker(t)
	tarball := crashingTarball(t)
	for _, tc := range []struct {
		name, env string
		lost      bool // drops, every one lost in a crash; else none at all
	}{
		{"under load", "NGX_CRASH_EVERY=300", true},
		{"while idle", "NGX_CRASH_IDLE_MS=1500", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "crash.conf")
			if err := os.WriteFile(conf, []byte(strings.Replace(nginx.DefaultConfig, "pid /run/nginx.pid;\n",
				"pid /run/nginx.pid;\nenv "+tc.env+";\n", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, stderr string
			code := judged(t, func(int) (code int) {
				// Kept when the test fails: the record is the evidence.
				var err error
				if out, err = os.MkdirTemp("", "nuh-crash-"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if !t.Failed() {
						os.RemoveAll(out)
					} else {
						t.Logf("the run's record is kept in %s", out)
					}
				})
				code, stderr = run(t, "run", "--scenario", "upgrade", "--to", "source:"+tarball, "--config", conf, "--out", out)
				t.Log(stderr)
				return code
			})
			r, err := record.ReadReport(filepath.Join(out, record.ReportJSON))
			if err != nil {
				t.Fatalf("exit %d, no report: %v", code, err)
			}
			s := r.Scenarios[0]
			if code != exitFail || s.Verdict != record.VerdictFail {
				t.Fatalf("exit %d, verdict %s (%q): want fail", code, s.Verdict, s.Reasons)
			}
			var segv []record.Death
			for _, d := range s.Deaths {
				if d.Signal == 11 && d.PID > 0 && strings.HasPrefix(d.Generation, "new") {
					segv = append(segv, d)
				}
			}
			if len(segv) == 0 {
				t.Fatalf("no death of a new worker on SIGSEGV named (deaths %+v, reasons %q)", s.Deaths, s.Reasons)
			}
			named := false
			for _, reason := range s.Reasons {
				named = named || strings.Contains(reason, fmt.Sprint(segv[0].PID)) && strings.Contains(reason, "SIGSEGV")
			}
			if !named {
				t.Errorf("no reason names worker %d's SIGSEGV: %q", segv[0].PID, s.Reasons)
			}
			if s.Witness == nil || !s.Witness.Present {
				t.Fatalf("no witness: %+v", s.Witness)
			}
			crashed, other := 0, 0
			for class, n := range s.Witness.Classes {
				switch class {
				case record.WitnessCrash:
					crashed += n
				case record.WitnessOK, record.WitnessCanceled:
				default:
					other += n
				}
			}
			t.Logf("%d deaths on SIGSEGV (first: pid %d, %s), dropped %d, classes %v", len(segv), segv[0].PID, segv[0].Generation, s.Dropped, s.Witness.Classes)
			switch {
			case tc.lost && (s.Dropped == 0 || crashed == 0 || other > 0):
				t.Errorf("under load: dropped %d, %d lost in a crash, %d of other classes: want drops, each lost in a crash", s.Dropped, crashed, other)
			case !tc.lost && s.Dropped != 0:
				t.Errorf("while idle: dropped %d, want 0 (the workers died holding nothing)", s.Dropped)
			}
		})
	}
	assertNoLeftovers(t)
}

// crashEdits patch nginx 1.26.3's source: each anchor must be found once.
var crashEdits = map[string][][2]string{
	"src/http/ngx_http_request.c": {
		{"#include <ngx_http.h>\n\n", "#include <ngx_http.h>\n\n" +
			"/* A test build, never to ship: a worker dies on every NGX_CRASH_EVERY-th request. */\n" +
			"extern ngx_uint_t  ngx_crash_http_active;\n" +
			"static ngx_int_t   ngx_crash_every = -1;\n" +
			"static ngx_uint_t  ngx_crash_seen;\n\n"},
		{"#endif\n\n    hc = ngx_pcalloc(c->pool, sizeof(ngx_http_connection_t));\n",
			"#endif\n\n    ngx_crash_http_active++;\n\n    hc = ngx_pcalloc(c->pool, sizeof(ngx_http_connection_t));\n"},
		{"    c = r->connection;\n\n#if (NGX_HTTP_SSL)\n\n    if (r->http_connection->ssl) {\n",
			"    c = r->connection;\n\n" +
				"    if (ngx_crash_every < 0) {\n" +
				"        char  *v = getenv(\"NGX_CRASH_EVERY\");\n" +
				"        ngx_crash_every = v ? ngx_atoi((u_char *) v, ngx_strlen(v)) : 0;\n" +
				"        if (ngx_crash_every == NGX_ERROR) {\n            ngx_crash_every = 0;\n        }\n" +
				"    }\n\n" +
				"    if (ngx_crash_every > 0 && ++ngx_crash_seen % ngx_crash_every == 0) {\n        raise(SIGSEGV);\n    }\n\n" +
				"#if (NGX_HTTP_SSL)\n\n    if (r->http_connection->ssl) {\n"},
		{"                   \"close http connection: %d\", c->fd);\n",
			"                   \"close http connection: %d\", c->fd);\n\n" +
				"    if (ngx_crash_http_active > 0) {\n        ngx_crash_http_active--;\n    }\n"},
	},
	"src/os/unix/ngx_process_cycle.c": {
		{"static void ngx_cache_manager_process_handler(ngx_event_t *ev);\n",
			"static void ngx_cache_manager_process_handler(ngx_event_t *ev);\n\n" +
				"/* A test build: a worker dies once it has run NGX_CRASH_IDLE_MS and holds no HTTP connection. */\n" +
				"ngx_uint_t         ngx_crash_http_active;\n" +
				"static ngx_int_t   ngx_crash_idle_ms = -1;\n" +
				"static ngx_msec_t  ngx_crash_start;\n"},
		{"        ngx_process_events_and_timers(cycle);\n\n        if (ngx_terminate) {\n",
			"        ngx_process_events_and_timers(cycle);\n\n" +
				"        if (ngx_crash_idle_ms < 0) {\n" +
				"            char  *v = getenv(\"NGX_CRASH_IDLE_MS\");\n" +
				"            ngx_crash_idle_ms = v ? ngx_atoi((u_char *) v, ngx_strlen(v)) : 0;\n" +
				"            if (ngx_crash_idle_ms == NGX_ERROR) {\n                ngx_crash_idle_ms = 0;\n            }\n" +
				"            ngx_crash_start = ngx_current_msec;\n" +
				"        }\n\n" +
				"        if (ngx_crash_idle_ms > 0 && !ngx_exiting && ngx_crash_http_active == 0\n" +
				"            && ngx_current_msec - ngx_crash_start >= (ngx_msec_t) ngx_crash_idle_ms)\n" +
				"        {\n            raise(SIGSEGV);\n        }\n\n" +
				"        if (ngx_terminate) {\n"},
	},
}

// crashingTarball resolves source:1.26.3 from the archive (its signature
// and sha256 checked, as a run does), applies crashEdits and writes
// nginx-1.26.3.tar.gz to a temporary directory.
func crashingTarball(t *testing.T) string {
	t.Helper()
	r, err := image.NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	b, err := image.ParseBuild("source:1.26.3")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.Resolve(ctx, &b); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(b.Res.Tarball())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	patched := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		_, name, _ := strings.Cut(h.Name, "/")
		if edits, ok := crashEdits[name]; ok {
			src := string(data)
			for _, e := range edits {
				if strings.Count(src, e[0]) < 1 {
					t.Fatalf("%s: anchor %q not found: the patch is for nginx 1.26.3", name, e[0])
				}
				src = strings.Replace(src, e[0], e[1], 1)
			}
			data, h.Size = []byte(src), int64(len(src))
			patched++
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if patched != len(crashEdits) {
		t.Fatalf("patched %d files of %d", patched, len(crashEdits))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nginx-1.26.3.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
