package words

import (
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

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
