package render

import (
	"fmt"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func listenerName(l record.SiteListener) string {
	s := fmt.Sprintf("%s:%d", l.Address, l.Port)
	for _, p := range []struct {
		on   bool
		name string
	}{{l.SSL, "ssl"}, {l.HTTP2, "http2"}, {l.Reuseport, "reuseport"}, {l.DefaultServer, "default_server"}} {
		if p.on {
			s += " " + p.name
		}
	}
	return s
}

// writeMarkdownSite is the report's "Site under test" section.
func writeMarkdownSite(mw *MdWriter, s *record.Site) {
	mw.Printf("\n## Site under test\n\nConfiguration tree `%s` (%d files read by nginx), placed at /etc/nginx in each container.\n\n",
		MdCode(s.Dir), len(s.Files))
	mw.Printf("| listener | server names | published on | load |\n| --- | --- | --- | --- |\n")
	for _, l := range s.Listeners {
		names := strings.Join(l.ServerNames, " ")
		if names == "" {
			names = "—"
		}
		host := l.HostAddress
		if host == "" {
			host = "not published"
		}
		load := l.Load
		if load == "" {
			load = "—"
		}
		mw.Printf("| %s | %s | %s | %s |\n", MdCell(listenerName(l)), MdCell(names), MdCell(host), MdCell(load))
	}
	for _, sk := range s.SkippedListeners {
		mw.Printf("\n- listener %s", MdCell(sk))
	}
	if len(s.SkippedListeners) > 0 {
		mw.Printf("\n")
	}
	mw.Printf("\n")
	if len(s.Added) == 0 {
		mw.Printf("- The harness added nothing to this configuration.\n")
	}
	for _, a := range s.Added {
		mw.Printf("- Added by the harness: %s\n", MdCell(a))
	}
	for _, b := range s.Backends {
		mw.Printf("- Upstream: %s\n", MdCell(b))
	}
	for _, m := range s.Mounts {
		mw.Printf("- Mounted read-only: `%s`\n", MdCode(m))
	}
	for _, p := range s.Proxied {
		mw.Printf("- Proxied location: %s\n", MdCell(p))
	}
	for _, p := range s.SkippedProfiles {
		mw.Printf("- Not run against this configuration: **%s** — %s\n", MdCell(p.Profile), MdCell(p.Reason))
	}
}
