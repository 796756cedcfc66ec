package harness

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// Percentiles summarises a sample of durations in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// percentiles uses the nearest-rank method: p50 of 1..100 is 50. An empty
// sample gives a zero summary with Count 0.
func percentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Percentiles{
		Count: len(s),
		P50:   rank(s, 0.50),
		P95:   rank(s, 0.95),
		P99:   rank(s, 0.99),
		Max:   s[len(s)-1],
		Mean:  math.Round(sum/float64(len(s))*10) / 10,
	}
}

// rank is the nearest-rank percentile of a sorted sample.
func rank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Fairness tests whether partners were drawn uniformly: for every node, the
// counts of its calls with each node it could have met (every other node
// alive at some point of its life) against the uniform expectation. The
// per-node chi-square statistics and their degrees of freedom are summed and
// PValue is the upper tail of that sum: a small value means partners were
// more concentrated than chance allows. Counts are small (a node meets few of
// its candidates), which makes each node's statistic far from chi-square; the
// sum over many nodes has, for a uniform null, the mean and (to 1/n) the
// variance of a chi-square, so the test stays usable for the whole run.
type Fairness struct {
	// Nodes is the number of nodes with at least one call.
	Nodes int     `json:"nodes"`
	Chi2  float64 `json:"chi2"`
	DoF   int     `json:"dof"`
	// PValue is nil when there is nothing to test (no node had a choice).
	PValue *float64 `json:"p_value"`
	// RepeatShare is the share of calls with a partner the node had already
	// called before in the run, and ExpectedRepeatShare that share under a
	// uniform draw with the same counts.
	RepeatShare         float64 `json:"repeat_share"`
	ExpectedRepeatShare float64 `json:"expected_repeat_share"`
}

// fairnessInput is one node's calls: how many with each partner, out of how
// many candidates.
type fairnessInput struct {
	partners   map[string]int
	candidates int
}

func fairness(in []fairnessInput) Fairness {
	var f Fairness
	calls, repeats, expRepeats := 0, 0, 0.0
	for _, n := range in {
		k := 0
		for _, c := range n.partners {
			k += c
		}
		if k == 0 || n.candidates < 2 {
			continue
		}
		f.Nodes++
		e := float64(k) / float64(n.candidates)
		sq := 0.0
		for _, c := range n.partners {
			sq += float64(c * c)
			repeats += c - 1
		}
		f.Chi2 += sq/e - float64(k)
		f.DoF += n.candidates - 1
		calls += k
		// Expected distinct partners after k uniform draws from m.
		m := float64(n.candidates)
		expRepeats += float64(k) - m*(1-math.Pow(1-1/m, float64(k)))
	}
	if f.DoF > 0 {
		p := distuv.ChiSquared{K: float64(f.DoF)}.Survival(f.Chi2)
		f.PValue = &p
	}
	if calls > 0 {
		f.RepeatShare = round3(float64(repeats) / float64(calls))
		f.ExpectedRepeatShare = max(round3(expRepeats/float64(calls)), 0)
	}
	f.Chi2 = math.Round(f.Chi2*10) / 10
	return f
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// cdf returns the points of the empirical distribution of xs: for each
// distinct value the share of the sample at or below it.
func cdf(xs []float64) (vals, shares []float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	for i, x := range s {
		if i+1 < len(s) && s[i+1] == x {
			continue
		}
		vals = append(vals, x)
		shares = append(shares, float64(i+1)/float64(len(s)))
	}
	return vals, shares
}
