package words

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// ClassSummary writes "eof: 3, reset: 1", the largest first; client
// cancellations are not failures and are left out.
func ClassSummary(byClass map[string]int) string {
	var parts []string
	for _, c := range SortedClasses(byClass) {
		if c != record.ClassCancelled {
			parts = append(parts, fmt.Sprintf("%s: %d", c, byClass[c]))
		}
	}
	return strings.Join(parts, ", ")
}

// SortedClasses orders classes by count, the largest first.
func SortedClasses(byClass map[string]int) []string {
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		if byClass[classes[i]] != byClass[classes[j]] {
			return byClass[classes[i]] > byClass[classes[j]]
		}
		return classes[i] < classes[j]
	})
	return classes
}

// StepLabel names a step with its signal and target: "spawn-new-master
// (USR2 to 9)".
func StepLabel(st record.Step) string {
	switch {
	case st.Signal != "" && st.PID != 0:
		return fmt.Sprintf("%s (%s to %d)", st.Name, st.Signal, st.PID)
	case st.Signal != "":
		return fmt.Sprintf("%s (%s)", st.Name, st.Signal)
	}
	return st.Name
}

// Plural counts a noun: "1 request", "3 requests".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// FmtMs writes a run-clock offset for people: "2001 ms", "12.5 s".
func FmtMs(ms float64) string {
	if ms >= 10000 || ms <= -10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// RateWithCI writes "3.1 [1.2, 6.4]" (drops per 10,000 requests, 95% CI).
func RateWithCI(a *record.Aggregate) string {
	if a == nil || a.DropsPer10k == nil {
		return "— (no request)"
	}
	return fmt.Sprintf("%s [%s, %s] (%s in %d)", FmtRate(*a.DropsPer10k), FmtRate(a.CI95.Low), FmtRate(a.CI95.High),
		Plural(a.Dropped, "drop"), a.Requests)
}

// FmtRate writes drops per 10,000 requests: one decimal from 10 up, two
// below.
func FmtRate(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// FmtP writes a p-value to four decimals ("< 0.0001" below that).
func FmtP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}

// JoinAnd joins words as a sentence does: "a, b and c".
func JoinAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// StepOutcome says what a step did against what was expected of it.
func StepOutcome(st record.Step) string {
	switch {
	case st.Verified && st.Expected == record.ExpectFail:
		return "verified, expected to fail"
	case st.Verified:
		return "verified"
	case st.Expected == record.ExpectFail:
		return "failed, as expected"
	}
	return "NOT verified"
}

// BuildLabel labels a spec with what it resolved to, when known.
func BuildLabel(spec string, ref *record.BuildRef) string {
	if ref == nil || ref.Spec != spec {
		return spec
	}
	return ref.Label()
}

// CauseLines turns records back into one sentence per phase and text, as a
// person reads them: "phase (1 failed request, 3 retried requests): why".
func CauseLines(causes []record.Cause) []string {
	var out []string
	for i := 0; i < len(causes); {
		j := i
		var what []string
		failed, retried, cut := 0, 0, 0
		for ; j < len(causes) && causes[j].Phase == causes[i].Phase && causes[j].Text == causes[i].Text; j++ {
			switch causes[j].Class {
			case record.CauseRetried:
				retried += causes[j].Count
			case record.CauseSlowCut:
				cut += causes[j].Count
			case record.CauseStepFailed:
			default:
				failed += causes[j].Count
			}
		}
		if causes[i].Class == record.CauseStepFailed {
			out = append(out, causes[i].Text)
			i = j
			continue
		}
		if failed > 0 {
			what = append(what, Plural(failed, "failed request"))
		}
		if retried > 0 {
			what = append(what, Plural(retried, "retried request"))
		}
		if cut > 0 {
			what = append(what, Plural(cut, "cut download"))
		}
		out = append(out, fmt.Sprintf("%s (%s): %s", causes[i].Phase, strings.Join(what, ", "), causes[i].Text))
		i = j
	}
	return out
}

// InsecureArchiveNote is what every report says first when its builds were
// resolved with --insecure-archive.
const InsecureArchiveNote = "Archive signatures NOT checked (--insecure-archive): the Debian suites' InRelease files were taken without their signatures verified, so nothing vouches that the builds are Debian's."
