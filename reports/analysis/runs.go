package analysis

import (
	"sort"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
)

// Aggregates sums the runs of each scenario (in the order they first ran).
func Aggregates(runs []record.Scenario, pair string, planned int) []record.Aggregate {
	var order []string
	by := map[string]*record.Aggregate{}
	stalls := map[string][]float64{}
	for _, s := range runs {
		a := by[s.Name]
		if a == nil {
			a = &record.Aggregate{Scenario: s.Name, Pair: pair, From: s.From, To: s.To, Planned: planned, PerRun: []record.RunFigures{}}
			by[s.Name] = a
			order = append(order, s.Name)
		}
		a.Runs++
		switch s.Verdict {
		case record.VerdictPass:
			a.Counts.Pass++
		case record.VerdictFail:
			a.Counts.Fail++
		default:
			a.Counts.Error++
		}
		a.Requests += s.Requests.Total
		a.Dropped += s.Dropped
		a.PerRun = append(a.PerRun, record.RunFigures{Repeat: s.Repeat, Verdict: s.Verdict, Requests: s.Requests.Total, Dropped: s.Dropped, StallMs: s.Stall.Ms})
		stalls[s.Name] = append(stalls[s.Name], s.Stall.Ms)
	}
	out := make([]record.Aggregate, 0, len(order))
	for _, name := range order {
		a := by[name]
		phi, ok := Dispersion(RunCounts(a.PerRun))
		if ok {
			v := Round3(phi)
			a.Dispersion = &v
		}
		if a.Requests > 0 {
			rate := Round3(float64(a.Dropped) / float64(a.Requests) * 1e4)
			lo, hi := wilsonReal(float64(a.Dropped)/phi, float64(a.Requests)/phi, z95)
			a.DropsPer10k = &rate
			a.CI95 = &record.Interval{Low: Round3(lo * 1e4), High: Round3(hi * 1e4)}
		}
		if st := stalls[name]; len(st) > 0 {
			sort.Float64s(st)
			med := st[len(st)/2]
			if len(st)%2 == 0 {
				med = (st[len(st)/2-1] + st[len(st)/2]) / 2
			}
			a.StallMs = &record.Spread{Min: st[0], Median: Round3(med), Max: st[len(st)-1]}
		}
		out = append(out, *a)
	}
	return out
}

// RunCounts are each run's drops and requests.
func RunCounts(runs []record.RunFigures) [][2]int {
	out := make([][2]int, len(runs))
	for i, r := range runs {
		out[i] = [2]int{r.Dropped, r.Requests}
	}
	return out
}

// Round6 keeps six decimals (a p-value's report).
func Round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }
