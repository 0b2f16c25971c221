package image

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The InRelease files in testdata are the mirror's (the one this host's apt
// sources name), fetched on 2026-12-06; signers are what gpgv said of them
// against the keyring package.
var recorded = []struct {
	suite   string
	signers []string // signing (sub)key fingerprints
}{
	{"bookworm-updates", []string{"4CB50190207B4758A3F73A796ED0E7B82643E131", "B8E5F13176D2A7A75220028078DBA3BC47EF2265"}},
	{"bookworm-security", []string{"ED541312A33F1128F10B1C6C54404762BBB6E853", "B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8"}},
}

// recordedRelease returns a recorded InRelease and a moment to check it
// at: an hour after its Date, when it was signed and valid.
func recordedRelease(t *testing.T, suite string) ([]byte, time.Time) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", suite+".InRelease"))
	if err != nil {
		t.Fatal(err)
	}
	date, err := time.Parse(time.RFC1123, deb822Fields(string(releaseText(raw)))["date"])
	if err != nil {
		t.Fatal(err)
	}
	return raw, date.Add(time.Hour)
}

func testKeyring(t *testing.T) openpgp.EntityList {
	t.Helper()
	keys, err := archiveKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// tamper changes one byte of the signed text: a digit of the hash the
// Release file gives for the package index.
func tamper(t *testing.T, raw []byte) []byte {
	t.Helper()
	i := bytes.Index(raw, []byte("main/binary-amd64/Packages.xz\n"))
	line := bytes.LastIndexByte(raw[:i], '\n') + 2 // the hash's first digit, after the leading space
	out := bytes.Clone(raw)
	if out[line] == '0' {
		out[line] = '1'
	} else {
		out[line] = '0'
	}
	if bytes.Equal(out, raw) || i < 0 {
		t.Fatal("nothing changed")
	}
	return out
}

func signatureError(t *testing.T, err error) *SignatureError {
	t.Helper()
	var se *SignatureError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *SignatureError", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error on more than one line: %q", err)
	}
	return se
}

func TestVerifyRecordedRelease(t *testing.T) {
	keys := testKeyring(t)
	for _, rc := range recorded {
		raw, date := recordedRelease(t, rc.suite)
		body, err := verifyRelease(rc.suite, raw, keys, date)
		if err != nil {
			t.Fatalf("%s: %v", rc.suite, err)
		}
		if f := deb822Fields(string(body)); f["codename"] != rc.suite || len(releaseHashes(string(body))) == 0 {
			t.Errorf("%s: signed text %q…", rc.suite, body[:80])
		}
		if strings.Contains(string(body), "PGP") {
			t.Errorf("%s: the signed text holds armor", rc.suite)
		}
		// From a host whose clock is behind the archive's.
		if _, err := verifyRelease(rc.suite, raw, keys, date.Add(-3*time.Hour)); err != nil {
			t.Errorf("%s, clock 2 h behind the signature: %v", rc.suite, err)
		}
	}
}

// One byte changed in the signed text: a bad signature, naming the suite
// and every key whose signature no longer holds.
func TestVerifyReleaseTamperedByte(t *testing.T) {
	keys := testKeyring(t)
	for _, rc := range recorded {
		raw, date := recordedRelease(t, rc.suite)
		_, err := verifyRelease(rc.suite, tamper(t, raw), keys, date)
		se := signatureError(t, err)
		if se.Suite != rc.suite || strings.Join(se.Keys, " ") != strings.Join(rc.signers, " ") || !strings.Contains(se.Why, "bad signature") {
			t.Errorf("%s: %+v", rc.suite, se)
		}
		for _, want := range append([]string{"suite " + rc.suite + ":", "bad signature"}, rc.signers...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", rc.suite, err, want)
			}
		}
	}
}

// throwawaySigned signs text with a key made for the test.
func throwawaySigned(t *testing.T, text []byte, now time.Time) ([]byte, *openpgp.Entity) {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return now.Add(-time.Hour) }}
	e, err := openpgp.NewEntity("throwaway", "test", "nobody@invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, e.PrivateKey, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), e
}

