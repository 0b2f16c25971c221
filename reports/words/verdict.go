package words

import (
	"fmt"
	"sort"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// classSummary writes "eof: 3, reset: 1", the largest first; client
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

// sortedClasses orders classes by count, the largest first.
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

func StepLabel(st record.Step) string {
	switch {
	case st.Signal != "" && st.PID != 0:
		return fmt.Sprintf("%s (%s to %d)", st.Name, st.Signal, st.PID)
	case st.Signal != "":
		return fmt.Sprintf("%s (%s)", st.Name, st.Signal)
	}
	return st.Name
}

func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtMs writes a run-clock offset for people: "2001 ms", "12.5 s".
func FmtMs(ms float64) string {
	if ms >= 10000 || ms <= -10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
