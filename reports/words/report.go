package words

import (
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// buildLabel labels a spec with what it resolved to, when known.
func BuildLabel(spec string, ref *record.BuildRef) string {
	if ref == nil || ref.Spec != spec {
		return spec
	}
	return ref.Label()
}
