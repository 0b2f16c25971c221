package fault

import "github.com/releng-tools/nginx-upgrade-harness/harness"

var _ Target = (*harness.Node)(nil)
var _ Target = (*harness.Sim)(nil)
