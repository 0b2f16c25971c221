package words

import (
	"fmt"
	"strconv"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// rateWithCI writes "3.1 [1.2, 6.4]" (drops per 10,000 requests, 95% CI).
func RateWithCI(a *record.Aggregate) string {
	if a == nil || a.DropsPer10k == nil {
		return "— (no request)"
	}
	return fmt.Sprintf("%s [%s, %s] (%s in %d)", FmtRate(*a.DropsPer10k), FmtRate(a.CI95.Low), FmtRate(a.CI95.High),
		Plural(a.Dropped, "drop"), a.Requests)
}

func FmtRate(v float64) string {
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func FmtP(p float64) string {
	if p < 0.0001 {
		return "< 0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}
