package nginx

// A user's configuration tree: what `nginx -T` says it listens on and
// proxies to, read before any scenario's container exists (the ports to
// publish must be known when the container is created).

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Listener is one listening socket the configuration declares (every
// server block's listen on the same address and port merged).
type Listener struct {
	Addr          string   `json:"address"` // "*" (every IPv4 address), "127.0.0.1", "[::]", …
	Port          int      `json:"port"`
	SSL           bool     `json:"ssl"`
	HTTP2         bool     `json:"http2"` // `listen … http2` or `http2 on;` in a server on it
	Reuseport     bool     `json:"reuseport"`
	DefaultServer bool     `json:"default_server"`
	ServerNames   []string `json:"server_names"`
	// HostAddr is the 127.0.0.1:PORT Docker published the port on ("" when
	// it is not published: the load reaches it from inside the container's
	// network namespace only).
	HostAddr string `json:"host_address,omitempty"`
}

// String is ADDR:PORT with its parameters, as a report names it.
func (l Listener) String() string {
	s := l.Addr + ":" + strconv.Itoa(l.Port)
	for _, p := range []struct {
		on   bool
		name string
	}{{l.SSL, "ssl"}, {l.HTTP2, "http2"}, {l.Reuseport, "reuseport"}, {l.DefaultServer, "default_server"}} {
		if p.on {
			s += " " + p.name
		}
	}
	if len(l.ServerNames) > 0 {
		s += " (" + strings.Join(l.ServerNames, " ") + ")"
	}
	return s
}

// Wildcard tells whether the listener accepts on every address of its
// family (then Docker's port proxy, which connects to the container's
// IPv4 address, reaches an IPv4 one).
func (l Listener) Wildcard() bool { return l.Addr == "*" || l.Addr == "0.0.0.0" || l.Addr == "[::]" }

// IPv6 tells whether the listener is on an IPv6 address.
func (l Listener) IPv6() bool { return strings.HasPrefix(l.Addr, "[") }

// Loopback tells whether the listener's address is a loopback address.
func (l Listener) Loopback() bool {
	ip := net.ParseIP(strings.Trim(l.Addr, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Site is what a configuration tree declares, read from `nginx -T`.
type Site struct {
	Listeners []Listener `json:"listeners"`
	// Skipped are listen directives the load cannot use (unix sockets,
	// QUIC), each with why.
	Skipped []string `json:"skipped,omitempty"`
	// Upstreams are the HOST:PORT addresses the configuration proxies to
	// (proxy_pass, grpc_pass and upstream { server … }), in order, each once.
	Upstreams []string `json:"upstreams,omitempty"`
	// Files are the configuration files nginx read, in the order it dumped them.
	Files []string `json:"files"`
	// Proxied are the locations that proxy to an upstream, with where they
	// are served.
	Proxied []Proxied `json:"proxied,omitempty"`
}

// Proxied is a location that proxies (proxy_pass, grpc_pass) to addresses.
type Proxied struct {
	Location string `json:"location"` // its path; "" for a regular expression
	// Ports are its server's plain-HTTP listeners' ports on every IPv4
	// address (where it can be asked for over HTTP/1.1 without TLS).
	Ports      []int    `json:"ports"`
	ServerName string   `json:"server_name"` // its server's first name ("" when none is a plain name)
	Upstreams  []string `json:"upstreams"`   // HOST:PORT, an upstream block's servers
}

// Ports are the TCP ports of the listeners, each once, in order.
func (s *Site) Ports() []int {
	var out []int
	seen := map[int]bool{}
	for _, l := range s.Listeners {
		if !seen[l.Port] {
			seen[l.Port] = true
			out = append(out, l.Port)
		}
	}
	return out
}

// dumpMarker starts each file in `nginx -T` output.
const dumpMarker = "# configuration file "

// ParseDump reads `nginx -T` output (stdout; nginx's own "syntax is ok"
// lines may be mixed in): each file after its "# configuration file
// PATH:" marker, the first one the main file. Includes are expanded from
// the dumped files (globs matched against their paths, in sorted order),
// then every server block's listen, server_name and http2, every
// upstream's servers and every proxy_pass are read.
func ParseDump(dump string) (*Site, error) {
	files := map[string]string{}
	var order []string
	var cur string
	var b strings.Builder
	flush := func() {
		if cur != "" {
			files[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(dump, "\n") {
		t := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(t, dumpMarker) && strings.HasSuffix(t, ":") {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(t, dumpMarker), ":")
			if _, dup := files[cur]; !dup {
				order = append(order, cur)
			}
			continue
		}
		if cur != "" {
			b.WriteString(line)
		}
	}
	flush()
	if len(order) == 0 {
		return nil, fmt.Errorf("nginx -T printed no %q marker: not a configuration dump", strings.TrimSpace(dumpMarker))
	}
	p := &dumpParser{files: files, order: order, prefix: path.Dir(order[0])}
	stmts, err := p.parseFile(order[0], 0)
	if err != nil {
		return nil, err
	}
	site := &Site{Files: order}
	w := &siteWalker{site: site, index: map[string]int{}, upstreamNames: map[string]bool{}, upstreamAddrs: map[string][]string{}, seenUp: map[string]bool{}}
	w.collectUpstreamNames(stmts)
	w.walk(stmts, nil)
	return site, nil
}

// stmt is one directive: its name, arguments and, for a block, its body.
type stmt struct {
	name  string
	args  []string
	block []stmt
	isBlk bool
}

type dumpParser struct {
	files  map[string]string
	order  []string
	prefix string // the main file's directory: relative includes are relative to it
}

func (p *dumpParser) parseFile(name string, depth int) ([]stmt, error) {
	if depth > 20 {
		return nil, fmt.Errorf("include nesting deeper than 20 at %s", name)
	}
	toks, err := tokenize(p.files[name])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	i := 0
	stmts, err := p.parseBlock(toks, &i, name, depth, false)
	return stmts, err
}

func (p *dumpParser) parseBlock(toks []token, i *int, file string, depth int, inBlock bool) ([]stmt, error) {
	var out []stmt
	var words []string
	for *i < len(toks) {
		t := toks[*i]
		*i++
		switch {
		case !t.quoted && t.s == ";":
			if len(words) == 0 {
				continue
			}
			s := stmt{name: words[0], args: words[1:]}
			words = nil
			if s.name == "include" && len(s.args) == 1 {
				inc, err := p.expand(s.args[0], depth)
				if err != nil {
					return nil, err
				}
				out = append(out, inc...)
				continue
			}
			out = append(out, s)
		case !t.quoted && t.s == "{":
			if len(words) == 0 {
				return nil, fmt.Errorf("%s: a block with no name", file)
			}
			body, err := p.parseBlock(toks, i, file, depth, true)
			if err != nil {
				return nil, err
			}
			out = append(out, stmt{name: words[0], args: words[1:], block: body, isBlk: true})
			words = nil
		case !t.quoted && t.s == "}":
			if !inBlock {
				return nil, fmt.Errorf("%s: unexpected }", file)
			}
			return out, nil
		default:
			words = append(words, t.s)
		}
	}
	if inBlock {
		return nil, fmt.Errorf("%s: unexpected end of file, expecting }", file)
	}
	return out, nil
}

// expand is an include's files, in sorted order as nginx reads a glob.
func (p *dumpParser) expand(pattern string, depth int) ([]stmt, error) {
	if !strings.HasPrefix(pattern, "/") {
		pattern = path.Join(p.prefix, pattern)
	}
	var names []string
	for _, f := range p.order {
		if ok, _ := path.Match(pattern, f); ok {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	var out []stmt
	for _, f := range names {
		s, err := p.parseFile(f, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

type token struct {
	s      string
	quoted bool
}

// tokenize splits nginx configuration text into words, quoted strings and
// the ; { } separators; # starts a comment outside quotes.
func tokenize(text string) ([]token, error) {
	var toks []token
	var word strings.Builder
	inWord := false
	end := func() {
		if inWord {
			toks = append(toks, token{s: word.String()})
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '#' && !inWord:
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			end()
		case c == ';' || c == '{' || c == '}':
			end()
			toks = append(toks, token{s: string(c)})
		case (c == '"' || c == '\'') && !inWord:
			q := c
			var s strings.Builder
			i++
			for ; i < len(text) && text[i] != q; i++ {
				if text[i] == '\\' && i+1 < len(text) {
					i++
				}
				s.WriteByte(text[i])
			}
			if i >= len(text) {
				return nil, fmt.Errorf("unterminated quoted string")
			}
			toks = append(toks, token{s: s.String(), quoted: true})
		case c == '\\' && i+1 < len(text):
			i++
			word.WriteByte(text[i])
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	end()
	return toks, nil
}

type siteWalker struct {
	site          *Site
	index         map[string]int // ADDR:PORT → Listeners index
	upstreamNames map[string]bool
	upstreamAddrs map[string][]string // an upstream block's servers, HOST:PORT
	seenUp        map[string]bool
	// Where the walk is: the server (nil outside one) and the location.
	srv *Proxied
	loc string
}

func (w *siteWalker) collectUpstreamNames(stmts []stmt) {
	for _, s := range stmts {
		if s.isBlk && s.name == "upstream" && len(s.args) == 1 {
			w.upstreamNames[s.args[0]] = true
			for _, u := range s.block {
				if u.name == "server" && len(u.args) > 0 && !strings.HasPrefix(u.args[0], "unix:") {
					w.upstreamAddrs[s.args[0]] = append(w.upstreamAddrs[s.args[0]], withPort(u.args[0], "80"))
				}
			}
		}
		if s.isBlk {
			w.collectUpstreamNames(s.block)
		}
	}
}

func (w *siteWalker) walk(stmts []stmt, ctx []string) {
	for _, s := range stmts {
		switch {
		case s.isBlk && s.name == "server" && len(ctx) > 0 && ctx[len(ctx)-1] == "http":
			w.srv = w.server(s)
			w.walk(s.block, append(ctx, "server"))
			w.srv, w.loc = nil, ""
		case s.isBlk && s.name == "location" && len(s.args) > 0:
			outer := w.loc
			switch {
			case len(s.args) == 1:
				w.loc = s.args[0]
			case s.args[0] == "=" || s.args[0] == "^~":
				w.loc = s.args[1]
			default:
				w.loc = "" // a regular expression: no path to ask for
			}
			w.walk(s.block, append(ctx, "location"))
			w.loc = outer
		case s.isBlk && s.name == "upstream":
			for _, u := range s.block {
				if u.name == "server" && len(u.args) > 0 {
					w.upstream(u.args[0], "")
				}
			}
		case s.isBlk && (s.name == "stream" || s.name == "mail"):
			// Not HTTP: its listeners are not the load's, its upstreams not ours.
		case s.isBlk:
			w.walk(s.block, append(ctx, s.name))
		case (s.name == "proxy_pass" || s.name == "grpc_pass") && len(s.args) == 1:
			addrs := w.passURL(s.args[0])
			if w.srv != nil && len(addrs) > 0 {
				p := *w.srv
				p.Location, p.Upstreams = w.loc, addrs
				w.site.Proxied = append(w.site.Proxied, p)
			}
		}
	}
}

// server reads one http server block's listeners; it returns where the
// block's locations are served (for Proxied).
func (w *siteWalker) server(s stmt) *Proxied {
	var names []string
	http2 := false
	var listens [][]string
	for _, d := range s.block {
		switch {
		case d.isBlk:
		case d.name == "server_name":
			for _, n := range d.args {
				if n != "" && n != `""` {
					names = append(names, n)
				}
			}
		case d.name == "http2" && len(d.args) == 1 && d.args[0] == "on":
			http2 = true
		case d.name == "listen" && len(d.args) > 0:
			listens = append(listens, d.args)
		}
	}
	if len(listens) == 0 {
		listens = [][]string{{"80"}} // nginx's default: *:80
	}
	where := &Proxied{}
	for _, args := range listens {
		l, skip := parseListen(args)
		if skip != "" {
			w.site.Skipped = append(w.site.Skipped, skip)
			continue
		}
		l.HTTP2 = l.HTTP2 || http2
		key := l.Addr + ":" + strconv.Itoa(l.Port)
		i, ok := w.index[key]
		if !ok {
			w.index[key] = len(w.site.Listeners)
			w.site.Listeners = append(w.site.Listeners, l)
			i = len(w.site.Listeners) - 1
		} else {
			m := &w.site.Listeners[i]
			m.SSL, m.HTTP2, m.Reuseport = m.SSL || l.SSL, m.HTTP2 || l.HTTP2, m.Reuseport || l.Reuseport
			m.DefaultServer = m.DefaultServer || l.DefaultServer
		}
		m := &w.site.Listeners[i]
		for _, n := range names {
			if !hasString(m.ServerNames, n) {
				m.ServerNames = append(m.ServerNames, n)
			}
		}
		if l.Addr == "*" && !l.SSL && !hasInt(where.Ports, l.Port) {
			where.Ports = append(where.Ports, l.Port)
		}
	}
	for _, n := range names {
		if n != "_" && !strings.ContainsAny(n, "*~") && !strings.HasPrefix(n, ".") {
			where.ServerName = n
			break
		}
	}
	return where
}

func hasInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

// parseListen reads a listen directive's arguments; skip says why one the
// load cannot use is left out.
func parseListen(args []string) (l Listener, skip string) {
	a := args[0]
	if strings.HasPrefix(a, "unix:") {
		return l, "listen " + a + ": a unix socket (the load speaks TCP): skipped"
	}
	for _, p := range args[1:] {
		switch {
		case p == "ssl":
			l.SSL = true
		case p == "http2":
			l.HTTP2 = true
		case p == "reuseport":
			l.Reuseport = true
		case p == "default_server" || p == "default":
			l.DefaultServer = true
		case p == "quic" || p == "http3":
			return l, "listen " + strings.Join(args, " ") + ": QUIC (UDP): skipped"
		}
	}
	host, port := "*", 80
	switch {
	case strings.HasPrefix(a, "["):
		end := strings.Index(a, "]")
		if end < 0 {
			return l, "listen " + a + ": not an address: skipped"
		}
		host = a[:end+1]
		if rest := a[end+1:]; strings.HasPrefix(rest, ":") {
			n, err := strconv.Atoi(rest[1:])
			if err != nil {
				return l, "listen " + a + ": not a port: skipped"
			}
			port = n
		}
	case isDigits(a):
		port, _ = strconv.Atoi(a)
	default:
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			host = a // an address alone: port 80
		} else {
			host = h
			n, err := strconv.Atoi(p)
			if err != nil {
				return l, "listen " + a + ": not a port: skipped"
			}
			port = n
		}
	}
	if host == "0.0.0.0" {
		host = "*"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	l.Addr, l.Port = host, port
	return l, ""
}

// passURL records the address a proxy_pass or grpc_pass URL names (not
// an upstream block's name, not one built from variables) and returns
// the addresses it goes to (an upstream block's servers for its name).
func (w *siteWalker) passURL(u string) []string {
	if strings.Contains(u, "$") {
		return nil
	}
	def := "80"
	switch {
	case strings.HasPrefix(u, "https://"), strings.HasPrefix(u, "grpcs://"):
		def = "443"
	}
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	if strings.HasPrefix(u, "unix:") {
		return nil
	}
	if w.upstreamNames[u] {
		return w.upstreamAddrs[u]
	}
	w.upstream(u, def)
	return []string{withPort(u, def)}
}

// withPort is HOST:PORT, with port def when a has none.
func withPort(a, def string) string {
	if _, _, err := net.SplitHostPort(a); err != nil {
		return net.JoinHostPort(strings.Trim(a, "[]"), def)
	}
	return a
}

// upstream records HOST[:PORT] (port def, or 80, when absent).
func (w *siteWalker) upstream(a, def string) {
	if strings.HasPrefix(a, "unix:") {
		return
	}
	if def == "" {
		def = "80"
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		a = net.JoinHostPort(strings.Trim(a, "[]"), def)
	}
	if !w.seenUp[a] {
		w.seenUp[a] = true
		w.site.Upstreams = append(w.site.Upstreams, a)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ParseListenArgs reads a listen directive's arguments (as parseListen):
// the listener, or why the load cannot use it.
func ParseListenArgs(args []string) (Listener, string) { return parseListen(args) }
