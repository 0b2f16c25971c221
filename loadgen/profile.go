package loadgen

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults and bounds of a load.
const (
	DefaultPath          = "/"
	DefaultTimeout       = 5 * time.Second
	DefaultDuration      = 10 * time.Minute // bound on an attack when the caller sets none
	MaxRate              = 50000            // requests per second per profile
	DefaultSlowPath      = "/slow/big.bin"
	DefaultSlowBytes     = 32 << 20
	DefaultSlowRate      = 2 << 20 // bytes per second asked with ?rate= (16 s for the default file)
	MaxSlow              = 256     // long downloads per load
	SlowProfile          = "slow"  // ConnRecord.Profile of the long downloads
	resultsFlushInterval = 250 * time.Millisecond
)

// Profile is one stream of requests at a constant rate. Several profiles can
// run at once in one load; each has its own transport (and so its own
// connections), all accounted by the same dialer.
type Profile struct {
	Name        string        // names its results (vegeta's Attack field) and connections; default e.g. "GET-keepalive"
	Rate        int           // requests per second, constant pacer (1..MaxRate)
	Method      string        // GET (default), HEAD or POST
	Body        []byte        // request body, for POST
	Path        string        // request path (and query), default "/"
	KeepAlive   bool          // reuse connections; false: a new connection per request
	Connections int           // cap on open connections (0: no cap)
	Timeout     time.Duration // per request, default 5 s
	Duration    time.Duration // bound on the attack, default 10 min; StopAttack ends it sooner
	// Workers, with Rate 0, sends as fast as that many workers can (vegeta's
	// -rate=0): for measuring the highest sustained rate, not for scenarios.
	Workers uint64
	// MaxRequests bounds the attack in count (0: Rate × Duration).
	MaxRequests uint64
	// Target, when set, is this profile's base URL instead of the load's
	// (e.g. https://127.0.0.1:8443 for HTTP/2); loopback only, http or
	// https. An https target speaks TLS with a session cache of the
	// profile's own (resumption is counted per connection).
	Target string
	// HTTP2 sends every request as a stream of HTTP/2 over TLS (ALPN h2;
	// Target must be https). Streams are accounted one by one
	// (streams.jsonl), connections as for HTTP/1.1.
	HTTP2 bool
	// TLS says how to speak TLS to an https Target.
	TLS TLSOptions
	// Targets, when set, are the requests this profile sends round-robin
	// instead of Method, Path and Body on the load's base URL (a user's
	// targets file, ReadTargets). Their URLs may name any host: every
	// connection is dialed to Route's address for the URL's port, the
	// URL's host kept as Host and TLS server name. TargetIndex gives each
	// target's index in the whole list (default: its position), which its
	// results carry (TargetIndex).
	Targets     []Target
	TargetIndex []int
	Route       Route
}

// Slow is a set of long downloads of a file of known size, fetched at a
// limited rate so that they span the upgrade's transitions.
type Slow struct {
	Count         int           // number of downloads (0: none; at most MaxSlow)
	Path          string        // default "/slow/big.bin"
	ExpectedBytes int64         // size of the file, default DefaultSlowBytes
	BytesPerSec   int64         // sent as ?rate=; default DefaultSlowRate
	Timeout       time.Duration // per download, default 3× its nominal duration + 30 s
	// HoldTail, when set, makes each download stop reading with this many
	// bytes still to come until the load's ReleaseDownloads: a download
	// that would end before the step it must outlast is sent waits for it
	// with its last bytes still in the server's hands. The server keeps
	// writing into the socket buffers meanwhile (a few MiB on loopback),
	// so the tail must be larger than those for the server to hold data
	// of its own; nginx's log says when it finished (analysis checks it).
	HoldTail int64 `json:",omitempty"`
}

