package render

import (
	"image"
	"image/color"
	"math"
	"slices"

	"github.com/fogleman/gg"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/i420"
)

// canvas is the drawing surface: *gg.Context, or *hardCanvas when aliased.
type canvas interface {
	SetColor(c color.Color)
	SetLineWidth(w float64)
	MoveTo(x, y float64)
	LineTo(x, y float64)
	ClosePath()
	Stroke()
	Fill()
}

// scene is everything about one (curve, options) pair that does not change
// from frame to frame. It is read-only once built, shared by every goroutine
// of a render.
type scene struct {
	o      Options // with defaults
	c      curve.Curve
	spin   int
	frames int
	n      int       // curve samples per period
	px, py []float64 // the n+1 samples (t = 2π·i/n), in pixels
	ex, ey []float64 // the pen at the end of each frame, in pixels
	scale  float64   // pixels per curve unit
	cx, cy float64   // the image centre: curve origin

	outlines [][]complex128 // each wheel's outline in pixel units, unturned
	wheelCol color.RGBA     // wheel outlines
	armCol   color.RGBA     // arms
	wheelW   float64        // wheel outline width
	armW     float64        // arm width
	dotR     float64        // pen dot radius
	dot      []complex128   // unit circle for the pen dot

	testHook func(frame int) // tests only: called by each worker per frame
}

// reducePhases brings huge phases into [0, 2π): trigonometry and math.Mod on
// arguments near 1e308 cost ~100× more per sample, which a tiny request could
// otherwise exploit. Ordinary phases are left alone so output stays
// bit-identical.
func reducePhases(c curve.Curve) curve.Curve {
	const huge = 1 << 20
	if !slices.ContainsFunc(c.Wheels, func(w curve.Wheel) bool { return math.Abs(w.Phase) > huge }) {
		return c
	}
	c = c.Clone()
	for i := range c.Wheels {
		if math.Abs(c.Wheels[i].Phase) > huge {
			c.Wheels[i].Phase = math.Mod(c.Wheels[i].Phase, 2*math.Pi)
		}
	}
	return c
}

// newScene prepares c for drawing with o (defaults applied).
//
// The curve should be valid (curve.Curve.Validate); one with a non-finite
// number anywhere in it, or too large to measure, draws as an empty curve
// rather than feeding NaNs to the rasteriser.
func newScene(c curve.Curve, o Options) *scene {
	o = o.WithDefaults()
	if !drawable(c) {
		c = curve.Curve{}
	}
	c = reducePhases(c)
	sc := &scene{o: o, c: c, spin: c.Spin(), frames: o.Frames}
	maxF := 0
	for _, w := range c.Wheels {
		maxF = max(maxF, abs(w.Frequency), abs(w.Frequency-sc.spin))
	}
	// Enough samples for every frame to have its own, and for the fastest
	// term to turn by at most ~0.4 rad between samples.
	sc.n = min(1<<16, max(DefaultSamples, o.Frames, 16*maxF))

	lw := o.LineWidth
	sc.wheelW = max(1, 0.6*lw)
	sc.armW = max(1, 0.75*lw)
	sc.dotR = max(2.5, 2*lw)

	zs := make([]complex128, sc.n+1)
	extent := 0.0
	for i := range zs {
		zs[i] = c.Eval(2 * math.Pi * float64(i) / float64(sc.n))
		extent = max(extent, cabs(zs[i]))
	}
	es := make([]complex128, sc.frames)
	for f := range es {
		es[f] = c.Eval(sc.frameT(f))
		extent = max(extent, cabs(es[f]))
	}
	minDim := float64(min(o.Width, o.Height))
	pad := max(0.04*minDim, lw) + lw/2 + 1
	if o.Style == Wheels {
		extent = max(extent, c.OutlineBounds())
		pad += sc.dotR
	}
	sc.scale = 1
	if math.IsInf(extent, 0) || math.IsNaN(extent) {
		return newScene(curve.Curve{}, o)
	}
	if extent > 0 && minDim/2 > pad {
		// Capped so a curve of subnormal radii stays finite (a dot).
		sc.scale = min(1e300, (minDim/2-pad)/extent)
	}
	sc.cx, sc.cy = float64(o.Width)/2, float64(o.Height)/2

	sc.px, sc.py = make([]float64, len(zs)), make([]float64, len(zs))
	for i, z := range zs {
		sc.px[i], sc.py[i] = sc.pixel(z)
	}
	sc.ex, sc.ey = make([]float64, len(es)), make([]float64, len(es))
	for i, z := range es {
		sc.ex[i], sc.ey[i] = sc.pixel(z)
	}

	if o.Style == Wheels {
		contrast := color.RGBA{0xff, 0xff, 0xff, 0xff}
		bg := o.Background
		if 299*int(bg.R)+587*int(bg.G)+114*int(bg.B) > 128*1000 {
			contrast = color.RGBA{0, 0, 0, 0xff}
		}
		sc.wheelCol = mix(bg, contrast, 0.35)
		sc.armCol = mix(bg, contrast, 0.6)
		sc.outlines = make([][]complex128, len(c.Wheels))
		for j, w := range c.Wheels {
			rpx := w.Radius * sc.scale
			segs := int(math.Ceil(2 * math.Pi * rpx / 5))
			pts := w.Shape.Outline(w.Aspect, min(160, max(16, segs)), nil)
			for k, p := range pts {
				pts[k] = complex(rpx*real(p), rpx*imag(p))
			}
			sc.outlines[j] = pts
		}
		segs := min(48, max(12, int(math.Ceil(2*math.Pi*sc.dotR/2))))
		sc.dot = curve.Circle.Outline(0, segs, nil)
	}
	return sc
}

