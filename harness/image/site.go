package image

// The small site the default configuration serves, and file helpers.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// siteEntries is the content served by the default configuration: a small
// page and a 32 MiB file with deterministic content for long downloads.
func siteEntries() []tarEntry {
	page := `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nginx-upgrade-harness</title>
</head>
<body>
<h1>nginx-upgrade-harness</h1>
<p>This page is served by the nginx under test while the harness upgrades its
binary in place (USR2, WINCH, QUIT) under load. Every request for it is
counted: a request that fails, or a connection the server closes under a
request, is a dropped request.</p>
<p>Long downloads of <a href="/slow/big.bin">/slow/big.bin</a> (32 MiB) span the
transitions, so that a worker that exits too early cuts them short.</p>
</body>
</html>
`
	return []tarEntry{
		{name: "srv/www", mode: 0o755, dir: true},
		{name: "srv/www/slow", mode: 0o755, dir: true},
		{name: "srv/www/index.html", mode: 0o644, data: []byte(page)},
		{name: "srv/www/slow/big.bin", mode: 0o644, data: bigFile()},
	}
}

// bigFile is sha256("nginx-upgrade-harness big.bin <n>") for n = 0, 1, …
// concatenated: deterministic, and not compressible.
func bigFile() []byte {
	out := make([]byte, 0, bigFileSize)
	for n := 0; len(out) < bigFileSize; n++ {
		s := sha256.Sum256([]byte(fmt.Sprintf("nginx-upgrade-harness big.bin %d", n)))
		out = append(out, s[:]...)
	}
	return out[:bigFileSize]
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReader(f)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// tailBuffer collects a command's output; Tail gives its last lines on one line.
type tailBuffer struct{ bytes.Buffer }

func (t *tailBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimSpace(t.String()), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	if len(keep) == 0 {
		return "(no output)"
	}
	return strings.Join(keep, " | ")
}

// inspectImage is InspectImage (which takes no context) under a deadline.
func inspectImage(ctx context.Context, pool *dockertest.Pool, ref string) (*dc.Image, error) {
	var img *dc.Image
	err := harness.Bounded(ctx, harness.CallTimeout, func() error {
		var err error
		img, err = pool.Client.InspectImage(ref)
		return err
	})
	return img, err
}
