package itc

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// htmlMaxPoints bounds the points drawn per series, so a run with long
// series still gives a page a browser opens at once.
const htmlMaxPoints = 1000

// Plot geometry, in SVG user units.
const (
	plotW, plotH           = 640, 240
	plotLeft, plotRight    = 72, 16
	plotTop, plotBottom    = 14, 44
	plotInnerW, plotInnerH = plotW - plotLeft - plotRight, plotH - plotTop - plotBottom
	plotXTicks, plotYTicks = 5, 5
	plotRelTolerance       = 1e-6
)

type htmlPage struct {
	Run     *Run
	Totals  string
	Length  string
	Start   string
	End     string
	Results []htmlResult
}

type htmlResult struct {
	Anchor, Case, Name, Site, Status, StatusWord, Reason string
	Start, End                                           string
	Completeness, P99                                    string
	Assets                                               []htmlAsset
}

type htmlAsset struct {
	Asset, Profile              string
	Cycles, Arrived, Equal      int
	Completeness, P50, P99, Max string
	Mismatches                  []string
	Plots                       []svgPlot
}

type svgPlot struct {
	Title          string
	Unit           string
	W, H           int
	X0, X1, Y0, Y1 float64 // the plot area
	Line           string  // the device's polyline points
	Dots           []svgDot
	XTicks, YTicks []svgTick
	DevicePoints   int
	PlatformPoints int
	Differ         int
	XLabel, YLabel svgTick // axis titles, at their positions
}

type svgDot struct {
	X, Y  float64
	Off   bool // differs from the device's value at that time
	Title string
}

type svgTick struct {
	X, Y  float64
	Label string
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"f": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}).Parse(htmlSource))