// A well-formed signature by a key the tool does not ship: refused, with
// that key named. The same file passes with the key added, so the refusal
// is the key set's.
func TestVerifyReleaseUnknownKey(t *testing.T) {
	keys := testKeyring(t)
	raw, date := recordedRelease(t, "bookworm-updates")
	forged, e := throwawaySigned(t, releaseText(raw), date)
	_, err := verifyRelease("bookworm-updates", forged, keys, date)
	se := signatureError(t, err)
	fp := strings.ToUpper(string(hexOf(e.PrimaryKey.Fingerprint)))
	if se.Suite != "bookworm-updates" || len(se.Keys) != 1 || se.Keys[0] != fp || !strings.Contains(err.Error(), "signed by no Debian archive key") {
		t.Errorf("%v (throwaway key %s)", err, fp)
	}
	if _, err := verifyRelease("bookworm-updates", forged, append(keys, e), date); err != nil {
		t.Errorf("with the throwaway key in the key ring: %v", err)
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// A Release file with no signature at all is refused.
func TestVerifyReleaseUnsigned(t *testing.T) {
	raw, date := recordedRelease(t, "bookworm-updates")
	_, err := verifyRelease("bookworm-updates", releaseText(raw), testKeyring(t), date)
	if se := signatureError(t, err); !strings.Contains(se.Why, "not signed") {
		t.Errorf("%v", err)
	}
}

// The reader over HTTP: a tampered InRelease is a *SignatureError before
// any index is read; with --insecure-archive it is taken as it is.
func TestArchiveReaderChecksSignature(t *testing.T) {
	raw, date := recordedRelease(t, "bookworm-updates")
	var serve []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debian/dists/bookworm-updates/InRelease" {
			http.NotFound(w, r)
			return
		}
		w.Write(serve)
	}))
	defer srv.Close()
	cache := t.TempDir()
	os.MkdirAll(filepath.Join(cache, "index"), 0o755)
	s := suiteRef{name: "bookworm-updates", uri: srv.URL + "/debian", components: []string{"main"}}
	for _, tc := range []struct {
		name     string
		file     []byte
		insecure bool
		bad      bool
	}{
		{"recorded", raw, false, false},
		{"tampered", tamper(t, raw), false, true},
		{"tampered, --insecure-archive", tamper(t, raw), true, false},
	} {
		a, err := newArchiveReader(cache)
		if err != nil {
			t.Fatal(err)
		}
		a.now, a.insecure, serve = func() time.Time { return date }, tc.insecure, tc.file
		// The package index the file names, parsed, as the cache keeps it
		// by its hash: the reader needs only the InRelease from the server.
		h := releaseHashes(string(releaseText(tc.file)))["main/binary-"+debArch()+"/Packages.xz"]
		os.WriteFile(filepath.Join(cache, "index", h.sum+".json"), []byte("[]"), 0o644)
		idx, err := a.read(context.Background(), s)
		if tc.bad {
			signatureError(t, err)
			continue
		}
		if err != nil || idx.Suite != "bookworm-updates" {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// The embedded keys are blocks of the keyring package's file, byte for
// byte, and exactly the ones archiveKeyFingerprints names.
func TestEmbeddedKeysMatchTheKeyringPackage(t *testing.T) {
	const pkgKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	pkg, err := os.ReadFile(pkgKeyring)
	if err != nil {
		t.Fatalf("the embedded keys are checked against Debian's keyring package, and %s cannot be read (%v): apt-get install debian-archive-keyring (scripts/deps.sh installs it)", pkgKeyring, err)
	}
	blocks := keyBlocks(t, debianArchiveKeys)
	embedded := testKeyring(t)
	if len(blocks) != len(archiveKeyFingerprints) || len(embedded) != len(blocks) {
		t.Fatalf("%d key blocks embedded (%d keys read), %d named", len(blocks), len(embedded), len(archiveKeyFingerprints))
	}
	for i, e := range embedded {
		fp := strings.ToUpper(string(hexOf(e.PrimaryKey.Fingerprint)))
		name, ok := archiveKeyFingerprints[fp]
		switch {
		case !ok:
			t.Errorf("embedded key %s is not named in archiveKeyFingerprints", fp)
		case !bytes.Contains(pkg, blocks[i]):
			t.Errorf("embedded key %s (%s) is not, byte for byte, in %s: copy its block from there again", fp, name, pkgKeyring)
		}
	}
}

// keyBlocks splits a binary key ring into its keys' packets, each from a
// public key packet (tag 6) to the next.
func keyBlocks(t *testing.T, ring []byte) [][]byte {
	t.Helper()
	var starts []int
	for off := 0; off < len(ring); {
		tag, n, ok := packetAt(ring[off:])
		if !ok {
			t.Fatalf("key ring: no packet at offset %d", off)
		}
		if tag == 6 {
			starts = append(starts, off)
		}
		off += n
	}
	var out [][]byte
	for i, s := range starts {
		end := len(ring)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		out = append(out, ring[s:end])
	}
	return out
}

// packetAt reads an OpenPGP packet header (RFC 4880 4.2; no partial
// lengths, which key rings do not use): its tag and whole length.
func packetAt(b []byte) (tag, n int, ok bool) {
	if len(b) < 2 || b[0]&0x80 == 0 {
		return 0, 0, false
	}
	if b[0]&0x40 == 0 { // old format
		tag = int(b[0]>>2) & 0x0f
		switch b[0] & 3 {
		case 0:
			return tag, 2 + int(b[1]), true
		case 1:
			return tag, 3 + (int(b[1])<<8 | int(b[2])), len(b) >= 3
		case 2:
			if len(b) < 5 {
				return 0, 0, false
			}
			return tag, 5 + (int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])), true
		}
		return 0, 0, false
	}
	tag = int(b[0] & 0x3f)
	switch l := int(b[1]); {
	case l < 192:
		return tag, 2 + l, true
	case l < 224 && len(b) >= 3:
		return tag, 3 + ((l-192)<<8 + int(b[2]) + 192), true
	case l == 255 && len(b) >= 6:
		return tag, 6 + (int(b[2])<<24 | int(b[3])<<16 | int(b[4])<<8 | int(b[5])), true
	}
	return 0, 0, false
}
