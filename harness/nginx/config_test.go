package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The default nginx.conf was a Go string before it became default.conf:
// the embedded text is byte for byte what that string held (its SHA-256
// and length, taken from the string), so no run changed with the move.
// Edit default.conf on purpose, and this test is where the new sum goes.
func TestDefaultConfigIsTheFormerString(t *testing.T) {
	const wantSHA256, wantLen = "00a9dfb51ef2571e54d389a0e1f62a5330a4a5c4126413da7eb256abca1e2df0", 3310
	sum := sha256.Sum256([]byte(DefaultConfig))
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 || len(DefaultConfig) != wantLen {
		t.Fatalf("DefaultConfig: sha256 %s, %d bytes; want %s, %d bytes", got, len(DefaultConfig), wantSHA256, wantLen)
	}
	if got := directive([]byte(DefaultConfig), "pid", ""); got != defaultPidFile {
		t.Errorf("DefaultConfig's pid is %q, want %q", got, defaultPidFile)
	}
	if got := directive([]byte(DefaultConfig), "error_log", ""); got != defaultErrLog {
		t.Errorf("DefaultConfig's error_log is %q, want %q", got, defaultErrLog)
	}
}
