package render

import (
	"image"
	"image/color"

	"github.com/golang/freetype/raster"
	"golang.org/x/image/math/fixed"
)

// hardCanvas is the canvas for Options.Aliased. gg always antialiases, so this
// builds the same freetype raster paths gg builds (same 26.6 rounding, same
// dropping of points within 1/8 px, round caps and joins), rasterises them
// with the same rasteriser and paints only the pixels at least half covered,
// in the solid colour.
type hardCanvas struct {
	img   *image.RGBA
	r     *raster.Rasterizer
	path  raster.Path
	start fixed.Point26_6
	prev  fixed.Point26_6
	has   bool
	width float64
	col   color.RGBA
}

func newHardCanvas(img *image.RGBA) *hardCanvas {
	return &hardCanvas{img: img, r: raster.NewRasterizer(img.Rect.Dx(), img.Rect.Dy()), width: 1}
}

func fix26(x, y float64) fixed.Point26_6 {
	return fixed.Point26_6{X: fixed.Int26_6(x * 64), Y: fixed.Int26_6(y * 64)}
}

func (h *hardCanvas) SetColor(c color.Color) {
	r, g, b, _ := c.RGBA()
	h.col = color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xff}
}

func (h *hardCanvas) SetLineWidth(w float64) { h.width = w }

func (h *hardCanvas) MoveTo(x, y float64) {
	p := fix26(x, y)
	h.path.Start(p)
	h.start, h.prev, h.has = p, p, true
}

func (h *hardCanvas) LineTo(x, y float64) {
	if !h.has {
		h.MoveTo(x, y)
		return
	}
	p := fix26(x, y)
	d := p.Sub(h.prev)
	if d.X < 0 {
		d.X = -d.X
	}
	if d.Y < 0 {
		d.Y = -d.Y
	}
	if d.X+d.Y > 8 {
		h.path.Add1(p)
		h.prev = p
	}
}

func (h *hardCanvas) ClosePath() {
	if h.has {
		h.LineTo(unfix(h.start.X), unfix(h.start.Y))
	}
}

func unfix(x fixed.Int26_6) float64 { return float64(x) / 64 }

func (h *hardCanvas) Stroke() {
	h.r.Clear()
	h.r.UseNonZeroWinding = true
	h.r.AddStroke(h.path, fixed.Int26_6(h.width*64), raster.RoundCapper, raster.RoundJoiner)
	h.r.Rasterize(h)
	h.path.Clear()
	h.has = false
}

func (h *hardCanvas) Fill() {
	h.ClosePath()
	h.r.Clear()
	h.r.UseNonZeroWinding = true
	h.r.AddPath(h.path)
	h.r.Rasterize(h)
	h.path.Clear()
	h.has = false
}

// Paint implements raster.Painter: pixels at least half covered take the
// colour, the others are left alone.
func (h *hardCanvas) Paint(ss []raster.Span, _ bool) {
	b := h.img.Rect
	c := h.col
	for _, s := range ss {
		if s.Alpha < 0x8000 || s.Y < b.Min.Y || s.Y >= b.Max.Y {
			continue
		}
		x0, x1 := max(s.X0, b.Min.X), min(s.X1, b.Max.X)
		if x0 >= x1 {
			continue
		}
		i := h.img.PixOffset(x0, s.Y)
		row := h.img.Pix[i : i+4*(x1-x0)]
		for j := 0; j+3 < len(row); j += 4 {
			row[j], row[j+1], row[j+2], row[j+3] = c.R, c.G, c.B, c.A
		}
	}
}
