package words

import (
	"fmt"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// causeLines turns records back into one sentence per phase and text, as a
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
