package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteAll writes dir/report.json, dir/report.md and dir/report.html. Each
// file appears whole or not at all (written aside, then renamed).
func WriteAll(dir string, r *Report) error {
	for _, out := range []struct {
		name  string
		write func(io.Writer, *Report) error
	}{
		{ReportJSON, WriteJSON},
		{ReportMarkdown, WriteMarkdown},
		{ReportHTML, WriteHTML},
	} {
		if err := writeFileAtomic(filepath.Join(dir, out.name), func(w io.Writer) error { return out.write(w, r) }); err != nil {
			return fmt.Errorf("write %s: %w", out.name, err)
		}
	}
	return nil
}

// WriteJSON writes the report as report.json's contract.
func WriteJSON(w io.Writer, r *Report) error { return writeIndentedJSON(w, r) }

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ReadReport reads a report.json back (to re-render or compare it).
func ReadReport(path string) (*Report, error) {
	var r Report
	if err := readJSON(path, &r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return &r, nil
}

func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	bw := bufio.NewWriterSize(tmp, 64<<10)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Render rebuilds report.json, report.md and report.html from the records in dir.
func Render(dir string) (*Report, error) {
	r, err := BuildRun(dir)
	if err != nil {
		return nil, fmt.Errorf("build report from %s: %w", dir, err)
	}
	if err := WriteAll(dir, r); err != nil {
		return nil, fmt.Errorf("write report to %s: %w", dir, err)
	}
	return r, nil
}
