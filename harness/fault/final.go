package fault

import "strings"

// finalOf is the binary a scenario ends on when a fault leaves it be.
func finalOf(scenario string) string {
	switch {
	case strings.HasPrefix(scenario, "upgrade"):
		return "new"
	}
	return "old"
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
