package image

// The Debian archive's signing keys, shipped with the tool, and the check
// of a suite's InRelease against them: no gpgv, no keyring on the host.

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// debianArchiveKeys are the keys that sign the suites the harness reads:
// their blocks of /usr/share/keyrings/debian-archive-keyring.gpg (Debian's
// debian-archive-keyring 2023.3+deb12u2), copied byte for byte; the keys
// are named in archiveKeyFingerprints. Keys of that keyring that sign none
// of those suites (bullseye's archive and release keys) are left out.
// TestEmbeddedKeysMatchTheKeyringPackage holds them to the package.
//
//go:embed keys/debian-archive.gpg
var debianArchiveKeys []byte

// archiveKeyFingerprints are the primary keys embedded, with what each
// signed when checked against the mirror (2026-12-06).
var archiveKeyFingerprints = map[string]string{
	"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8": "Debian Archive Automatic Signing Key (12/bookworm): bookworm, bookworm-updates, trixie, trixie-updates, sid",
	"04B54C3CDCA79751B16BC6B5225629DF75B188BD": "Debian Archive Automatic Signing Key (13/trixie): bookworm, bookworm-updates, trixie, trixie-updates, sid",
	"4D64FEC119C2029067D6E791F8D2585B8783D481": "Debian Stable Release Key (12/bookworm): bookworm",
	"41587F7DB8C774BCCF131416762F67A0B2C39DE4": "Debian Stable Release Key (13/trixie): trixie",
	"AC530D520F2F3269F5E98313A48449044AAD5C5D": "Debian Security Archive Automatic Signing Key (11/bullseye): bookworm-security",
	"05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0": "Debian Security Archive Automatic Signing Key (12/bookworm): bookworm-security, trixie-security",
	"5E04A1E3223A19A20706E20F9904613D4CCE68C6": "Debian Security Archive Automatic Signing Key (13/trixie): trixie-security",
}

// archiveKeyring parses the embedded keys.
func archiveKeyring() (openpgp.EntityList, error) {
	keys, err := openpgp.ReadKeyRing(bytes.NewReader(debianArchiveKeys))
	if err != nil {
		return nil, fmt.Errorf("the embedded Debian archive keys: %v", err)
	}
	return keys, nil
}

// SignatureError says that a suite's InRelease is not signed by Debian's
// archive keys: altered on the way, or signed by someone else. Unlike an
// unreachable archive, nothing falls back on the cache or the lock then.
type SignatureError struct {
	Suite string
	Keys  []string // the key ids the signatures name (fingerprints where given)
	Why   string
}

func (e *SignatureError) Error() string {
	keys := "no key named"
	switch len(e.Keys) {
	case 0:
	case 1:
		keys = "key " + e.Keys[0]
	default:
		keys = "keys " + strings.Join(e.Keys, ", ")
	}
	return fmt.Sprintf("suite %s: InRelease %s (%s); nothing falls back on the cache or the lock: a tampered archive is not an unreachable one", e.Suite, e.Why, keys)
}

// verifyRelease checks a suite's InRelease against keys at time now and
// returns the signed text. As apt does, it takes the file when at least
// one signature is good and made by one of keys, and none made by one of
// keys is bad; signatures by other keys are not counted.
func verifyRelease(suite string, raw []byte, keys openpgp.EntityList, now time.Time) ([]byte, error) {
	block, _ := clearsign.Decode(raw)
	if block == nil {
		return nil, &SignatureError{Suite: suite, Why: "is not signed"}
	}
	sigs, body, err := signaturePackets(block)
	if err != nil {
		return nil, &SignatureError{Suite: suite, Why: "has an unreadable signature: " + oneLineErr(err)}
	}
	var good, bad, unknown, refused []string
	var refusedWhy string
	for _, sig := range sigs {
		id := issuerName(sig)
		signer := keys.KeysByIdUsage(*sig.IssuerKeyId, packet.KeyFlagSign)
		if len(signer) == 0 {
			unknown = append(unknown, id)
			continue
		}
		// One key ring per signature: the library verifies the first
		// signature whose key it holds, and every one is to be checked.
		only := openpgp.EntityList{signer[0].Entity}
		// A signature this host's clock places in the future (a clock
		// behind the archive's) is checked at the moment it was made: the
		// keys' expiry still counts, and time only moves forward.
		at := now
		if sig.CreationTime.After(at) {
			at = sig.CreationTime
		}
		config := &packet.Config{Time: func() time.Time { return at }}
		_, _, err := openpgp.VerifyDetachedSignature(only, bytes.NewReader(block.Bytes), bytes.NewReader(body), config)
		var sigErr pgperrors.SignatureError
		switch {
		case err == nil:
			good = append(good, id)
		case errors.As(err, &sigErr):
			bad = append(bad, id)
		default: // expired or revoked: not good, not a forgery either
			refused, refusedWhy = append(refused, id), oneLineErr(err)
		}
	}
	switch {
	case len(bad) > 0:
		return nil, &SignatureError{Suite: suite, Keys: bad, Why: "has a bad signature: its text was changed after it was signed"}
	case len(good) > 0:
		return block.Plaintext, nil
	case len(refused) > 0:
		return nil, &SignatureError{Suite: suite, Keys: refused, Why: "is signed by no valid Debian archive key: " + refusedWhy}
	}
	return nil, &SignatureError{Suite: suite, Keys: unknown, Why: "is signed by no Debian archive key the tool ships"}
}

// signaturePackets reads the signatures of a clearsigned block, and
// returns them with the packets' bytes.
func signaturePackets(block *clearsign.Block) ([]*packet.Signature, []byte, error) {
	if block.ArmoredSignature == nil {
		return nil, nil, errors.New("no signature")
	}
	body, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, nil, err
	}
	var out []*packet.Signature
	r := packet.NewReader(bytes.NewReader(body))
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		sig, ok := p.(*packet.Signature)
		if !ok || sig.IssuerKeyId == nil {
			return nil, nil, errors.New("a packet that is not a signature with an issuer")
		}
		out = append(out, sig)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no signature")
	}
	return out, body, nil
}

// issuerName is how a signature names its key: the fingerprint where it
// gives one, else the 64-bit key id.
func issuerName(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) > 0 {
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	return fmt.Sprintf("%016X", *sig.IssuerKeyId)
}

// releaseText is the text of an InRelease taken without its signature
// checked (--insecure-archive).
func releaseText(raw []byte) []byte {
	if block, _ := clearsign.Decode(raw); block != nil {
		return block.Plaintext
	}
	return raw
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
