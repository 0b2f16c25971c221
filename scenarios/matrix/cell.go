package matrix

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/harness/fault"
	"github.com/releng-tools/nginx-upgrade-harness/harness/image"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/reports"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
)

// Cell is one combination.
type Cell struct {
	reports.MatrixCell
	FromBuild, ToBuild image.Build
	ConfigData         []byte      // nil: the harness's own
	ConfigDir          bool        // the configuration is a directory (a whole /etc/nginx tree)
	Tree               *nginx.Tree // the tree read, when ConfigDir
	Chosen             []fault.Chosen
}

// faultsApply checks that the cell's faults strike each of its scenarios.
func faultsApply(c Cell) error {
	if len(c.Chosen) == 0 {
		return nil
	}
	found, err := scenarios.Lookup(c.Scenarios)
	if err != nil {
		return err
	}
	for _, sc := range found {
		if _, err := scenarios.WithFaults(sc, c.Chosen); err != nil {
			return err
		}
	}
	return nil
}

// ScenarioList is the cell's scenarios, struck by its faults.
func (c Cell) ScenarioList() ([]scenarios.Scenario, error) {
	found, err := scenarios.Lookup(c.Scenarios)
	if err != nil {
		return nil, err
	}
	if len(c.Chosen) == 0 {
		return found, nil
	}
	out := make([]scenarios.Scenario, 0, len(found))
	for _, sc := range found {
		fsc, err := scenarios.WithFaults(sc, c.Chosen)
		if err != nil {
			return nil, err
		}
		out = append(out, fsc)
	}
	return out, nil
}

// cellID is a readable slug of the combination: to-build, config, traffic,
// faults, scenarios (and the from-build when the matrix has several).
func cellID(c Cell, withFrom bool) string {
	parts := []string{}
	if withFrom {
		parts = append(parts, slug(c.From, 32))
	}
	parts = append(parts, slug(c.To, 32), slug(c.MatrixCell.Config, 24), slug(joinOr(c.Traffic, "default"), 32),
		slug(joinOr(c.Faults, "nofault"), 32), slug(strings.Join(c.Scenarios, "+"), 32))
	return strings.Join(parts, "_")
}

var slugRE = regexp.MustCompile(`[^a-z0-9.]+`)

func slug(s string, max int) string {
	s = strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > max {
		h := sha256.Sum256([]byte(s))
		s = s[:max-5] + "-" + hex.EncodeToString(h[:])[:4]
	}
	return s
}
