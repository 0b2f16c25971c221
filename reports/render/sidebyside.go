package render

import (
	"slices"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// sideBySide puts the candidate and the baseline next to each other: the
// pairs, what `nginx -V` says of each new binary (version, library,
// configure arguments only one of them has), the binaries' hashes and the
// configuration. Rows are label, candidate, baseline; nil without a
// baseline or provenance.
func sideBySide(r *record.Report) [][3]string {
	if r.Baseline == nil || r.Provenance == nil {
		return nil
	}
	find := func(from, to string) *record.ImageProvenance {
		for i := range r.Provenance.Images {
			if im := &r.Provenance.Images[i]; im.From == from && im.To == to {
				return im
			}
		}
		return nil
	}
	cand, base := find(r.From, r.To), find(r.Baseline.From, r.Baseline.To)
	rows := [][3]string{{"pair", r.From + " → " + r.To, r.Baseline.From + " → " + r.Baseline.To}}
	bin := func(im *record.ImageProvenance) *record.BinaryIdentity {
		if im == nil {
			return nil
		}
		return im.New
	}
	cb, bb := bin(cand), bin(base)
	line := func(b *record.BinaryIdentity, prefix string) string {
		if b == nil {
			return "unknown"
		}
		for _, l := range strings.Split(b.V, "\n") {
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
		}
		return "—"
	}
	rows = append(rows,
		[3]string{"new binary", line(cb, "nginx version:"), line(bb, "nginx version:")},
		[3]string{"built with", line(cb, "built with"), line(bb, "built with")})
	ca, ba := strings.Fields(line(cb, "configure arguments:")), strings.Fields(line(bb, "configure arguments:"))
	onlyC, onlyB := difference(ca, ba), difference(ba, ca)
	if len(onlyC) == 0 && len(onlyB) == 0 {
		rows = append(rows, [3]string{"configure arguments", "the same", "the same"})
	} else {
		rows = append(rows, [3]string{"configure arguments only here", orNone(onlyC), orNone(onlyB)})
	}
	sha := func(b *record.BinaryIdentity) string {
		if b == nil {
			return "unknown"
		}
		return b.SHA256
	}
	rows = append(rows, [3]string{"new binary sha256", sha(cb), sha(bb)})
	conf := r.Provenance.ConfigSHA256 + " (the same file for both)"
	rows = append(rows, [3]string{"nginx.conf sha256", conf, conf})
	for _, c := range r.Comparisons {
		if c.Baseline == nil {
			continue
		}
		rows = append(rows, [3]string{c.Scenario + ": drops per 10k [95% CI]", rateCell10k(c.Candidate), rateCell10k(c.Baseline)})
	}
	return rows
}

func difference(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, " ")
}

func writeSideBySide(mw *MdWriter, rows [][3]string) {
	if rows == nil {
		return
	}
	mw.Printf("\n| side by side | candidate | baseline |\n| --- | --- | --- |\n")
	for _, r := range rows {
		mw.Printf("| %s | %s | %s |\n", MdCell(r[0]), MdCell(r[1]), MdCell(r[2]))
	}
}
