// Package synth generates deterministic, realistic-looking spirograph frames
// in planar I420 (yuv420p) for tests and benchmarks of the encoder. It does
// not depend on the real renderer: it mirrors the scene of the matplotlib
// baseline (internal/bench/baseline/seed_matplotlib.py: black background, a Farris
// "wheels on wheels" curve traced progressively in #33b5ff, the wheels as
// faint white circles with their links, a red pen dot) closely enough that
// encoder settings measured on it transfer to the real frames.
package synth

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
)

// Source produces the frames of one animation, in order.
type Source struct {
	w, h, frames int
	n            []float64    // wheel frequencies
	a            []complex128 // wheel radii (complex: phase)
	scale        float64      // pixels per curve unit
	trail        []float32    // persistent RGB canvas (linear 0..1), w*h*3
	frame        []float32    // scratch: trail + wheels
	next         int          // index of the next frame
	drawnSteps   int          // curve samples already on the trail
	steps        int          // curve samples per frame
}

// New returns a Source of frames w×h (both even) for an animation of frames
// frames, seeded with seed. The same arguments always give the same frames.
func New(w, h, frames int, seed uint64) *Source {
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 || frames <= 0 {
		panic("synth: width and height must be positive and even, frames positive")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	const wheels, kfold, cong = 12, 3, 1
	var cand []float64
	for m := -9; m <= 9; m++ {
		if f := cong + kfold*m; f != 0 {
			cand = append(cand, float64(f))
		}
	}
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	s := &Source{w: w, h: h, frames: frames, steps: 8}
	var total float64
	mags := make([]float64, wheels)
	for j := range wheels {
		s.n = append(s.n, cand[j])
		mags[j] = (0.35 + 0.65*rng.Float64()) / math.Pow(math.Abs(cand[j]), 0.9)
		total += mags[j]
	}
	for j := range wheels {
		phi := 2 * math.Pi * rng.Float64()
		s.a = append(s.a, cmplx.Rect(mags[j]/total, phi))
	}
	// biggest wheel first (anchored at the origin), like the baseline
	for i := 1; i < wheels; i++ {
		for j := i; j > 0 && cmplx.Abs(s.a[j]) > cmplx.Abs(s.a[j-1]); j-- {
			s.a[j], s.a[j-1] = s.a[j-1], s.a[j]
			s.n[j], s.n[j-1] = s.n[j-1], s.n[j]
		}
	}
	s.scale = float64(min(w, h)) / 2 / 1.05
	s.trail = make([]float32, w*h*3)
	s.frame = make([]float32, w*h*3)
	return s
}

func (s *Source) t(step int) float64 {
	return 2 * math.Pi * float64(step) / float64(s.frames*s.steps)
}

func (s *Source) px(z complex128) (float64, float64) {
	return float64(s.w)/2 + real(z)*s.scale, float64(s.h)/2 - imag(z)*s.scale
}

func (s *Source) curve(t float64) complex128 {
	var z complex128
	for j := range s.n {
		z += s.a[j] * cmplx.Exp(complex(0, s.n[j]*t))
	}
	return z
}

// Next writes the next frame into dst (len ≥ i420.Size(w, h)) and reports
// false once all frames have been produced.
func (s *Source) Next(dst []byte) bool {
	if s.next >= s.frames {
		return false
	}
	i := s.next
	s.next++
	// extend the trail up to this frame's time
	upto := 0
	if s.frames > 1 {
		upto = int(math.Round(float64(i) * float64(s.frames*s.steps) / float64(s.frames-1)))
	}
	trace := [3]float32{0x33 / 255.0, 0xb5 / 255.0, 1}
	for k := s.drawnSteps; k < upto; k++ {
		x0, y0 := s.px(s.curve(s.t(k)))
		x1, y1 := s.px(s.curve(s.t(k + 1)))
		line(s.trail, s.w, s.h, x0, y0, x1, y1, 0.95, trace, 1)
	}
	if upto > s.drawnSteps {
		s.drawnSteps = upto
	}
	copy(s.frame, s.trail)
	// wheels at the current time
	t := s.t(upto)
	white := [3]float32{1, 1, 1}
	c := complex128(0)
	for j := range s.n {
		r := cmplx.Abs(s.a[j]) * s.scale
		cx, cy := s.px(c)
		circle(s.frame, s.w, s.h, cx, cy, r, 0.45, white, 0.45)
		next := c + s.a[j]*cmplx.Exp(complex(0, s.n[j]*t))
		nx, ny := s.px(next)
		line(s.frame, s.w, s.h, cx, cy, nx, ny, 0.55, white, 0.8)
		disc(s.frame, s.w, s.h, nx, ny, 1.4, white, 0.8)
		c = next
	}
	px, py := s.px(c)
	disc(s.frame, s.w, s.h, px, py, 3.2, [3]float32{1, 0x40 / 255.0, 0x60 / 255.0}, 1)
	toI420(dst, s.frame, s.w, s.h)
	return true
}

// blend paints colour col with coverage cov·alpha onto pixel (x, y).
func blend(buf []float32, w, h, x, y int, col [3]float32, a float32) {
	if x < 0 || y < 0 || x >= w || y >= h || a <= 0 {
		return
	}
	p := (y*w + x) * 3
	for c := range 3 {
		buf[p+c] += (col[c] - buf[p+c]) * a
	}
}

// line draws an antialiased segment of half-width hw.
func line(buf []float32, w, h int, x0, y0, x1, y1, hw float64, col [3]float32, alpha float32) {
	minx := int(math.Floor(min(x0, x1) - hw - 1))
	maxx := int(math.Ceil(max(x0, x1) + hw + 1))
	miny := int(math.Floor(min(y0, y1) - hw - 1))
	maxy := int(math.Ceil(max(y0, y1) + hw + 1))
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	for y := max(miny, 0); y <= min(maxy, h-1); y++ {
		for x := max(minx, 0); x <= min(maxx, w-1); x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			u := 0.0
			if l2 > 0 {
				u = math.Max(0, math.Min(1, ((px-x0)*dx+(py-y0)*dy)/l2))
			}
			ex, ey := px-(x0+u*dx), py-(y0+u*dy)
			d := math.Sqrt(ex*ex + ey*ey)
			cov := math.Max(0, math.Min(1, hw+0.5-d))
			if cov > 0 {
				blend(buf, w, h, x, y, col, float32(cov)*alpha)
			}
		}
	}
}

