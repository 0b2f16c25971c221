package reports

import "math"

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Alpha is the significance level of the baseline comparison.
const Alpha = 0.05

// wilson is the Wilson score interval of a proportion x/n at z: unlike the
// normal approximation it stays within [0, 1] and is not degenerate at x = 0,
// which is where a drop rate usually is.
func wilson(x, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	if x > n {
		x = n
	}
	p := float64(x) / float64(n)
	nf := float64(n)
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// binomialUpperTail is P(X ≥ k) for X ~ Binomial(n, p), summed exactly in
// log space.
func binomialUpperTail(k, n int, p float64) float64 {
	switch {
	case k <= 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	lgN, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := k; i <= n; i++ {
		lgI, _ := math.Lgamma(float64(i + 1))
		lgNI, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgN - lgI - lgNI + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return math.Min(1, sum)
}

// rateWorseP is the one-sided p-value of the exact conditional test that the
// candidate's drop rate (dc drops in nc requests) is higher than the
// baseline's (db in nb): given the dc+db drops, under equal rates the
// candidate's share is Binomial(dc+db, nc/(nc+nb)), and p = P(X ≥ dc). The
// test is exact for rare events (a few drops in tens of thousands of
// requests), where a z-test's normal approximation is not.
func rateWorseP(dc, nc, db, nb int) float64 {
	if nc <= 0 || nb <= 0 {
		return 1
	}
	return binomialUpperTail(dc, dc+db, float64(nc)/float64(nc+nb))
}
