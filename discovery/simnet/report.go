package simnet

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
)

// WriteTable prints reports as the table of `serendip sim`: one row per
// run.
func WriteTable(w io.Writer, reps []Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{
		"design", "nodes", "matches", "ttm ms p50/p95/p99", "in RTTs", "warm ttm ms", "warm in RTTs",
		"claims/match", "msgs/match", "presence B/node/s", "p99 node", "double", "stuck", "fair p", "sim", "wall", "",
	}, "\t"))
	for _, r := range reps {
		fmt.Fprintln(tw, strings.Join([]string{
			r.Design,
			fmt.Sprint(r.Nodes),
			fmt.Sprint(r.Matches),
			r.TTM.Format(false),
			r.TTM.Format(true),
			r.TTMWarm.Format(false),
			r.TTMWarm.Format(true),
			fmt.Sprintf("%.2f", r.ClaimsPerMatch),
			fmt.Sprintf("%.1f", r.MessagesPerMatch),
			fmt.Sprintf("%.0f", r.PresenceBytes),
			fmt.Sprintf("%.0f", r.PresenceBytesP99),
			fmt.Sprint(r.DoubleMatches),
			fmt.Sprint(r.Stuck),
			fairness(r.FairnessP),
			r.Simulated.String(),
			r.Wall.Round(1e7).String(),
			"",
		}, "\t"))
	}
	return tw.Flush()
}

// HeapInUse returns the bytes of heap in use, for reports of big runs.
func HeapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func fairness(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3g", *p)
}