func (p Profile) withDefaults(i int) (Profile, error) {
	if p.Method == "" {
		p.Method = "GET"
	}
	p.Method = strings.ToUpper(p.Method)
	switch p.Method {
	case "GET", "HEAD", "POST":
	default:
		return p, fmt.Errorf("profile %d: method %q: want GET, HEAD or POST", i, p.Method)
	}
	if p.Name == "" {
		ka := "close"
		if p.KeepAlive {
			ka = "keepalive"
		}
		if p.HTTP2 {
			ka = "h2"
		}
		p.Name = p.Method + "-" + ka
		if i > 0 {
			p.Name += "-" + strconv.Itoa(i)
		}
	}
	if p.Rate == 0 && p.Workers > 0 {
		// As fast as possible: bounded by Workers, Duration and MaxRequests.
	} else if p.Rate <= 0 || p.Rate > MaxRate {
		return p, fmt.Errorf("profile %s: rate %d: want 1..%d", p.Name, p.Rate, MaxRate)
	}
	if p.Path == "" {
		p.Path = DefaultPath
	}
	if !strings.HasPrefix(p.Path, "/") {
		return p, fmt.Errorf("profile %s: path %q must start with /", p.Name, p.Path)
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.Duration <= 0 {
		p.Duration = DefaultDuration
	}
	if p.Connections < 0 {
		return p, fmt.Errorf("profile %s: connections %d < 0", p.Name, p.Connections)
	}
	if p.Name == SlowProfile {
		return p, fmt.Errorf("profile %s: name is reserved for the long downloads", p.Name)
	}
	if p.Target != "" {
		if _, err := checkTarget(p.Target, true); err != nil {
			return p, fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	if err := p.checkTargets(); err != nil {
		return p, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	if p.HTTP2 && len(p.Targets) == 0 && !strings.HasPrefix(p.Target, "https://") {
		return p, fmt.Errorf("profile %s: HTTP/2 needs an https target (HTTP/2 over TLS, ALPN h2)", p.Name)
	}
	return p, nil
}

// maxHits bounds the attack in count as well as in time.
func (p Profile) maxHits() uint64 {
	if p.Rate == 0 {
		if p.MaxRequests > 0 {
			return p.MaxRequests
		}
		return 1 << 40 // Duration bounds it
	}
	n := uint64(p.Rate)*uint64(p.Duration/time.Second+1) + 1
	if p.MaxRequests > 0 && p.MaxRequests < n {
		n = p.MaxRequests
	}
	return n
}

func (s Slow) withDefaults() (Slow, error) {
	if s.Count < 0 || s.Count > MaxSlow {
		return s, fmt.Errorf("slow: count %d: want 0..%d", s.Count, MaxSlow)
	}
	if s.Path == "" {
		s.Path = DefaultSlowPath
	}
	if !strings.HasPrefix(s.Path, "/") {
		return s, fmt.Errorf("slow: path %q must start with /", s.Path)
	}
	if s.ExpectedBytes <= 0 {
		s.ExpectedBytes = DefaultSlowBytes
	}
	if s.BytesPerSec <= 0 {
		s.BytesPerSec = DefaultSlowRate
	}
	if s.HoldTail < 0 || s.HoldTail >= s.ExpectedBytes {
		return s, fmt.Errorf("slow: hold tail %d: want 0..%d", s.HoldTail, s.ExpectedBytes-1)
	}
	if s.Timeout <= 0 {
		nominal := time.Duration(float64(s.ExpectedBytes) / float64(s.BytesPerSec) * float64(time.Second))
		s.Timeout = 3*nominal + 30*time.Second
	}
	return s, nil
}

func (s Slow) url(base string) string {
	sep := "?"
	if strings.Contains(s.Path, "?") {
		sep = "&"
	}
	return base + s.Path + sep + "rate=" + strconv.FormatInt(s.BytesPerSec, 10)
}

// CheckTarget parses target (e.g. "http://127.0.0.1:8080") and refuses any
// host other than 127.0.0.1, ::1 or localhost. It returns the base URL
// (scheme and host, no path) requests are built on.
func CheckTarget(target string) (string, error) { return checkTarget(target, false) }

// checkTarget is CheckTarget, allowing https when tlsOK.
func checkTarget(target string, tlsOK bool) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("target %q: %w", target, err)
	}
	switch {
	case u.Scheme == "http", u.Scheme == "https" && tlsOK:
	case tlsOK:
		return "", fmt.Errorf("target %q: scheme %q: want http or https", target, u.Scheme)
	default:
		return "", fmt.Errorf("target %q: scheme %q: want http", target, u.Scheme)
	}
	if !isLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("target %q: host %q is not loopback (127.0.0.1, ::1, localhost)", target, u.Hostname())
	}
	if u.User != nil {
		return "", fmt.Errorf("target %q: no user info allowed", target)
	}
	return u.Scheme + "://" + u.Host, nil
}