// drawable reports whether every number in c is finite.
func drawable(c curve.Curve) bool {
	for _, w := range c.Wheels {
		aspect := 0.0
		if w.Shape == curve.Ellipse {
			aspect = w.Aspect // ignored for the other shapes
		}
		for _, x := range []float64{w.Radius, w.Phase, aspect} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
	}
	return true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func cabs(z complex128) float64 { return math.Hypot(real(z), imag(z)) }

func mix(a, b color.RGBA, f float64) color.RGBA {
	m := func(x, y uint8) uint8 { return uint8(math.Round(float64(x)*(1-f) + float64(y)*f)) }
	return color.RGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 0xff}
}

// pixel maps a curve point to image coordinates (y up in the curve, down in
// the image).
func (sc *scene) pixel(z complex128) (float64, float64) {
	return sc.cx + sc.scale*real(z), sc.cy - sc.scale*imag(z)
}

// frameT is the t the trail reaches at frame f: 2π·f/(F−1); the single frame
// of a one-frame animation holds the whole curve.
func (sc *scene) frameT(f int) float64 {
	if sc.frames <= 1 {
		return 2 * math.Pi
	}
	return 2 * math.Pi * float64(f) / float64(sc.frames-1)
}

// frameNum returns frame f's end as the fraction num/den of the period.
func (sc *scene) frameNum(f int) (num, den int) {
	if sc.frames <= 1 {
		return 1, 1
	}
	return f, sc.frames - 1
}

func (sc *scene) newImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, sc.o.Width, sc.o.Height))
	fillRGBA(img, sc.o.Background)
	return img
}

// fillRGBA paints every pixel of img with c.
func fillRGBA(img *image.RGBA, c color.RGBA) {
	if len(img.Pix) < 4 {
		return
	}
	pix := img.Pix
	pix[0], pix[1], pix[2], pix[3] = c.R, c.G, c.B, c.A
	for n := 4; n < len(pix); n *= 2 {
		copy(pix[n:], pix[:n])
	}
}

func (sc *scene) newCanvas(img *image.RGBA) canvas {
	if sc.o.Aliased {
		return newHardCanvas(img)
	}
	return gg.NewContextForRGBA(img)
}

