package render

import (
	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

func WriteMarkdownInsecure(mw *MdWriter, insecure bool) {
	if insecure {
		mw.Printf("> **%s**\n\n", record.InsecureArchiveNote)
	}
}