// circle draws an antialiased ring as a polyline.
func circle(buf []float32, w, h int, cx, cy, r, hw float64, col [3]float32, alpha float32) {
	n := max(12, int(2*math.Pi*r/6))
	px, py := cx+r, cy
	for k := 1; k <= n; k++ {
		a := 2 * math.Pi * float64(k) / float64(n)
		x, y := cx+r*math.Cos(a), cy+r*math.Sin(a)
		line(buf, w, h, px, py, x, y, hw, col, alpha)
		px, py = x, y
	}
}

// disc draws an antialiased filled disc.
func disc(buf []float32, w, h int, cx, cy, r float64, col [3]float32, alpha float32) {
	for y := max(int(cy-r-1), 0); y <= min(int(cy+r+1), h-1); y++ {
		for x := max(int(cx-r-1), 0); x <= min(int(cx+r+1), w-1); x++ {
			d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
			cov := math.Max(0, math.Min(1, r+0.5-d))
			blend(buf, w, h, x, y, col, float32(cov)*alpha)
		}
	}
}

// toI420 converts the RGB canvas to BT.601 limited-range planar 4:2:0.
func toI420(dst []byte, rgb []float32, w, h int) {
	clamp := func(v float32) byte {
		if v < 0 {
			return 0
		}
		if v > 255 {
			return 255
		}
		return byte(v + 0.5)
	}
	yp := dst[:w*h]
	up := dst[w*h : w*h+(w/2)*(h/2)]
	vp := dst[w*h+(w/2)*(h/2):]
	for y := range h {
		for x := range w {
			p := (y*w + x) * 3
			r, g, b := rgb[p]*255, rgb[p+1]*255, rgb[p+2]*255
			yp[y*w+x] = clamp(16 + 0.257*r + 0.504*g + 0.098*b)
		}
	}
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			var r, g, b float32
			for _, o := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				p := ((2*y+o[1])*w + 2*x + o[0]) * 3
				r += rgb[p]
				g += rgb[p+1]
				b += rgb[p+2]
			}
			r, g, b = r*255/4, g*255/4, b*255/4
			up[y*(w/2)+x] = clamp(128 - 0.148*r - 0.291*g + 0.439*b)
			vp[y*(w/2)+x] = clamp(128 + 0.439*r - 0.368*g - 0.071*b)
		}
	}
}
