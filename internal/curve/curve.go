// Package curve is the domain model of whirl: Farris-wheel ("spirograph")
// curves, their random generation from a seed, validation and evaluation.
//
// # The model
//
// A curve is a sum of rotating terms, one per wheel:
//
//	z(t) = Σ_j r_j · e^{iγt} · S_j((n_j − γ)·t + φ_j),   t ∈ [0, 2π)
//
// where r_j, n_j, φ_j are the wheel's radius, frequency and phase, S_j its
// shape (see Shape.At) and γ the curve's Spin: the frequencies' common residue
// modulo g = gcd of the pairwise frequency differences, taken in (−g/2, g/2]
// (γ = 0 when g = 0, i.e. a single wheel). For circles the factor cancels and
// the term is the classic r·e^{i(n·t+φ)}, so for all-circle curves this is
// exactly z(t) = Σ r·S(n·t + φ). For the other shapes it is that formula seen
// from a frame turning at γ: every wheel's shape turns rigidly by γ·t while the
// point runs round it at n − γ turns per period. Polygons keep the argument of
// the classic term (n·t + φ); only the length of the arm follows the turning
// shape.
//
// Why not the bare S(n·t + φ): a shaped term r·S(n·t+φ) contains the Fourier
// frequencies n·(1 + m·Fold), so with frequencies ≡ c (mod k) and gcd(c, k) = 1
// the sum is k-fold symmetric only if k divides the shape's Fold. A square in a
// 5-fold curve would break its symmetry. With the turning frame every Fourier
// frequency of every term is ≡ γ (mod g), so whatever the shapes the curve
// has the rotational symmetry of its all-circle counterpart (Symmetry: k-fold
// for frequencies ≡ c (mod k) with c coprime to k), and the arm's tip always
// lies on its wheel's drawn outline (see Curve.Outline).
package curve

import (
	"math"
	"slices"
)

// Bounds the contract puts on curves.
const (
	MaxWheels    = 13   // most wheels in a curve
	MaxKFold     = 12   // largest k_fold
	MaxRadius    = 1000 // largest radius
	MaxFrequency = 1000 // largest |frequency|
	MinAspect    = 1.0  // smallest explicit ellipse aspect
	MaxAspect    = 4.0  // largest ellipse aspect
)

// Wheel is one rotating term of a curve.
type Wheel struct {
	// Radius, finite, 0 < Radius <= MaxRadius.
	Radius float64
	// Frequency in turns per period, non-zero, |Frequency| <= MaxFrequency.
	Frequency int
	// Phase is the starting angle in radians, finite.
	Phase float64
	// Shape of the wheel; must be valid in a Curve.
	Shape Shape
	// Aspect is the ellipse's long-to-short axis ratio, 1-4 (0 =
	// DefaultAspect). Ignored for other shapes.
	Aspect float64
}

// Curve is a Farris curve. It is a plain value: methods never modify it, and
// it is safe for concurrent use as long as nobody writes to Wheels.
type Curve struct {
	// Wheels, largest first; 1-13 of them.
	Wheels []Wheel
	// KFold is the order of symmetry the frequencies were chosen for, 1-12.
	KFold int
	// Congruency is the residue of every frequency modulo KFold.
	Congruency int
}

// Summary is what a client shows next to a curve.
type Summary struct {
	Wheels     int
	Shapes     []Shape
	KFold      int
	Congruency int
	// Symmetry is the curve's actual order of rotational symmetry: g/gcd(γ, g)
	// for g the gcd of the pairwise frequency differences and γ the Spin
	// (the frequencies' common residue mod g); 1 when there is no such
	// difference. When the frequencies have no common factor this is just g,
	// a multiple of KFold; a common factor d (a congruency sharing a factor
	// with KFold) means the curve is traced d times over and divides the
	// order by it: frequencies 2, 8, 14 (k_fold 6, congruency 2) give a
	// 3-fold curve.
	Symmetry int
}

