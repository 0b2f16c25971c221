package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/words"
)

func rateCell10k(a *record.Aggregate) string {
	if a == nil || a.DropsPer10k == nil {
		return "—"
	}
	return fmt.Sprintf("%s [%s, %s]", words.FmtRate(*a.DropsPer10k), words.FmtRate(a.CI95.Low), words.FmtRate(a.CI95.High))
}

// msNum writes milliseconds without a unit (the column names it), with
// precision that suits the size; "—" when there was no request.
func msNum(ms float64, requests int) string {
	if requests == 0 {
		return "—"
	}
	if ms >= 10 {
		return fmt.Sprintf("%.0f", ms)
	}
	return fmt.Sprintf("%.2f", ms)
}

// MdWriter writes Markdown to w and keeps the first error: a section is
// written whole, and its error read once at the end (Err).
type MdWriter struct {
	w   io.Writer
	err error
}

// NewMdWriter writes Markdown to w.
func NewMdWriter(w io.Writer) *MdWriter { return &MdWriter{w: w} }

// Printf writes, unless an earlier write failed.
func (m *MdWriter) Printf(format string, args ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, args...)
	}
}

// Err is the first write's error, if any.
func (m *MdWriter) Err() error { return m.err }

// MdCell makes text safe inside a Markdown table cell or list item: no
// table breaks, no HTML.
func MdCell(s string) string {
	return strings.NewReplacer(
		`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "\r", " ", "\n", " ", "`", "\\`",
		"*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	).Replace(s)
}

// MdCode makes text safe inside a `code span`.
func MdCode(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s)
}

func pidCell(pid int) string {
	if pid == 0 {
		return ""
	}
	return fmt.Sprint(pid)
}

func msCell(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

func latencyCell(ms float64, requests int) string {
	if requests == 0 {
		return "—"
	}
	return msCell(ms)
}

func rateCell(p record.Phase) string {
	if p.LoadMs == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", p.Rate)
}