// WriteHTML writes the run as one self-contained page (no script, no
// outside file): the totals, a summary table and, per result and asset,
// the measures, the values that differ and an inline SVG plot per quantity
// of the device's values (line) against the platform's (dots).
func WriteHTML(w io.Writer, r *Run) error {
	if r == nil {
		return errNoRun
	}
	page := htmlPage{Run: r, Totals: runTotals(r), Length: repRunLength(r), Start: repTime(r.Start), End: repTime(r.End)}
	for i := range r.Results {
		res := &r.Results[i]
		c, p := resultMeasures(res)
		hr := htmlResult{
			Anchor: fmt.Sprintf("r%d", i), Case: res.Case, Name: res.Name, Site: repSite(res),
			Status: string(res.Status), StatusWord: statusText(res.Status), Reason: repOneLine(res.Reason),
			Start: repTime(res.Start), End: repTime(res.End), Completeness: c, P99: p,
		}
		for _, a := range res.Assets {
			ha := htmlAsset{
				Asset: a.Asset, Profile: a.Profile, Cycles: a.Cycles, Arrived: a.Arrived, Equal: a.Equal,
				Completeness: strconv.FormatFloat(a.Completeness, 'f', 1, 64) + " %",
			}
			ha.P50, ha.P99, ha.Max = assetDelays(&a)
			for _, m := range a.Mismatches {
				ha.Mismatches = append(ha.Mismatches, fmt.Sprintf("%s at %s: device %s, platform %s",
					repSeriesName(m.Quantity, m.Phase), repTime(m.Time), repValue(m.Device), repValue(m.Platform)))
			}
			for _, s := range a.Series {
				ha.Plots = append(ha.Plots, layoutPlot(s))
			}
			hr.Assets = append(hr.Assets, ha)
		}
		page.Results = append(page.Results, hr)
	}
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, page); err != nil {
		return fmt.Errorf("itc: run as HTML: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// layoutPlot lays out one series: time across, value up, both axes ticked at
// round values; the device's values as a line, the platform's as dots, red
// where they differ from the device's value of the same cycle.
func layoutPlot(s PlotSeries) svgPlot {
	dev, plat := finitePoints(s.Device), finitePoints(s.Platform)
	p := svgPlot{
		Title: repSeriesName(s.Quantity, s.Phase), Unit: s.Unit, W: plotW, H: plotH,
		X0: plotLeft, X1: plotLeft + plotInnerW, Y0: plotTop, Y1: plotTop + plotInnerH,
		DevicePoints: len(dev), PlatformPoints: len(plat),
	}
	yTitle := "value"
	if s.Unit != "" && s.Unit != "1" {
		yTitle = s.Unit
	}
	p.XLabel = svgTick{X: p.X0 + plotInnerW/2, Y: plotH - 6, Label: "time (UTC)"}
	p.YLabel = svgTick{X: 14, Y: p.Y0 + plotInnerH/2, Label: yTitle}
	if len(dev)+len(plat) == 0 {
		return p
	}
	// A device holds each value for its whole cycle: the line is a step
	// per cycle, the last one as long as the one before it.
	var cycle int64
	if n := len(dev); n > 1 {
		cycle = dev[n-1].T - dev[n-2].T
	}
	tLo, tHi := int64(math.MaxInt64), int64(math.MinInt64)
	vLo, vHi := math.Inf(1), math.Inf(-1)
	for _, pts := range [][]PlotPoint{dev, plat} {
		for _, q := range pts {
			tLo, tHi = min(tLo, q.T), max(tHi, q.T)
			vLo, vHi = min(vLo, q.V), max(vHi, q.V)
		}
	}
	if len(dev) > 0 {
		tHi = max(tHi, dev[len(dev)-1].T+cycle)
	}
	if tHi == tLo {
		tLo, tHi = tLo-1000, tHi+1000
	}
	if vHi == vLo {
		pad := math.Max(math.Abs(vLo)*0.1, 1)
		vLo, vHi = vLo-pad, vHi+pad
	}
	ticks := niceTicks(vLo, vHi, plotYTicks)
	vLo, vHi = math.Min(vLo, ticks[0]), math.Max(vHi, ticks[len(ticks)-1])
	x := func(t int64) float64 { return p.X0 + float64(t-tLo)/float64(tHi-tLo)*plotInnerW }
	y := func(v float64) float64 { return p.Y1 - (v-vLo)/(vHi-vLo)*plotInnerH }
	for _, v := range ticks {
		p.YTicks = append(p.YTicks, svgTick{X: p.X0 - 6, Y: y(v), Label: repValue(v)})
	}
	for _, t := range timeTicks(tLo, tHi, plotXTicks) {
		p.XTicks = append(p.XTicks, svgTick{X: x(t), Y: p.Y1 + 16, Label: time.UnixMilli(t).UTC().Format("15:04:05")})
	}
	var line strings.Builder
	steps := thinPoints(dev)
	for i, q := range steps {
		if i > 0 {
			fmt.Fprintf(&line, " %.1f,%.1f ", x(q.T), y(steps[i-1].V))
		}
		fmt.Fprintf(&line, "%.1f,%.1f", x(q.T), y(q.V))
	}
	if n := len(steps); n > 0 {
		fmt.Fprintf(&line, " %.1f,%.1f", x(steps[n-1].T+cycle), y(steps[n-1].V))
	}
	p.Line = line.String()
	// held is the device's value at t: that of the last cycle started by
	// then, if t falls within two cycles of its start.
	held := func(t int64) (float64, bool) {
		i := sort.Search(len(dev), func(i int) bool { return dev[i].T > t }) - 1
		if i < 0 || (cycle > 0 && t-dev[i].T > 2*cycle) {
			return 0, false
		}
		return dev[i].V, true
	}
	for _, q := range thinPoints(plat) {
		d, ok := held(q.T)
		// A reading stamped just after a cycle began may hold the cycle
		// before's value: a poll takes time (see boundary).
		before, okBefore := held(q.T - boundary.Milliseconds())
		off := ok && !plotClose(d, q.V) && !(okBefore && plotClose(before, q.V))
		if off {
			p.Differ++
		}
		title := fmt.Sprintf("%s platform %s", time.UnixMilli(q.T).UTC().Format("15:04:05.000"), repValue(q.V))
		if ok {
			title += ", device " + repValue(d)
		}
		p.Dots = append(p.Dots, svgDot{X: x(q.T), Y: y(q.V), Off: off, Title: title})
	}
	return p
}

// finitePoints returns the points with a finite value, in time order.
func finitePoints(pts []PlotPoint) []PlotPoint {
	out := make([]PlotPoint, 0, len(pts))
	for _, q := range pts {
		if !math.IsNaN(q.V) && !math.IsInf(q.V, 0) {
			out = append(out, q)
		}
	}
	slices.SortStableFunc(out, func(a, b PlotPoint) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})
	return out
}

// thinPoints keeps at most htmlMaxPoints points, evenly spaced, and the last.
func thinPoints(pts []PlotPoint) []PlotPoint {
	if len(pts) <= htmlMaxPoints {
		return pts
	}
	out := make([]PlotPoint, 0, htmlMaxPoints+1)
	step := float64(len(pts)) / htmlMaxPoints
	for i := 0.0; int(i) < len(pts); i += step {
		out = append(out, pts[int(i)])
	}
	if out[len(out)-1] != pts[len(pts)-1] {
		out = append(out, pts[len(pts)-1])
	}
	return out
}

func plotClose(a, b float64) bool {
	return math.Abs(a-b) <= plotRelTolerance*math.Max(math.Abs(a), math.Abs(b))
}

// niceTicks returns about n round values (1, 2 or 5 times a power of ten
// apart) covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	if step <= 0 || math.IsInf(step, 0) || math.IsNaN(step) {
		return []float64{lo, hi}
	}
	start := math.Floor(lo/step) * step
	var out []float64
	// Round each tick to the step's decimals, so 0.30000000000000004 reads 0.3.
	dec := max(0, 1-int(math.Floor(math.Log10(step))))
	for i := 0; len(out) <= 2*n+2; i++ {
		v := start + float64(i)*step
		if v > hi+step/2 {
			break
		}
		r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'f', dec, 64), 64)
		if err != nil {
			r = v
		}
		out = append(out, r)
	}
	if len(out) < 2 {
		return []float64{lo, hi}
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 0
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		return mag
	case f <= 2:
		return 2 * mag
	case f <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// timeSteps are the round time steps the time axis uses, in ms.
var timeSteps = []int64{1, 2, 5, 10, 20, 50, 100, 200, 500,
	1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3,
	3600e3, 2 * 3600e3, 6 * 3600e3, 12 * 3600e3, 24 * 3600e3}

// timeTicks returns about n round times within [lo, hi] (Unix ms).
func timeTicks(lo, hi int64, n int) []int64 {
	span := hi - lo
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= int64(n) {
			step = s
			break
		}
	}
	first := lo - ((lo%step)+step)%step
	if first < lo {
		first += step
	}
	var out []int64
	for t := first; t <= hi && len(out) <= 4*n; t += step {
		out = append(out, t)
	}
	return out
}

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gridlink ITC run {{.Run.ID}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d2329;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.5rem;border-top:1px solid #d0d7de;padding-top:1rem}
h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#116329;font-weight:600}.failed{color:#b42318;font-weight:600}
.suspended{color:#9a6700;font-weight:600}.not_run{color:#57606a;font-weight:600}
.reason{max-width:36rem}
svg{background:#fff;border:1px solid #d0d7de;margin:.25rem 1rem .75rem 0}
svg text{font-size:11px;fill:#1d2329}
.grid{stroke:#eaeef2}.axis{stroke:#57606a}
.dev{fill:none;stroke:#0969da;stroke-width:1.5}
.plat{fill:#1a7f37}.plat.off{fill:#cf222e}
.legend{font-size:.85rem;color:#57606a}
</style>
</head>
<body>
<h1>gridlink integration test run {{.Run.ID}}</h1>
<p>Platform <code>{{.Run.Platform}}</code>, from {{.Start}} to {{.End}} ({{.Length}}).<br>
<strong>{{.Totals}}</strong></p>
<table>
<thead><tr><th>Case</th><th>Name</th><th>Site</th><th>Status</th><th>Completeness</th><th>Delay p99</th><th>Reason</th></tr></thead>
<tbody>
{{- range .Results}}
<tr><td><a href="#{{.Anchor}}">{{.Case}}</a></td><td>{{.Name}}</td><td>{{.Site}}</td><td class="{{.Status}}">{{.StatusWord}}</td><td class="n">{{.Completeness}}</td><td class="n">{{.P99}}</td><td class="reason">{{.Reason}}</td></tr>
{{- end}}
</tbody>
</table>
<p class="legend">In each plot the blue steps are what the device held through each measuring cycle, the dots what the platform holds: green where it equals the device's value, red where it differs.</p>
{{- range .Results}}
<h2 id="{{.Anchor}}">{{.Case}} {{.Name}} — {{.Site}}</h2>
<p><span class="{{.Status}}">{{.StatusWord}}</span> ({{.Start}} to {{.End}}){{if .Reason}}: {{.Reason}}{{end}}</p>
{{- if .Assets}}
<table>
<thead><tr><th>Asset</th><th>Profile</th><th>Cycles</th><th>Arrived</th><th>Equal</th><th>Completeness</th><th>Delay p50</th><th>p99</th><th>max</th></tr></thead>
<tbody>
{{- range .Assets}}
<tr><td>{{.Asset}}</td><td>{{.Profile}}</td><td class="n">{{.Cycles}}</td><td class="n">{{.Arrived}}</td><td class="n">{{.Equal}}</td><td class="n">{{.Completeness}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td><td class="n">{{.Max}}</td></tr>
{{- end}}
</tbody>
</table>
{{- range .Assets}}
{{- if or .Mismatches .Plots}}
<h3>{{.Asset}}</h3>
{{- end}}
{{- if .Mismatches}}
<p>Values that differ:</p>
<ul>{{range .Mismatches}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
{{- range .Plots}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}: device {{.DevicePoints}} points, platform {{.PlatformPoints}} points, {{.Differ}} differ">
<title>{{.Title}} ({{.Unit}})</title>
{{- $p := .}}
{{- range .YTicks}}
<line class="grid" x1="{{f $p.X0}}" x2="{{f $p.X1}}" y1="{{f .Y}}" y2="{{f .Y}}"/>
<text x="{{f .X}}" y="{{f .Y}}" text-anchor="end" dominant-baseline="middle">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<line class="grid" x1="{{f .X}}" x2="{{f .X}}" y1="{{f $p.Y0}}" y2="{{f $p.Y1}}"/>
<text x="{{f .X}}" y="{{f .Y}}" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line class="axis" x1="{{f .X0}}" x2="{{f .X1}}" y1="{{f .Y1}}" y2="{{f .Y1}}"/>
<line class="axis" x1="{{f .X0}}" x2="{{f .X0}}" y1="{{f .Y0}}" y2="{{f .Y1}}"/>
<text x="{{f .XLabel.X}}" y="{{f .XLabel.Y}}" text-anchor="middle">{{.XLabel.Label}}</text>
<text x="{{f .YLabel.X}}" y="{{f .YLabel.Y}}" text-anchor="middle" transform="rotate(-90 {{f .YLabel.X}} {{f .YLabel.Y}})">{{.YLabel.Label}}</text>
<text x="{{f .X1}}" y="10" text-anchor="end">{{.Title}}{{if .Unit}} ({{.Unit}}){{end}}</text>
{{- if .Line}}
<polyline class="dev" points="{{.Line}}"/>
{{- end}}
{{- range .Dots}}
<circle class="plat{{if .Off}} off{{end}}" cx="{{f .X}}" cy="{{f .Y}}" r="3"><title>{{.Title}}</title></circle>
{{- end}}
{{- if not (or .DevicePoints .PlatformPoints)}}
<text x="{{f .XLabel.X}}" y="{{f .YLabel.Y}}" text-anchor="middle">no values</text>
{{- end}}
</svg>
{{- end}}
{{- end}}
{{- end}}
{{- end}}
</body>
</html>
`