func gcd(a, b int) int {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// diffGCD is the gcd of the pairwise frequency differences, 0 if there are
// none (fewer than two distinct frequencies).
func (c Curve) diffGCD() int {
	g := 0
	for _, w := range c.Wheels[min(1, len(c.Wheels)):] {
		g = gcd(g, w.Frequency-c.Wheels[0].Frequency)
	}
	return g
}

// Spin is γ, the rate (turns per period) at which every wheel's shape turns:
// the frequencies' common residue modulo the gcd g of their pairwise
// differences, taken in (−g/2, g/2]; 0 if g = 0.
func (c Curve) Spin() int {
	g := c.diffGCD()
	if g == 0 {
		return 0
	}
	r := c.Wheels[0].Frequency % g
	if r < 0 {
		r += g
	}
	if 2*r > g {
		r -= g
	}
	return r
}

// Symmetry is the curve's order of rotational symmetry; see Summary.
func (c Curve) Symmetry() int {
	g := c.diffGCD()
	if g == 0 {
		return 1
	}
	return g / gcd(c.Spin(), g)
}

// Summary describes c.
func (c Curve) Summary() Summary {
	shapes := make([]Shape, len(c.Wheels))
	for i, w := range c.Wheels {
		shapes[i] = w.Shape
	}
	return Summary{
		Wheels:     len(c.Wheels),
		Shapes:     shapes,
		KFold:      c.KFold,
		Congruency: c.Congruency,
		Symmetry:   c.Symmetry(),
	}
}

// reduce maps t into [0, 2π]; the curve has period 2π, and reducing first keeps
// n·t finite for huge t.
func reduce(t float64) float64 {
	if t < 0 || t > 2*math.Pi {
		t = math.Mod(t, 2*math.Pi)
		if t < 0 {
			t += 2 * math.Pi
		}
	}
	return t
}

// term is wheel w's contribution at t in the turning frame (not yet multiplied
// by e^{iγt}).
func (w Wheel) term(spin int, t float64) complex128 {
	p := w.Shape.At(float64(w.Frequency-spin)*t+w.Phase, w.Aspect)
	return complex(w.Radius*real(p), w.Radius*imag(p))
}

// Orientation is the angle every wheel's shape has turned through at t: Spin·t.
func (c Curve) Orientation(t float64) float64 {
	return float64(c.Spin()) * reduce(t)
}

func rotation(spin int, t float64) complex128 {
	sn, cs := math.Sincos(float64(spin) * t)
	return complex(cs, sn)
}

// Eval returns the pen's position z(t). t is taken modulo 2π; a non-finite t
// gives NaN.
func (c Curve) Eval(t float64) complex128 {
	t = reduce(t)
	spin := c.Spin()
	var z complex128
	for _, w := range c.Wheels {
		z += w.term(spin, t)
	}
	return rotation(spin, t) * z
}

// Centers appends to dst[:0] the running partial sums at t: the centre of each
// wheel (the first is 0) and then the pen, len(Wheels)+1 points. The last one
// equals Eval(t) exactly.
func (c Curve) Centers(t float64, dst []complex128) []complex128 {
	t = reduce(t)
	spin := c.Spin()
	rot := rotation(spin, t)
	dst = append(dst[:0], 0)
	var z complex128
	for _, w := range c.Wheels {
		z += w.term(spin, t)
		dst = append(dst, rot*z)
	}
	return dst
}

// Outline appends to dst[:0] the outline of wheel j at t, centred on its
// centre and turned by Orientation(t), with the given number of segments for
// smooth shapes (see Shape.Outline). The arm's tip, the next centre, lies on
// it.
func (c Curve) Outline(j int, t float64, segments int, dst []complex128) []complex128 {
	var centers [MaxWheels + 1]complex128
	ctr := c.Centers(t, centers[:0])[j]
	rot := rotation(c.Spin(), reduce(t))
	w := c.Wheels[j]
	dst = w.Shape.Outline(w.Aspect, segments, dst)
	for i, p := range dst {
		dst[i] = ctr + rot*complex(w.Radius*real(p), w.Radius*imag(p))
	}
	return dst
}

// boundSamples is how many samples Bounds and OutlineBounds take: enough that
// the fastest term moves by under 0.4 rad between samples.
func (c Curve) boundSamples() int {
	maxF := 0
	for _, w := range c.Wheels {
		maxF = max(maxF, abs(w.Frequency), abs(w.Frequency-c.Spin()))
	}
	return min(1<<16, max(2048, 16*maxF))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Bounds is the largest |z| over the wheel centres and the pen at every t
// (sampled densely), the radius a frame must show to hold the arms and the
// curve.
func (c Curve) Bounds() float64 { return c.bounds(false) }

// OutlineBounds is like Bounds but also holds every wheel's outline: the
// largest |centre_j| + radius_j, with the pen.
func (c Curve) OutlineBounds() float64 { return c.bounds(true) }

func (c Curve) bounds(outlines bool) float64 {
	n := c.boundSamples()
	buf := make([]complex128, 0, len(c.Wheels)+1)
	m := 0.0
	for i := range n {
		buf = c.Centers(2*math.Pi*float64(i)/float64(n), buf)
		for j, p := range buf {
			r := math.Hypot(real(p), imag(p))
			if outlines && j < len(c.Wheels) {
				r += c.Wheels[j].Radius
			}
			m = max(m, r)
		}
	}
	return m
}

// Clone returns a deep copy of c.
func (c Curve) Clone() Curve {
	c.Wheels = slices.Clone(c.Wheels)
	return c
}
