package analysis

import (
	"math"
)

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// wilson is the Wilson score interval of a proportion x/n at z: unlike the
// normal approximation it stays within [0, 1] and is not degenerate at x = 0,
// which is where a drop rate usually is.
func wilson(x, n int, z float64) (lo, hi float64) { return wilsonReal(float64(x), float64(n), z) }

// wilsonReal is wilson for effective counts (divided by a dispersion).
func wilsonReal(x, nf, z float64) (lo, hi float64) {
	if nf <= 0 {
		return 0, 1
	}
	x = math.Min(x, nf)
	p := x / nf
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

// regIncBeta is the regularized incomplete beta function I_x(a, b), by the
// continued fraction of Numerical Recipes (modified Lentz), for a, b > 0.
func regIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	if x > (a+1)/(a+b+2) {
		return 1 - regIncBeta(b, a, 1-x)
	}
	const tiny, eps = 1e-300, 1e-15
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	f := d
	step := func(num float64) {
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		f *= d * c
	}
	for m := 1; m <= 500; m++ {
		mf := float64(m)
		step(mf * (b - mf) * x / ((a + 2*mf - 1) * (a + 2*mf)))            // even coefficient
		step(-(a + mf) * (a + b + mf) * x / ((a + 2*mf) * (a + 2*mf + 1))) // odd coefficient
		if math.Abs(d*c-1) < eps {
			break
		}
	}
	return front * f / a
}

// binomialUpperTailReal is P(X ≥ k) for X ~ Binomial(n, p) continued to
// real k and n (I_p(k, n−k+1)): the tail of counts divided by a dispersion
// factor.
func binomialUpperTailReal(k, n, p float64) float64 {
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
	return regIncBeta(k, n-k+1, p)
}

// Dispersion is the between-run dispersion of drop counts against a Poisson
// rate per group: Pearson's χ² over its degrees of freedom, at least 1 (a
// spread no wider than Poisson's changes nothing). Each group is one pair's
// runs: counts[i] drops in exposures[i] requests. df 0 (one run per pair)
// cannot estimate it: 1, and ok false.
func Dispersion(groups ...[][2]int) (phi float64, ok bool) {
	chi2, df := 0.0, 0
	for _, runs := range groups {
		drops, reqs := 0, 0
		for _, r := range runs {
			drops, reqs = drops+r[0], reqs+r[1]
		}
		if len(runs) < 2 || reqs == 0 {
			continue
		}
		df += len(runs) - 1
		if drops == 0 {
			continue
		}
		rate := float64(drops) / float64(reqs)
		for _, r := range runs {
			if e := rate * float64(r[1]); e > 0 {
				chi2 += (float64(r[0]) - e) * (float64(r[0]) - e) / e
			}
		}
	}
	if df == 0 {
		return 1, false
	}
	return math.Max(1, chi2/float64(df)), true
}

// RateWorsePDispersed is rateWorseP with both counts divided by phi
// (quasi-Poisson): when runs vary more than a Poisson process would — a
// run that meets the race ten times, the next not at all —, the drops are
// worth 1/phi independent observations each.
func RateWorsePDispersed(dc, nc, db, nb int, phi float64) float64 {
	if phi <= 1 {
		return rateWorseP(dc, nc, db, nb)
	}
	if nc <= 0 || nb <= 0 {
		return 1
	}
	k, n := float64(dc)/phi, float64(dc+db)/phi
	return binomialUpperTailReal(k, n, float64(nc)/float64(nc+nb))
}

// HypergeometricUpperTail is the one-sided p of Fisher's exact test that
// the first group fails more often: a of n1 failed, b of n2; p = P(X ≥ a)
// for X the first group's share of the a+b failures drawn at random.
func HypergeometricUpperTail(a, n1, b, n2 int) float64 {
	k, n := a+b, n1+n2
	lc := func(n, r int) float64 {
		x, _ := math.Lgamma(float64(n + 1))
		y, _ := math.Lgamma(float64(r + 1))
		z, _ := math.Lgamma(float64(n - r + 1))
		return x - y - z
	}
	total := lc(n, k)
	p := 0.0
	for x := a; x <= min(k, n1); x++ {
		if k-x > n2 {
			continue
		}
		p += math.Exp(lc(n1, x) + lc(n2, k-x) - total)
	}
	return math.Min(1, p)
}
