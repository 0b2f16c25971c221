package judge

import (
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func StepAsExpected(st record.Step) bool { return st.Verified != (st.Expected == record.ExpectFail) }
