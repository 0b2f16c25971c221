package reports

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Known values: Wilson intervals from Newcombe (1998), Table I, and binomial
// tails computed by hand.
func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		x, n   int
		lo, hi float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	} {
		lo, hi := wilson(tc.x, tc.n, z95)
		if !near(lo, tc.lo, 5e-5) || !near(hi, tc.hi, 5e-5) {
			t.Errorf("wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.x, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
}

func TestBinomialUpperTail(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{8, 10, 0.5, 56.0 / 1024},    // C(10,8)+C(10,9)+C(10,10) = 45+10+1
		{0, 10, 0.5, 1},              // always
		{11, 10, 0.5, 0},             // never
		{1, 3, 0.2, 1 - 0.8*0.8*0.8}, // 1 - P(0)
		{3, 3, 0.2, 0.008},
	} {
		if got := binomialUpperTail(tc.k, tc.n, tc.p); !near(got, tc.want, 1e-12) {
			t.Errorf("P(X ≥ %d | %d, %g) = %.12f, want %.12f", tc.k, tc.n, tc.p, got, tc.want)
		}
	}
}

// The comparison's test: equal exposure, 12 drops against 2 is significant
// (P(X ≥ 12 | 14, ½) = (C(14,12)+C(14,13)+C(14,14))/2^14 = 106/16384); 5
// against 4 is not; fewer drops than the baseline never is.
func TestRateWorseP(t *testing.T) {
	if p := rateWorseP(12, 10000, 2, 10000); !near(p, 106.0/16384, 1e-12) {
		t.Errorf("12 vs 2: p = %g, want %g", p, 106.0/16384)
	}
	if p := rateWorseP(5, 10000, 4, 10000); p < Alpha {
		t.Errorf("5 vs 4: p = %g, want ≥ %g", p, Alpha)
	}
	if p := rateWorseP(0, 10000, 3, 10000); p != 1 {
		t.Errorf("0 vs 3: p = %g, want 1", p)
	}
	// Unequal exposure: 6 drops in 20,000 against 3 in 10,000 is the same rate.
	if p := rateWorseP(6, 20000, 3, 10000); p < 0.3 {
		t.Errorf("same rate, twice the requests: p = %g, want large", p)
	}
}
