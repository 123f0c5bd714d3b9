package harness

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	black     = color.RGBA{0, 0, 0, 255}
	grey      = color.RGBA{200, 200, 200, 255}
	opColor   = color.RGBA{31, 119, 180, 255}
	baseColor = color.RGBA{255, 127, 14, 255}
)

// plot is one panel: a data rectangle inside an image with axes from 0 to xmax, ymax.
type plot struct {
	img        *image.RGBA
	r          image.Rectangle
	xmax, ymax float64
}

func (p *plot) pt(x, y float64) (int, int) {
	px := p.r.Min.X + int(x/p.xmax*float64(p.r.Dx()))
	py := p.r.Max.Y - int(y/p.ymax*float64(p.r.Dy()))
	return px, py
}

func (p *plot) line(x0, y0, x1, y1 float64, c color.Color) {
	ax, ay := p.pt(x0, y0)
	bx, by := p.pt(x1, y1)
	drawLine(p.img, ax, ay, bx, by, c)
}

func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// axes draws the frame, ticks and labels of p.
func (p *plot) axes(title, xlabel, ylabel string) {
	for i := 0; i <= 4; i++ {
		x := p.xmax * float64(i) / 4
		px, py := p.pt(x, 0)
		drawLine(p.img, px, p.r.Min.Y, px, py, grey)
		text(p.img, px-10, py+16, trimFloat(x), black)
		y := p.ymax * float64(i) / 4
		qx, qy := p.pt(0, y)
		drawLine(p.img, qx, qy, p.r.Max.X, qy, grey)
		text(p.img, qx-48, qy+4, trimFloat(y), black)
	}
	drawLine(p.img, p.r.Min.X, p.r.Max.Y, p.r.Max.X, p.r.Max.Y, black)
	drawLine(p.img, p.r.Min.X, p.r.Min.Y, p.r.Min.X, p.r.Max.Y, black)
	text(p.img, p.r.Min.X, p.r.Min.Y-8, title, black)
	text(p.img, p.r.Min.X+p.r.Dx()/2-len(xlabel)*3, p.r.Max.Y+30, xlabel, black)
	text(p.img, p.r.Max.X-len(ylabel)*7, p.r.Min.Y-8, ylabel, black)
}

func trimFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// writeChart draws the create→Ready latency distribution (left) and certificates Ready over
// time (right) for the operator and the baseline.
func writeChart(path string, r *Results) error {
	const w, h = 1200, 520
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	series := []struct {
		name string
		s    *latencyStats
		c    color.Color
	}{{"cert-operator", &r.Issuance.Operator, opColor}, {"baseline", r.Issuance.Baseline, baseColor}}

	// Left: histogram of latencies (40 bins), as lines.
	maxLat, maxAt := 0.0, 0.0
	for _, s := range series {
		if s.s == nil {
			continue
		}
		for _, l := range s.s.Latencies {
			maxLat = math.Max(maxLat, l)
		}
		for _, a := range s.s.ReadyAt {
			maxAt = math.Max(maxAt, a)
		}
	}
	if maxLat == 0 {
		maxLat = 1
	}
	if maxAt == 0 {
		maxAt = 1
	}
	const bins = 40
	hists := make([][]float64, len(series))
	maxCount := 1.0
	for i, s := range series {
		if s.s == nil {
			continue
		}
		hists[i] = make([]float64, bins)
		for _, l := range s.s.Latencies {
			b := int(l / maxLat * bins)
			if b >= bins {
				b = bins - 1
			}
			hists[i][b]++
		}
		for _, c := range hists[i] {
			maxCount = math.Max(maxCount, c)
		}
	}
	left := &plot{img: img, r: image.Rect(70, 50, 560, 450), xmax: maxLat, ymax: maxCount * 1.1}
	left.axes(fmt.Sprintf("create -> Ready latency, %d at once", r.Parameters.Certs), "seconds", "certificates per bin")
	for i, s := range series {
		if hists[i] == nil {
			continue
		}
		for b := 0; b < bins; b++ {
			x0, x1 := maxLat*float64(b)/bins, maxLat*float64(b+1)/bins
			left.line(x0, hists[i][b], x1, hists[i][b], s.c)
			if b+1 < bins {
				left.line(x1, hists[i][b], x1, hists[i][b+1], s.c)
			}
		}
	}
	// Right: cumulative Ready over time.
	right := &plot{img: img, r: image.Rect(690, 50, 1170, 450), xmax: maxAt, ymax: float64(r.Parameters.Certs) * 1.05}
	right.axes("certificates Ready over time", "seconds since first create", "Ready")
	for _, s := range series {
		if s.s == nil {
			continue
		}
		px, py := 0.0, 0.0
		for i, a := range s.s.ReadyAt {
			right.line(px, py, a, float64(i+1), s.c)
			px, py = a, float64(i+1)
		}
	}
	for i, s := range series {
		if s.s == nil {
			continue
		}
		y := 508
		x := 70 + i*400
		for d := 0; d < 20; d++ {
			drawLine(img, x+d, y-4, x+d, y-2, s.c)
		}
		text(img, x+26, y, fmt.Sprintf("%s: %.1f/s, p99 %.2fs", s.name, s.s.ThroughputPerS, s.s.P99S), black)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