// drawSegment strokes the stretch of curve frame f adds to the trail: from
// the pen at frame f−1 (the start for f = 0) through the samples strictly
// between to the pen at frame f. Frame 0 of a longer animation adds nothing.
// Every way of reaching frame f makes exactly these calls, in order. If
// dirty is not nil, what the stroke can touch is added to it.
func (sc *scene) drawSegment(cv canvas, f int, dirty *region) {
	num, den := sc.frameNum(f)
	var x0, y0 float64
	lo := 0 // first interior sample is the first i with i·den > pnum·n
	if f > 0 {
		pnum, _ := sc.frameNum(f - 1)
		x0, y0 = sc.ex[f-1], sc.ey[f-1]
		lo = pnum*sc.n/den + 1
	} else {
		if num == 0 {
			return
		}
		x0, y0 = sc.px[0], sc.py[0]
		lo = 1
	}
	hi := (num*sc.n - 1) / den // last i with i·den < num·n
	m := strokeMargin(sc.o.LineWidth)
	cv.SetColor(sc.o.Pen)
	cv.SetLineWidth(sc.o.LineWidth)
	cv.MoveTo(x0, y0)
	px, py := x0, y0
	for i := lo; i <= hi; i++ {
		cv.LineTo(sc.px[i], sc.py[i])
		if dirty != nil {
			dirty.addSegment(px, py, sc.px[i], sc.py[i], m)
		}
		px, py = sc.px[i], sc.py[i]
	}
	cv.LineTo(sc.ex[f], sc.ey[f])
	if dirty != nil {
		dirty.addSegment(px, py, sc.ex[f], sc.ey[f], m)
	}
	cv.Stroke()
}

// strokeMargin is how far beyond a stroked path's points paint can reach: half
// the width (round caps and joins), a pixel of antialiasing, and slack.
func strokeMargin(width float64) float64 { return width/2 + 2 }

// drawCurve strokes the whole curve as one closed path (the finished still).
func (sc *scene) drawCurve(cv canvas) {
	cv.SetColor(sc.o.Pen)
	cv.SetLineWidth(sc.o.LineWidth)
	cv.MoveTo(sc.px[0], sc.py[0])
	for i := 1; i < sc.n; i++ {
		cv.LineTo(sc.px[i], sc.py[i])
	}
	cv.ClosePath()
	cv.Stroke()
}

// drawWheels draws the Wheels overlay at t: every wheel's outline centred on
// its centre and turned by Spin·t, the arms, and the pen dot. buf is scratch
// space for the centres; the (possibly grown) buffer is returned.
func (sc *scene) drawWheels(cv canvas, t float64, buf []complex128) []complex128 {
	if len(sc.c.Wheels) == 0 {
		return buf
	}
	buf = sc.c.Centers(t, buf)
	sn, cs := math.Sincos(float64(sc.spin) * t)
	rot := complex(cs, sn)

	cv.SetColor(sc.wheelCol)
	cv.SetLineWidth(sc.wheelW)
	for j, pts := range sc.outlines {
		ox, oy := sc.pixel(buf[j])
		for k, p := range pts {
			q := rot * p
			x, y := ox+real(q), oy-imag(q)
			if k == 0 {
				cv.MoveTo(x, y)
			} else {
				cv.LineTo(x, y)
			}
		}
		cv.ClosePath()
		// One stroke per wheel: the rasteriser keeps a sorted cell list per
		// row, and rows crossing every outline at once make it slow.
		cv.Stroke()
	}

	cv.SetColor(sc.armCol)
	cv.SetLineWidth(sc.armW)
	for j, z := range buf {
		x, y := sc.pixel(z)
		if j == 0 {
			cv.MoveTo(x, y)
		} else {
			cv.LineTo(x, y)
		}
	}
	cv.Stroke()

	px, py := sc.pixel(buf[len(buf)-1])
	cv.SetColor(sc.o.Pen)
	for k, p := range sc.dot {
		x, y := px+sc.dotR*real(p), py-sc.dotR*imag(p)
		if k == 0 {
			cv.MoveTo(x, y)
		} else {
			cv.LineTo(x, y)
		}
	}
	cv.ClosePath()
	cv.Fill()
	return buf
}

// wheelsRegion adds to r every pixel drawWheels can touch at t, given the
// centres there (from Curve.Centers): the same outline and arm segments,
// grown by the stroke margin, and the pen dot.
func (sc *scene) wheelsRegion(t float64, centers []complex128, r *region) {
	if len(sc.c.Wheels) == 0 {
		return
	}
	sn, cs := math.Sincos(float64(sc.spin) * t)
	rot := complex(cs, sn)
	m := strokeMargin(sc.wheelW)
	for j, pts := range sc.outlines {
		ox, oy := sc.pixel(centers[j])
		q := rot * pts[len(pts)-1]
		px, py := ox+real(q), oy-imag(q)
		for _, p := range pts {
			q := rot * p
			x, y := ox+real(q), oy-imag(q)
			r.addSegment(px, py, x, y, m)
			px, py = x, y
		}
	}
	m = strokeMargin(sc.armW)
	px, py := sc.pixel(centers[0])
	for _, z := range centers[1:] {
		x, y := sc.pixel(z)
		r.addSegment(px, py, x, y, m)
		px, py = x, y
	}
	rad := sc.dotR + 2
	r.addRect(px-rad, py-rad, px+rad, py+rad)
}

