package harness

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// series is one line (or set of bars) of a chart.
type series struct {
	name   string
	color  string
	xs, ys []float64
	step   bool // a step function (CDFs)
	bars   bool // bars of width barW centred on xs
	barW   float64
}

// chart is a small SVG line or bar chart with axes, ticks and a legend,
// drawn without any script.
type chart struct {
	title, xLabel, yLabel string
	logX                  bool
	yMin0                 bool // y axis from 0 (else from the data's minimum)
	yMax                  float64
	xFmt, yFmt            func(float64) string
	series                []series
}

const (
	chartW, chartH                     = 680, 316
	marginL, marginR, marginT, marginB = 64, 16, 50, 44
)

func (c chart) svg() template.HTML {
	var xs, ys []float64
	for _, s := range c.series {
		for i := range s.xs {
			if c.logX && s.xs[i] <= 0 {
				continue
			}
			xs = append(xs, s.xs[i])
			ys = append(ys, s.ys[i])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(c.title))
	fmt.Fprintf(&b, `<text x="%d" y="20" class="title">%s</text>`, marginL, html.EscapeString(c.title))
	if len(xs) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="empty">no data</text></svg>`, chartW/2-30, chartH/2)
		return template.HTML(b.String())
	}
	x0, x1 := minMax(xs)
	y0, y1 := minMax(ys)
	for _, s := range c.series {
		if s.bars {
			x0 -= s.barW / 2
			x1 += s.barW / 2
		}
	}
	if c.yMin0 {
		y0 = min(y0, 0)
	}
	if c.yMax > 0 {
		y1 = c.yMax
	}
	if y1 <= y0 {
		y1 = y0 + 1
	}
	var xt []float64
	if c.logX {
		x0 = math.Pow(10, math.Floor(math.Log10(x0)))
		x1 = math.Pow(10, math.Ceil(math.Log10(max(x1, x0*10))))
		for v := x0; v <= x1*1.0001; v *= 10 {
			xt = append(xt, v)
		}
	} else {
		if x1 <= x0 {
			x1 = x0 + 1
		}
		xt = niceTicks(x0, x1, 8)
	}
	yt := niceTicks(y0, y1, 5)
	if c.yMax <= 0 && len(yt) > 0 {
		y1 = max(y1, yt[len(yt)-1])
	}
	pw, ph := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	px := func(x float64) float64 {
		if c.logX {
			return float64(marginL) + (math.Log10(x)-math.Log10(x0))/(math.Log10(x1)-math.Log10(x0))*pw
		}
		return float64(marginL) + (x-x0)/(x1-x0)*pw
	}
	py := func(y float64) float64 { return float64(marginT) + ph - (y-y0)/(y1-y0)*ph }
	xf, yf := c.xFmt, c.yFmt
	if xf == nil {
		xf = num
	}
	if yf == nil {
		yf = num
	}
	// Grid and ticks.
	for _, v := range yt {
		if v < y0 || v > y1 {
			continue
		}
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, marginL, y, chartW-marginR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, marginL-6, y+4, yf(v))
	}
	for _, v := range xt {
		if v < x0 || v > x1*1.0001 {
			continue
		}
		x := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`, x, marginT, x, chartH-marginB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x, chartH-marginB+16, xf(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" class="frame"/>`, marginL, marginT, pw, ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" class="label" text-anchor="middle">%s</text>`, float64(marginL)+pw/2, chartH-6, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %.0f) rotate(-90)" class="label" text-anchor="middle">%s</text>`, float64(marginT)+ph/2, html.EscapeString(c.yLabel))
	// Data.
	for _, s := range c.series {
		if s.bars {
			for i := range s.xs {
				xa, xb := px(s.xs[i]-s.barW/2), px(s.xs[i]+s.barW/2)
				y := py(min(s.ys[i], y1))
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.8"><title>%s: %s</title></rect>`,
					xa, y, max(xb-xa-1, 1), py(y0)-y, s.color, xf(s.xs[i]), yf(s.ys[i]))
			}
			continue
		}
		var pts []string
		prevY := math.NaN()
		for i := range s.xs {
			if c.logX && s.xs[i] <= 0 {
				continue
			}
			x, y := px(s.xs[i]), py(min(s.ys[i], y1))
			if s.step && !math.IsNaN(prevY) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, prevY))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			prevY = y
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), s.color)
	}
	// Legend.
	lx := marginL
	for _, s := range c.series {
		if s.name == "" {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			lx, marginT-20, s.color, lx+16, marginT-10, html.EscapeString(s.name))
		lx += 30 + 7*len(s.name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*0.5; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func msTick(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%gms", v)
}

func pctTick(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }
