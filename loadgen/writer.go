package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// flushSize is the buffered size at which a file is written out between
// periodic flushes.
const flushSize = 64 << 10

// msgFile buffers whole messages and writes them to its file only between
// messages, so that the file on disk always ends on a message boundary: a
// reader (vegeta's gob decoder, a JSON-lines reader) sees complete records
// while the run is still going. gob's Encoder and json's Encoder both emit
// each message with a single Write call, which is what makes this hold.
// It is safe for concurrent use.
type msgFile struct {
	mu     sync.Mutex
	name   string
	f      *os.File
	buf    []byte
	err    error // first write error, sticky
	closed bool
}

func createMsgFile(dir, name string) (*msgFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("loadgen: create %s: %w", name, err)
	}
	return &msgFile{name: name, f: f, buf: make([]byte, 0, flushSize+4096)}, nil
}

// Write appends one whole message. Writes after Close are dropped.
func (m *msgFile) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return len(p), nil
	}
	m.buf = append(m.buf, p...)
	if len(m.buf) >= flushSize {
		m.flushLocked()
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (m *msgFile) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushLocked()
	return m.err
}

func (m *msgFile) flushLocked() {
	if len(m.buf) == 0 || m.closed {
		return
	}
	if m.err == nil {
		if _, err := m.f.Write(m.buf); err != nil {
			m.err = fmt.Errorf("loadgen: write %s: %w", m.name, err)
		}
	}
	m.buf = m.buf[:0]
}

// Close flushes and closes the file; later writes are dropped.
func (m *msgFile) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.err
	}
	m.flushLocked()
	m.closed = true
	if err := m.f.Close(); err != nil && m.err == nil {
		m.err = fmt.Errorf("loadgen: close %s: %w", m.name, err)
	}
	return m.err
}

// jsonl writes one JSON value per line to a msgFile.
type jsonl struct {
	file *msgFile
	mu   sync.Mutex
	enc  *json.Encoder
}

func newJSONL(f *msgFile) *jsonl { return &jsonl{file: f, enc: json.NewEncoder(f)} }

// Put writes v as one line. Encoding errors (impossible for the record types
// here) are kept as the file's error.
func (j *jsonl) Put(v any) {
	j.mu.Lock()
	err := j.enc.Encode(v)
	j.mu.Unlock()
	if err != nil {
		j.file.mu.Lock()
		if j.file.err == nil {
			j.file.err = fmt.Errorf("loadgen: encode %s: %w", j.file.name, err)
		}
		j.file.mu.Unlock()
	}
}