// trail is the persistent trail layer: the background plus frames 0..f's
// segments.
type trail struct {
	sc  *scene
	img *image.RGBA
	cv  canvas
	f   int // last frame drawn, -1 for none

	// With YUV tracking on, yuv is img in I420, kept up to date by
	// converting what each segment touched.
	yuv   []byte
	dirty *region
}

func (sc *scene) newTrail() *trail {
	img := sc.newImage()
	return &trail{sc: sc, img: img, cv: sc.newCanvas(img), f: -1}
}

// trackYUV turns on the upkeep of tr.yuv.
func (tr *trail) trackYUV() {
	tr.yuv = make([]byte, i420.Size(tr.img.Rect.Dx(), tr.img.Rect.Dy()))
	ToYUV420(tr.yuv, tr.img)
	tr.dirty = newRegion(tr.img.Rect.Dx(), tr.img.Rect.Dy())
}

// advance draws the segments of frames up to f.
func (tr *trail) advance(f int) {
	if tr.dirty != nil {
		tr.dirty.clear()
	}
	for tr.f < f {
		tr.f++
		tr.sc.drawSegment(tr.cv, tr.f, tr.dirty)
	}
	if tr.dirty != nil {
		tr.dirty.convert(tr.yuv, tr.img)
	}
}

// frame is a drawing buffer for one frame: its image, a canvas bound to it,
// and scratch space.
type frame struct {
	img     *image.RGBA
	cv      canvas
	centers []complex128
	region  *region // where the overlay may draw (Frames)
}

func (sc *scene) newFrame() *frame {
	img := image.NewRGBA(image.Rect(0, 0, sc.o.Width, sc.o.Height))
	return &frame{
		img: img, cv: sc.newCanvas(img),
		centers: make([]complex128, 0, len(sc.c.Wheels)+1),
		region:  newRegion(sc.o.Width, sc.o.Height),
	}
}

// overlay draws what goes over the trail at frame f onto fr (which already
// holds a copy of the trail at f, at least within sc.overlayRegion).
func (sc *scene) overlay(fr *frame, f int) {
	if sc.o.Style == Wheels {
		fr.centers = sc.drawWheels(fr.cv, sc.frameT(f), fr.centers)
	}
}

// overlayRegion sets fr.region to where overlay(fr, f) can draw.
func (sc *scene) overlayRegion(fr *frame, f int) {
	fr.region.clear()
	if sc.o.Style == Wheels {
		t := sc.frameT(f)
		fr.centers = sc.c.Centers(t, fr.centers)
		sc.wheelsRegion(t, fr.centers, fr.region)
	}
}

// Still draws one frame of c's animation as an image the caller owns: frame
// f of o.Frames (clamped to the last), or, for frame < 0, the finished curve
// stroked as one closed path with the wheels (Wheels style) at t = 2π. The
// result for frame >= 0 is pixel-identical to that frame of Frames. c should
// be valid (curve.Curve.Validate); one holding a NaN or an infinity draws as
// background.
func Still(c curve.Curve, o Options, frame int) *image.RGBA {
	sc := newScene(c, o)
	img := sc.newImage()
	cv := sc.newCanvas(img)
	var buf []complex128
	if frame < 0 {
		sc.drawCurve(cv)
		if sc.o.Style == Wheels {
			sc.drawWheels(cv, 2*math.Pi, buf)
		}
		return img
	}
	frame = min(frame, sc.frames-1)
	for f := 0; f <= frame; f++ {
		sc.drawSegment(cv, f, nil)
	}
	if sc.o.Style == Wheels {
		sc.drawWheels(cv, sc.frameT(frame), buf)
	}
	return img
}
