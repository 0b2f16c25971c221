package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync/atomic"
)

// TLSOptions says how a profile speaks TLS to an https target.
type TLSOptions struct {
	// ServerName is sent as SNI and, with RootCAs, checked against the
	// certificate. Default: the target's host.
	ServerName string
	// RootCAs verifies the server's certificate (e.g. the CA of the
	// certificate generated for the run). Nil: the certificate is not
	// verified — the load measures drops, not trust, and the target is
	// always loopback.
	RootCAs *x509.CertPool
}

// TLS handshake outcomes in ConnRecord.TLS.
const (
	TLSFull    = "full"    // a full handshake: no session resumed
	TLSResumed = "resumed" // the session of an earlier connection was resumed
	TLSFailed  = "failed"  // the handshake did not complete
)

// tlsStats counts one profile's handshakes.
type tlsStats struct {
	full, resumed, failed atomic.Int64
}

// tlsConfig is one profile's client configuration, with a session cache of
// its own so that resumption is measured per profile: after an upgrade, a
// new nginx master that cannot resume the old master's sessions shows as
// full handshakes (a cost, not a drop).
func tlsConfig(o TLSOptions, host string, alpn []string) *tls.Config {
	cfg := &tls.Config{
		ServerName:         o.ServerName,
		RootCAs:            o.RootCAs,
		InsecureSkipVerify: o.RootCAs == nil,
		NextProtos:         alpn,
		ClientSessionCache: tls.NewLRUClientSessionCache(1024),
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// tlsDialer dials through the tracker (so the TCP connection is accounted
// as any other) and runs the TLS handshake on the tracked connection,
// recording whether it resumed a session.
//
// With sniByHost (a targets profile, whose URLs name the user's hosts), the
// server name is the host of addr, the URL's, unless cfg names one.
func (t *tracker) tlsDialer(dial dialFunc, cfg *tls.Config, stats *tlsStats, sniByHost bool) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conf := cfg
		if sniByHost && cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("loadgen: dial %s: %w", addr, err)
			}
			conf = cfg.Clone() // shares the session cache
			conf.ServerName = host
		}
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, conf)
		c := nc.(*trackedConn)
		if err := tc.HandshakeContext(ctx); err != nil {
			stats.failed.Add(1)
			c.setTLS(TLSFailed, "")
			nc.Close()
			return nil, fmt.Errorf("loadgen: tls handshake with %s: %w", addr, err)
		}
		st := tc.ConnectionState()
		if st.DidResume {
			stats.resumed.Add(1)
			c.setTLS(TLSResumed, st.NegotiatedProtocol)
		} else {
			stats.full.Add(1)
			c.setTLS(TLSFull, st.NegotiatedProtocol)
		}
		return tc, nil
	}
}

// connOf finds the tracked connection under what net/http or the HTTP/2
// transport reports in GotConn.
func connOf(c net.Conn) *trackedConn {
	switch v := c.(type) {
	case *trackedConn:
		return v
	case *tls.Conn:
		tc, _ := v.NetConn().(*trackedConn)
		return tc
	case *h2Conn:
		return connOf(v.Conn)
	}
	return nil
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// dialFor is the dialer of one client: the tracker's, through the client's
// route when it has one (the address asked for names the user's host; the
// address dialed is 127.0.0.1, which the tracker's dialer checks again).
func (t *tracker) dialFor(cfg clientConfig) dialFunc {
	dial := t.dialer(cfg.profile)
	if cfg.route == nil {
		return dial
	}
	route := cfg.route
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, err := route.resolve(addr)
		if err != nil {
			return nil, err
		}
		return dial(ctx, network, to)
	}
}
