package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults and bounds of the uploads.
const (
	UploadProfile       = "upload"
	DefaultUploadPath   = "/upload"
	DefaultUploadBytes  = 4 << 20
	DefaultUploadRate   = 1 << 20 // bytes per second: 4 s per default upload
	MaxUploads          = 256
	MaxUploadBytes      = 64 << 20
	uploadChunk         = 16 << 10
	uploadFailurePause  = 100 * time.Millisecond // bounds the loop of an uploader whose uploads fail at once
	headerUploadSha256  = "X-Upload-Sha256"      // what loadgen/backend answers
	headerUploadByteLen = "X-Upload-Bytes"
)

// UploadRecord.Outcome values.
const (
	UploadOK        = "ok"
	UploadFailed    = "failed"    // a drop
	UploadCancelled = "cancelled" // the run was aborted: not a drop
)

// Uploads is a set of large request bodies sent at a limited rate, so that
// some are always still being sent when a signal lands. Each of Count
// uploaders sends one upload after the other until the load stops.
type Uploads struct {
	Name        string        // profile name in records; default "upload"
	Count       int           // uploads in flight at once (0: none; at most MaxUploads)
	Target      string        // base URL (http:// or https://; default the load's target)
	Path        string        // default "/upload"
	Bytes       int64         // body size, default 4 MiB (at most 64 MiB)
	BytesPerSec int64         // sending rate, default 1 MiB/s
	KeepAlive   bool          // reuse connections between uploads (default: a new connection each)
	Timeout     time.Duration // per upload, default 3× its nominal duration + 30 s
	TLS         TLSOptions
}

// WithUploads adds uploads to the load (uploads.jsonl).
func WithUploads(u Uploads) Option { return func(o *options) { o.up = u } }

func (u Uploads) withDefaults() (Uploads, error) {
	if u.Count < 0 || u.Count > MaxUploads {
		return u, fmt.Errorf("uploads: count %d: want 0..%d", u.Count, MaxUploads)
	}
	if u.Name == "" {
		u.Name = UploadProfile
	}
	if u.Path == "" {
		u.Path = DefaultUploadPath
	}
	if !strings.HasPrefix(u.Path, "/") {
		return u, fmt.Errorf("uploads: path %q must start with /", u.Path)
	}
	if u.Target != "" {
		if _, err := checkTarget(u.Target, true); err != nil {
			return u, fmt.Errorf("uploads: %w", err)
		}
	}
	if u.Bytes <= 0 {
		u.Bytes = DefaultUploadBytes
	}
	if u.Bytes > MaxUploadBytes {
		return u, fmt.Errorf("uploads: %d bytes: at most %d", u.Bytes, MaxUploadBytes)
	}
	if u.BytesPerSec <= 0 {
		u.BytesPerSec = DefaultUploadRate
	}
	if u.Timeout <= 0 {
		nominal := time.Duration(float64(u.Bytes) / float64(u.BytesPerSec) * float64(time.Second))
		u.Timeout = 3*nominal + 30*time.Second
	}
	return u, nil
}

// UploadRecord is one upload.
type UploadRecord struct {
	ID      int     `json:"id"`
	Profile string  `json:"profile"`
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Bytes   int64   `json:"bytes"` // the body's size
	// Sent counts the body bytes the transport took from the body (written
	// or buffered to be written) before the upload ended.
	Sent   int64 `json:"sent"`
	Status int   `json:"status,omitempty"`
	// ServerPid is the worker that answered (PidHeader), when the answer said.
	ServerPid int `json:"server_pid,omitempty"`
	// Verified: the answer carried the body's length and SHA-256 (as
	// loadgen/backend answers) and they match what was sent.
	Verified bool   `json:"verified"`
	Outcome  string `json:"outcome"`         // ok, failed or cancelled
	Class    string `json:"class,omitempty"` // of a failure: reset, closed, refused, timeout, status_NNN, wrong_answer, error
	Error    string `json:"error,omitempty"`
}

// uploadStats are the running totals of the uploads.
type uploadStats struct {
	started, ok, failed, cancelled, sent atomic.Int64
}

// UploadSummary totals the uploads.
type UploadSummary struct {
	Started   int64 `json:"started"`
	OK        int64 `json:"ok"`
	Failed    int64 `json:"failed"`    // drops
	Cancelled int64 `json:"cancelled"` // the run aborted: not drops
	BytesSent int64 `json:"bytes_sent"`
}

func (s *uploadStats) summary() UploadSummary {
	return UploadSummary{Started: s.started.Load(), OK: s.ok.Load(), Failed: s.failed.Load(),
		Cancelled: s.cancelled.Load(), BytesSent: s.sent.Load()}
}

// uploadBody is the body every upload sends: a fixed pattern, so that its
// SHA-256 is known once.
func uploadBody(n int64) ([]byte, string) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// throttled reads body at rate bytes per second on average, counting what
// it handed out.
type throttled struct {
	ctx   context.Context
	body  []byte
	off   int64
	rate  int64
	start time.Time
	sent  *atomic.Int64
}

func (r *throttled) Read(p []byte) (int, error) {
	if r.off >= int64(len(r.body)) {
		return 0, io.EOF
	}
	if r.start.IsZero() {
		r.start = time.Now()
	}
	due := r.start.Add(time.Duration(float64(r.off) / float64(r.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return 0, r.ctx.Err()
		}
	}
	n := copy(p[:min(len(p), uploadChunk)], r.body[r.off:])
	r.off += int64(n)
	r.sent.Store(r.off)
	return n, nil
}

// upload sends one upload and records it.
func upload(ctx context.Context, client *http.Client, u Uploads, url string, body []byte, sum string, rec *UploadRecord) {
	var sent atomic.Int64
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url,
			&throttled{ctx: ctx, body: body, rate: u.BytesPerSec, sent: &sent})
		if err != nil {
			return err
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(RequestIDHeader, "upload/"+strconv.Itoa(rec.ID))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		rec.Status = resp.StatusCode
		rec.ServerPid, _ = strconv.Atoi(resp.Header.Get(PidHeader))
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
			return err
		}
		if got := resp.Header.Get(headerUploadSha256); got != "" {
			if got != sum || resp.Header.Get(headerUploadByteLen) != strconv.Itoa(len(body)) {
				return fmt.Errorf("%sthe server received %s bytes (sha256 %.12s), %d were sent (sha256 %.12s)",
					errWrongAnswerPrefix, resp.Header.Get(headerUploadByteLen), got, len(body), sum)
			}
			rec.Verified = true
		}
		return nil
	}()
	rec.Sent = sent.Load()
	switch {
	case err == nil && rec.Status >= 200 && rec.Status < 300:
		rec.Outcome = UploadOK
	case err == nil:
		rec.Outcome, rec.Class = UploadFailed, "status_"+strconv.Itoa(rec.Status)
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		rec.Outcome = UploadCancelled
	default:
		rec.Outcome, rec.Class = UploadFailed, requestClass(err)
	}
	if err != nil {
		rec.Error = err.Error()
	}
}

// requestClass names what ended a failed HTTP/1.1 request, as the client
// saw it.
func requestClass(err error) string {
	switch {
	case WrongAnswer(err.Error()):
		return "wrong_answer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		strings.Contains(err.Error(), "Timeout exceeded"):
		return "timeout"
	case errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "server closed"), strings.Contains(err.Error(), "EOF"):
		return "closed"
	}
	return "error"
}
