package fault

import (
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
)

var _ Target = (*nginx.Node)(nil)
var _ Target = (*nginx.Sim)(nil)
