package scenarios

import (
	"strings"
	"testing"
)

// Without a static build of the CLI there is no heartbeat, and meta.json
// says why: never a silent fallback.
func TestHeartbeatPlanSaysWhyItIsAbsent(t *testing.T) {
	for _, tc := range []struct {
		bin, want string
	}{
		{"", "no static build of the CLI"},
		{"/bin/sh", "dynamically linked"},
		{"/nonexistent/nginx-upgrade-harness", "no such file"},
	} {
		plan := Params{Heartbeat: tc.bin}.heartbeatPlan()
		if plan == nil || plan.IntervalMs != 20 || !strings.Contains(plan.Absent, tc.want) {
			t.Errorf("heartbeat %q: plan %+v, want absent saying %q", tc.bin, plan, tc.want)
		}
	}
}
