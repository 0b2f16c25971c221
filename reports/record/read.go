package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrMissing marks a file that is not there (as opposed to unreadable).
var ErrMissing = errors.New("missing")

// ReadJSON reads a whole JSON file into v.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %w", filepath.Base(path), ErrMissing)
	}
	if err != nil {
		return err
	}
	if err := notRecord(bytes.TrimSpace(data)); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// notRecord rejects JSON that decodes without error into a record and
// yet is none: null (it leaves the record zero — a download never
// completed, a step never verified), a number, a string, an array. Every
// file and line the harness writes is one object.
func notRecord(data []byte) error {
	if len(data) > 0 && data[0] == '{' {
		return nil
	}
	if len(data) > 40 {
		data = append(data[:37:37], "..."...)
	}
	return fmt.Errorf("not a record: %q (want a JSON object)", data)
}

// jsonlProblem is what went wrong reading a JSON-lines file part way:
// records read before it have been handed on.
type jsonlProblem struct {
	file    string
	line    int
	records int
	err     error
	cut     bool // the last line has no newline and does not parse: the writer was stopped mid-line
}

func (p *jsonlProblem) Error() string {
	if p.cut {
		return fmt.Sprintf("%s truncated: line %d is cut short after %d records", p.file, p.line, p.records)
	}
	return fmt.Sprintf("%s line %d: %v", p.file, p.line, p.err)
}

// ReadJSONL streams a JSON-lines file, calling each with every record in
// turn. It never holds more than one line. A missing file yields an error
// wrapping ErrMissing; a bad line stops the reading with a *jsonlProblem.
func ReadJSONL[T any](path string, each func(*T)) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %w", filepath.Base(path), ErrMissing)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	rd := bufio.NewReaderSize(f, 64<<10)
	var records, line int
	for {
		data, err := rd.ReadBytes('\n')
		if len(data) > 0 {
			line++
			complete := data[len(data)-1] == '\n'
			if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 {
				var rec T
				uerr := notRecord(trimmed)
				if uerr == nil {
					uerr = json.Unmarshal(trimmed, &rec)
				}
				if uerr != nil {
					return &jsonlProblem{file: filepath.Base(path), line: line, records: records, err: uerr, cut: !complete}
				}
				each(&rec)
				records++
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
}

// readFirstLine reads the first non-empty line of a small text file.
func readFirstLine(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l, nil
		}
	}
	return "(error.txt is empty)", nil
}

// Exists tells whether a record file is there.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
