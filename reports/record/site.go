package record

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
