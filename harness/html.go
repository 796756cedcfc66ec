package harness

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
)

// Colours of the plots (colour-blind safe, Okabe-Ito).
const (
	cBlue   = "#0072B2"
	cOrange = "#E69F00"
	cGreen  = "#009E73"
	cRed    = "#D55E00"
	cPurple = "#CC79A7"
	cSky    = "#56B4E9"
	cGrey   = "#999999"
)

var classColor = map[string]string{
	classPresence: cBlue, classClaim: cOrange, classSignal: cGreen, classDHT: cPurple, classOther: cGrey, "media": cRed,
}

// WriteHTML writes the report as one self-contained HTML page: the figures
// and invariants, then plots drawn as inline SVG (no script, nothing
// fetched).
func (rep *Report) WriteHTML(w io.Writer, command string) error {
	type row struct{ K, V string }
	const most = 30 // rows of each list shown
	data := struct {
		R                      *Report
		Command                string
		Table                  string
		Plots                  []template.HTML
		Fails                  []row
		Stuck                  []StuckNode
		Doubles, NoMedia       []string
		MoreStuck, MoreDoubles int
		MoreNoMedia            int
	}{R: rep, Command: command, Table: rep.Table(),
		Stuck: rep.Stuck[:min(len(rep.Stuck), most)], MoreStuck: max(len(rep.Stuck)-most, 0),
		Doubles: rep.Doubles[:min(len(rep.Doubles), most)], MoreDoubles: max(len(rep.Doubles)-most, 0),
		NoMedia: rep.NoMedia[:min(len(rep.NoMedia), most)], MoreNoMedia: max(len(rep.NoMedia)-most, 0),
	}
	for _, k := range slices.Sorted(maps.Keys(rep.CallsFailedByReason)) {
		data.Fails = append(data.Fails, row{k, fmt.Sprint(rep.CallsFailedByReason[k])})
	}
	data.Plots = rep.plots()
	return reportTmpl.Execute(w, data)
}

func (rep *Report) plots() []template.HTML {
	var out []template.HTML
	// cdfChart plots the share of samples at or below x (log scale), if any.
	cdfChart := func(title, xLabel, yLabel, name, color string, v []float64) {
		if len(v) == 0 {
			return
		}
		xs, ys := cdf(v)
		out = append(out, chart{
			title: title, xLabel: xLabel, yLabel: yLabel, logX: true, yMin0: true, yMax: 1, xFmt: msTick, yFmt: pctTick,
			series: []series{{name: fmt.Sprintf("%s (n=%d)", name, len(v)), color: color, xs: xs, ys: ys, step: true}},
		}.svg())
	}
	cdfChart("Time to match: share of searches matched within x", "search start to match (log scale)",
		"share of searches", "time to match", cBlue, rep.matchMs)
	cdfChart("Time to first frame: share of calls showing the stranger within x", "match to first video frame (log scale)",
		"share of calls", "first frame", cRed, rep.frameMs)
	cdfChart("Launch to first call: share of nodes in a call within x of starting", "launch to first connected call (log scale)",
		"share of nodes", "first call", cGreen, rep.firstCallMs)
	if len(rep.Timeline) > 1 {
		tl := downsample(rep.Timeline, 600)
		line := func(name, color string, f func(Sample) int) series {
			s := series{name: name, color: color}
			for _, p := range tl {
				s.xs = append(s.xs, p.T)
				s.ys = append(s.ys, float64(f(p)))
			}
			return s
		}
		out = append(out, chart{
			title: "Nodes by state over time", xLabel: "seconds since start", yLabel: "nodes", yMin0: true,
			series: []series{
				line("in call", cGreen, func(s Sample) int { return s.InCall }),
				line("matched", cOrange, func(s Sample) int { return s.Matched }),
				line("searching", cBlue, func(s Sample) int { return s.Searching }),
				line("idle", cGrey, func(s Sample) int { return s.Idle }),
			},
		}.svg())
	}
	if len(rep.callEnds) > 0 {
		width := math.Max(1, math.Ceil(rep.DurationSeconds/60))
		counts := map[float64]int{}
		for _, t := range rep.callEnds {
			counts[math.Floor(t/width)*width+width/2]++
		}
		s := series{name: fmt.Sprintf("calls completed per %.0f s", width), color: cGreen, bars: true, barW: width}
		for _, x := range slices.Sorted(maps.Keys(counts)) {
			s.xs = append(s.xs, x)
			s.ys = append(s.ys, float64(counts[x]))
		}
		out = append(out, chart{title: "Calls completed over time", xLabel: "seconds since start (call end)", yLabel: "calls", yMin0: true, series: []series{s}}.svg())
	}
	if len(rep.TrafficTimes) > 1 {
		var ss []series
		for _, c := range classes {
			s := series{name: c, color: classColor[c]}
			for _, p := range rep.TrafficTimes {
				s.xs = append(s.xs, p.T)
				s.ys = append(s.ys, p.PerNode[c]/1024)
			}
			ss = append(ss, s)
		}
		out = append(out, chart{
			title: "libp2p traffic per node (in + out) by protocol", xLabel: "seconds since start",
			yLabel: "KiB/s per node", yMin0: true, series: ss,
		}.svg())
	}
	if len(rep.Traffic.Bytes) > 0 || len(rep.Traffic.Messages) > 0 {
		var ss []series
		i := 0.0
		names := append(slices.Clone(classes), "media")
		src := rep.Traffic.Bytes
		title, ylabel, scale := "Average traffic per node by protocol (in + out)", "KiB/s per node", 1024.0
		if len(src) == 0 {
			src = rep.Traffic.Messages
			title, ylabel, scale = "Average messages per node by protocol (in + out)", "messages/s per node", 1
		}
		for _, c := range names {
			v, ok := src[c]
			if !ok {
				continue
			}
			i++
			ss = append(ss, series{name: c, color: classColor[c], bars: true, barW: 0.8, xs: []float64{i}, ys: []float64{(v.In + v.Out) / scale}})
		}
		out = append(out, chart{title: title, xLabel: "protocol (see legend)", yLabel: ylabel, yMin0: true,
			xFmt: func(float64) string { return "" }, series: ss}.svg())
	}
	return out
}

