package simnet

import "math"

// ChiSquareP returns the p-value of a chi-square statistic x with dof
// degrees of freedom: the probability that a fair process gives x or more,
// Q(dof/2, x/2), the regularized upper incomplete gamma function.
func ChiSquareP(x float64, dof int) float64 {
	if dof <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(dof)/2, x/2)
}

// gammaQ is Q(a, x) = Γ(a, x)/Γ(a): by its series below a+1, by Lentz's
// continued fraction above (Numerical Recipes, 6.2).
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 10000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return max(0, 1-sum*math.Exp(-x+a*math.Log(x)-lg))
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

// PairsChiSquare tests whether calls fell evenly on the pairs of nodes
// 0..n-1: it returns the statistic, its degrees of freedom and p-value.
func PairsChiSquare(pairs map[[2]int]int, n int) (x float64, dof int, p float64) {
	m := n * (n - 1) / 2
	total := 0
	for _, c := range pairs {
		total += c
	}
	if m < 2 || total == 0 {
		return math.NaN(), 0, math.NaN()
	}
	want := float64(total) / float64(m)
	seen := 0
	for _, c := range pairs {
		d := float64(c) - want
		x += d * d / want
		seen++
	}
	x += float64(m-seen) * want // pairs that never met
	return x, m - 1, ChiSquareP(x, m-1)
}
