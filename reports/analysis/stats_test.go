package analysis

import (
	"math"
	"testing"
)

// alpha is the baseline comparison's significance (judge.Alpha).
const alpha = 0.05

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
	if p := rateWorseP(5, 10000, 4, 10000); p < alpha {
		t.Errorf("5 vs 4: p = %g, want ≥ %g", p, alpha)
	}
	if p := rateWorseP(0, 10000, 3, 10000); p != 1 {
		t.Errorf("0 vs 3: p = %g, want 1", p)
	}
	// Unequal exposure: 6 drops in 20,000 against 3 in 10,000 is the same rate.
	if p := rateWorseP(6, 20000, 3, 10000); p < 0.3 {
		t.Errorf("same rate, twice the requests: p = %g, want large", p)
	}
}

// The continued fraction agrees with the exact binomial sum at integers,
// and with known values of I_x(a, b).
func TestRegIncBeta(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
	}{{8, 10, 0.5}, {1, 3, 0.2}, {12, 14, 0.5}, {3, 40, 0.1}, {30, 40, 0.6}} {
		want := binomialUpperTail(tc.k, tc.n, tc.p)
		if got := binomialUpperTailReal(float64(tc.k), float64(tc.n), tc.p); !near(got, want, 1e-10) {
			t.Errorf("P(X ≥ %d | %d, %g): incomplete beta %.12f, sum %.12f", tc.k, tc.n, tc.p, got, want)
		}
	}
	if got := regIncBeta(0.5, 0.5, 0.5); !near(got, 0.5, 1e-12) { // symmetric arcsine law
		t.Errorf("I_0.5(½, ½) = %v, want 0.5", got)
	}
	if got := regIncBeta(2, 3, 0.4); !near(got, 0.5248, 1e-12) { // 1 − Σ_{j<2} C(4,j) .4^j .6^(4−j) = 1 − .1296 − .3456
		t.Errorf("I_0.4(2, 3) = %v, want 0.5248", got)
	}
}

// Runs as alike as Poisson leave the test alone; one run with ten drops
// among runs with none or one widens it.
func TestDispersion(t *testing.T) {
	even := [][2]int{{2, 5000}, {3, 5000}, {2, 5000}, {3, 5000}}
	if phi, ok := Dispersion(even); !ok || phi != 1 {
		t.Errorf("even runs: φ = %v (%v), want 1", phi, ok)
	}
	// 0, 10, 0, 1, 4 drops in equal runs: mean 3, χ² = (9+49+9+4+1)/3 = 24 on 4 df.
	clustered := [][2]int{{0, 5000}, {10, 5000}, {0, 5000}, {1, 5000}, {4, 5000}}
	if phi, _ := Dispersion(clustered); !near(phi, 6, 1e-9) {
		t.Errorf("clustered runs: φ = %v, want 6", phi)
	}
	if _, ok := Dispersion([][2]int{{3, 5000}}); ok {
		t.Error("one run estimates no dispersion")
	}
	// 15 drops against 5 at equal exposure is significant as independent
	// drops, and not when the runs show they come in clusters (φ = 3).
	if p := RateWorsePDispersed(15, 25000, 5, 25000, 1); p >= alpha {
		t.Errorf("φ = 1: p = %v, want < %v", p, alpha)
	}
	if p := RateWorsePDispersed(15, 25000, 5, 25000, 3); p < alpha {
		t.Errorf("φ = 3: p = %v, want ≥ %v", p, alpha)
	}
}

// Fisher's exact test, one-sided, against values counted by hand.
func TestHypergeometricUpperTail(t *testing.T) {
	if p := HypergeometricUpperTail(5, 5, 0, 5); !near(p, 1.0/252, 1e-12) { // C(5,5)C(5,0)/C(10,5)
		t.Errorf("5/5 against 0/5: p = %v, want 1/252", p)
	}
	if p := HypergeometricUpperTail(4, 5, 3, 5); !near(p, (50.0+10.0)/120.0, 1e-12) { // (C(5,4)C(5,3)+C(5,5)C(5,2))/C(10,7)
		t.Errorf("4/5 against 3/5: p = %v, want %v", p, 60.0/120)
	}
	if p := HypergeometricUpperTail(0, 5, 3, 5); !near(p, 1, 1e-12) {
		t.Errorf("0/5 against 3/5: p = %v, want 1", p)
	}
}