// downsample keeps at most n samples, evenly spaced.
func downsample(s []Sample, n int) []Sample {
	if len(s) <= n {
		return s
	}
	out := make([]Sample, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n])
	}
	return append(out, s[len(s)-1])
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Serendip harness: {{.R.Scenario}}, {{.R.Nodes}} nodes</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.15em; margin-top: 2em; }
.meta { color: #555; }
.ok, .bad { padding: .7em 1em; border-radius: 6px; font-weight: 600; }
.ok { background: #e3f4ea; color: #0b5d2a; }
.bad { background: #fbe4e1; color: #8a1c0c; }
pre { background: #f6f6f4; padding: 1em; overflow-x: auto; font-size: 12.5px; border-radius: 6px; }
table { border-collapse: collapse; }
td, th { padding: .2em .8em .2em 0; text-align: left; vertical-align: top; }
svg { display: block; margin: 1.2em 0; max-width: 100%; height: auto; }
svg .title { font-size: 14px; font-weight: 600; fill: #222; }
svg .tick, svg .legend { font-size: 11px; fill: #444; }
svg .label { font-size: 12px; fill: #333; }
svg .empty { font-size: 13px; fill: #888; }
svg .grid { stroke: #e6e6e6; }
svg .frame { fill: none; stroke: #bbb; }
</style>
</head>
<body>
<h1>Serendip harness: {{.R.Scenario}}</h1>
<p class="meta">{{.R.Nodes}} nodes, {{.R.Relays}} relay(s), media {{.R.Media}}, {{.R.Mode}}, {{.R.DurationSeconds}} s, seed {{.R.Seed}},
{{.R.Machine.CPUs}} CPUs{{if .R.Machine.SignMicros}} (an Ed25519 signature in {{printf "%.1f" .R.Machine.SignMicros}} µs{{if .R.Machine.LoopbackMicros}}, a loopback TCP round trip in {{printf "%.1f" .R.Machine.LoopbackMicros}} µs{{end}}){{end}}, {{.R.Machine.Go}}, started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}}.
{{if .Command}}<br>Command: <code>{{.Command}}</code>{{end}}</p>
{{if .R.Violations}}<div class="bad">Invariants broken:<ul>{{range .R.Violations}}<li>{{.}}</li>{{end}}</ul></div>
{{else}}<div class="ok">All invariants held: no double match, no stuck node{{if eq .R.Media "files"}}, every call carried media{{end}}.</div>{{end}}

<h2>Figures</h2>
<pre>{{.Table}}</pre>

<h2>Plots</h2>
{{range .Plots}}{{.}}{{end}}

{{if .Fails}}<h2>Calls that never connected, by reason</h2>
<table>{{range .Fails}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>{{end}}</table>{{end}}
{{if .Stuck}}<h2>Stuck nodes</h2>
<table><tr><th>node</th><th>at</th><th>state</th><th>why</th></tr>
{{range .Stuck}}<tr><td>{{.Node}}</td><td>{{.AtSeconds}} s</td><td>{{.State}}</td><td>{{.Why}}</td></tr>{{end}}</table>
{{if .MoreStuck}}<p>… and {{.MoreStuck}} more (see the JSON report).</p>{{end}}{{end}}
{{if .Doubles}}<h2>Double matches</h2><ul>{{range .Doubles}}<li>{{.}}</li>{{end}}</ul>
{{if .MoreDoubles}}<p>… and {{.MoreDoubles}} more.</p>{{end}}{{end}}
{{if .NoMedia}}<h2>Calls without media</h2><ul>{{range .NoMedia}}<li>{{.}}</li>{{end}}</ul>
{{if .MoreNoMedia}}<p>… and {{.MoreNoMedia}} more.</p>{{end}}{{end}}

<h2>What is measured</h2>
<ul>
<li><b>Time to match</b>: from the start of a search to the match, as the node records it, for every search except a node's first (which includes joining the network; that one is in <i>launch to first call</i>).</li>
<li><b>Time to first frame</b>: from the match to the first complete video frame from the stranger, so it includes signalling, ICE, DTLS and the first keyframe.</li>
<li><b>Double match</b>: a match id under which the two sides disagree about who is matched with whom, from every node's state sampled every few hundred milliseconds and every call record.</li>
<li><b>Stuck</b>: matched without a call for longer than the matcher's setup timeout plus 5 s; searching for 15 s while more nodes than the recent-partner rule excludes searched all that time; a bot idle for 15 s.</li>
<li><b>Fairness</b>: per node, a chi-square of the counts of calls with each node it could have met against a uniform draw, summed over nodes; a small p-value means partners were concentrated.</li>
<li><b>Traffic</b>: message counts from the nodes' own counters; bytes from libp2p's bandwidth reporter by protocol (in process only); media bytes are RTP payload received. Per node per second of node lifetime.</li>
<li><b>CPU and memory</b>: in process, the whole process (relays and harness included) divided by the number of nodes; with processes, each node process's own.</li>
</ul>
</body>
</html>
`))
