package nginx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// Where the node puts the certificate and key generated for it, and the
// port DefaultConfig serves HTTP/2 over TLS on. A user's nginx.conf that
// names these paths gets the same per-node certificate.
const (
	TLSDir  = "/etc/nginx/nuh-tls"
	TLSCert = TLSDir + "/cert.pem"
	TLSKey  = TLSDir + "/key.pem"
	// TLSPort is published on 127.0.0.1 like ListenPort (nothing answers
	// there unless the config listens on it).
	TLSPort = 8443
)

// Certificate is a self-signed certificate and its key, PEM-encoded.
type Certificate struct {
	CertPEM, KeyPEM []byte
	// Cert is the parsed certificate (a client may trust it as its own root).
	Cert *x509.Certificate
}

// NewCertificate generates, in memory, a self-signed ECDSA P-256
// certificate for 127.0.0.1, ::1 and localhost, valid for a day: one per
// node, never written anywhere but into the node's container.
func NewCertificate() (Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificate{}, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "nginx-upgrade-harness", Organization: []string{"nginx-upgrade-harness"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Certificate{}, fmt.Errorf("self-sign TLS certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Certificate{}, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Certificate{}, err
	}
	return Certificate{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Cert:    cert,
	}, nil
}

// usesTLSDir tells whether an nginx.conf names the node's TLS directory.
func usesTLSDir(conf []byte) bool { return bytes.Contains(conf, []byte(TLSDir+"/")) }

// installCertificate writes a new certificate and key into the container,
// before nginx -t reads them: the key readable by root only (the master
// reads it before it switches user).
func (n *Node) installCertificate(ctx context.Context) error {
	c, err := NewCertificate()
	if err != nil {
		return err
	}
	r, err := n.Exec(ctx, "mkdir", "-p", "-m", "0755", TLSDir)
	if err != nil {
		return fmt.Errorf("create %s: %w", TLSDir, err)
	}
	if r.Exit != 0 {
		return fmt.Errorf("create %s: %s", TLSDir, harness.LastLine(r.Stderr))
	}
	if err := n.WriteFile(ctx, TLSCert, c.CertPEM, 0o644); err != nil {
		return err
	}
	if err := n.WriteFile(ctx, TLSKey, c.KeyPEM, 0o600); err != nil {
		return err
	}
	n.cert = c.Cert
	return nil
}

// Certificate is the certificate generated for this node (nil when its
// config names no file under TLSDir).
func (n *Node) Certificate() *x509.Certificate { return n.cert }
