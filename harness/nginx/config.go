package nginx

import (
	_ "embed"
	"regexp"
	"strings"
)

// Paths nginx uses when its configuration names none.
const (
	defaultPidFile = "/run/nginx.pid"
	defaultErrLog  = "/var/log/nginx/error.log"
)

// DefaultConfig is the nginx.conf the harness uses when the user gives none:
// a small page on / and a slowly served file under /slow/ (the rate comes
// from the query, so each long download can be sized to span the scenario)
// on 8080; the same page over HTTP/2 with TLS on 8443 (the node writes a
// certificate generated for it under TLSDir before nginx -t); and, for the
// proxy, WebSocket and upload traffic, an upstream on 127.0.0.2:9000 in the
// container's network namespace (loadgen/backend, started by the scenario
// when the traffic needs it). nginx 1.22 spells HTTP/2 on the listen line;
// 1.25.1 and later accept it with a warning. The text is default.conf,
// embedded; nothing assigns to it.
//
//go:embed default.conf
var DefaultConfig string

// directive finds a main-context directive's first argument in nginx.conf
// text (pid, error_log), or returns def.
func directive(conf []byte, name, def string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+([^\s;]+)[^;]*;`)
	m := re.FindSubmatch(conf)
	if m == nil {
		return def
	}
	v := string(m[1])
	if name == "error_log" && (v == "stderr" || strings.HasPrefix(v, "syslog:")) {
		return def
	}
	return v
}
