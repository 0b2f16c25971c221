package reports

import (
	"fmt"
	"strings"
)

// Site is the user's configuration tree a run was pointed at (run
// --config-dir): what nginx -T said it listens on and proxies to, what the
// harness ran beside it, what it added (nothing, unless said), and the
// load profiles that could not run against it.
type Site struct {
	Dir       string         `json:"dir"`   // the tree on the host
	Files     []string       `json:"files"` // the files nginx read, as nginx -T dumped them
	Listeners []SiteListener `json:"listeners"`
	// SkippedListeners are listen directives the load cannot use (a unix
	// socket, QUIC), each with why.
	SkippedListeners []string `json:"skipped_listeners,omitempty"`
	// Backends are the stand-ins the harness ran on the upstream addresses
	// the configuration names, or the user's own (--upstream-cmd).
	Backends []string `json:"backends"`
	// Added is what the harness added to the configuration for itself:
	// empty when it added nothing.
	Added []string `json:"added"`
	// Mounts are the read-only bind mounts (SRC:DST).
	Mounts []string `json:"mounts,omitempty"`
	// Proxied says, for each location that proxies, what asking for it
	// through nginx answered before the scenarios (who answered: the
	// stand-in, or not).
	Proxied []string `json:"proxied,omitempty"`
	// SkippedProfiles are the load profiles that cannot run against this
	// configuration, each with the reason; the rest ran.
	SkippedProfiles []SkippedProfile `json:"skipped_profiles"`
}

// SiteListener is one listening socket of the configuration.
type SiteListener struct {
	Address       string   `json:"address"`
	Port          int      `json:"port"`
	SSL           bool     `json:"ssl"`
	HTTP2         bool     `json:"http2"`
	Reuseport     bool     `json:"reuseport"`
	DefaultServer bool     `json:"default_server"`
	ServerNames   []string `json:"server_names"`
	// HostAddress is the 127.0.0.1:PORT Docker published the port on, in
	// this scenario's container ("" when not published).
	HostAddress string `json:"host_address"`
	// Load says whether, and how, the harness's own load reached it.
	Load string `json:"load,omitempty"`
}

// SkippedProfile is a load profile left out, and why.
type SkippedProfile struct {
	Profile string `json:"profile"`
	Reason  string `json:"reason"`
}

func (l SiteListener) name() string {
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
func writeMarkdownSite(mw *mdWriter, s *Site) {
	mw.printf("\n## Site under test\n\nConfiguration tree `%s` (%d files read by nginx), placed at /etc/nginx in each container.\n\n",
		mdCode(s.Dir), len(s.Files))
	mw.printf("| listener | server names | published on | load |\n| --- | --- | --- | --- |\n")
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
		mw.printf("| %s | %s | %s | %s |\n", mdCell(l.name()), mdCell(names), mdCell(host), mdCell(load))
	}
	for _, sk := range s.SkippedListeners {
		mw.printf("\n- listener %s", mdCell(sk))
	}
	if len(s.SkippedListeners) > 0 {
		mw.printf("\n")
	}
	mw.printf("\n")
	if len(s.Added) == 0 {
		mw.printf("- The harness added nothing to this configuration.\n")
	}
	for _, a := range s.Added {
		mw.printf("- Added by the harness: %s\n", mdCell(a))
	}
	for _, b := range s.Backends {
		mw.printf("- Upstream: %s\n", mdCell(b))
	}
	for _, m := range s.Mounts {
		mw.printf("- Mounted read-only: `%s`\n", mdCode(m))
	}
	for _, p := range s.Proxied {
		mw.printf("- Proxied location: %s\n", mdCell(p))
	}
	for _, p := range s.SkippedProfiles {
		mw.printf("- Not run against this configuration: **%s** — %s\n", mdCell(p.Profile), mdCell(p.Reason))
	}
}
