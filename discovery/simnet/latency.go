package simnet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Latency is the distribution of one message's one-way delay. Every message
// draws its own, so a spread reorders messages.
type Latency struct {
	// Kind is "uniform" (Min..Max) or "lognormal" (Median·e^(Sigma·Z), Z
	// standard normal, clamped to [Min, Max] when they are set).
	Kind     string
	Min, Max time.Duration
	Median   time.Duration
	Sigma    float64
}

// Uniform returns a uniform latency on [lo, hi].
func Uniform(lo, hi time.Duration) Latency { return Latency{Kind: "uniform", Min: lo, Max: hi} }

// ParseLatency reads "uniform:20ms-80ms" or "lognormal:40ms,0.5" (median,
// sigma; clamped to [median/10, median*10]).
func ParseLatency(s string) (Latency, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return Latency{}, fmt.Errorf("latency %q: want uniform:MIN-MAX or lognormal:MEDIAN,SIGMA", s)
	}
	switch kind {
	case "uniform":
		a, b, ok := strings.Cut(arg, "-")
		lo, err1 := time.ParseDuration(a)
		hi, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil {
			return Latency{}, fmt.Errorf("latency %q: want uniform:MIN-MAX, for example uniform:20ms-80ms", s)
		}
		l := Uniform(lo, hi)
		return l, l.validate()
	case "lognormal":
		a, b, ok := strings.Cut(arg, ",")
		med, err1 := time.ParseDuration(a)
		sigma, err2 := strconv.ParseFloat(b, 64)
		if !ok || err1 != nil || err2 != nil {
			return Latency{}, fmt.Errorf("latency %q: want lognormal:MEDIAN,SIGMA, for example lognormal:40ms,0.5", s)
		}
		l := Latency{Kind: "lognormal", Median: med, Sigma: sigma, Min: med / 10, Max: med * 10}
		return l, l.validate()
	}
	return Latency{}, fmt.Errorf("latency %q: unknown kind %q", s, kind)
}

func (l Latency) validate() error {
	switch l.Kind {
	case "uniform":
		if l.Min < 0 || l.Max < l.Min {
			return fmt.Errorf("simnet: bad latency range [%v, %v]", l.Min, l.Max)
		}
	case "lognormal":
		if l.Median <= 0 || l.Sigma < 0 || l.Max < l.Min || l.Min < 0 {
			return fmt.Errorf("simnet: bad lognormal latency %v, %v", l.Median, l.Sigma)
		}
	default:
		return fmt.Errorf("simnet: unknown latency kind %q", l.Kind)
	}
	return nil
}

func (l Latency) String() string {
	if l.Kind == "lognormal" {
		return fmt.Sprintf("lognormal:%v,%g", l.Median, l.Sigma)
	}
	return fmt.Sprintf("uniform:%v-%v", l.Min, l.Max)
}

func (l Latency) draw(r *rand.Rand) time.Duration {
	if l.Kind == "lognormal" {
		d := time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
		return max(l.Min, min(l.Max, d))
	}
	if l.Max == l.Min {
		return l.Min
	}
	return l.Min + time.Duration(r.Int64N(int64(l.Max-l.Min)+1))
}

// Mean returns the mean one-way latency (estimated by sampling for a
// clamped lognormal). A round trip (RTT) is twice it.
func (l Latency) Mean() time.Duration {
	if l.Kind != "lognormal" {
		return (l.Min + l.Max) / 2
	}
	r := rand.New(rand.NewPCG(1, 2))
	var sum float64
	const n = 100000
	for i := 0; i < n; i++ {
		sum += float64(l.draw(r))
	}
	return time.Duration(sum / n)
}
