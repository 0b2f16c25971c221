package matrix

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/releng-tools/nginx-upgrade-harness/reports"
)

// Shard returns the cells of shard (all when nil), in the matrix's order.
func (m *Matrix) Shard(shard *reports.Shard) []Cell {
	var out []Cell
	for _, c := range m.Cells {
		if shard.Owns(c.Index) {
			out = append(out, c)
		}
	}
	return out
}

// ParseShard reads --shard I/N (1 ≤ I ≤ N).
func ParseShard(s string) (*reports.Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n || n > 1000 {
		return nil, fmt.Errorf("--shard: got %q, want I/N with 1 ≤ I ≤ N ≤ 1000 (e.g. 1/2 and 2/2 for two CI jobs)", s)
	}
	return &reports.Shard{Index: i, Count: n}, nil
}
