package curve

import (
	"math"
	"strconv"
)

// Shape is the closed unit curve a wheel traces as it turns. The numbers match
// the whirl.v1.Shape protobuf enum.
type Shape int

const (
	// ShapeUnspecified means "pick at random" in Params and is invalid in a
	// Curve.
	ShapeUnspecified Shape = iota
	// Circle is e^{iθ}.
	Circle
	// Ellipse is cos θ + i·sin θ / aspect: long semi-axis 1 along the real
	// axis, short semi-axis 1/aspect (θ is the eccentric anomaly).
	Ellipse
	// Square has its vertices on the unit circle at 0, π/2, π, 3π/2 and is the
	// radial projection of the polygon: Square.At(θ) has argument θ.
	Square
	// Triangle is equilateral with vertices on the unit circle at 0, 2π/3,
	// 4π/3, radially projected like Square.
	Triangle
	// Tetracuspid (astroid) is cos³θ + i·sin³θ.
	Tetracuspid
)

// DefaultAspect is the ellipse aspect used when a Wheel's Aspect is 0.
const DefaultAspect = 1.5

// AllShapes lists the valid shapes in enum order.
func AllShapes() []Shape { return []Shape{Circle, Ellipse, Square, Triangle, Tetracuspid} }

// Valid reports whether s is one of the five drawable shapes.
func (s Shape) Valid() bool { return s >= Circle && s <= Tetracuspid }

// String returns the lower-case name of s.
func (s Shape) String() string {
	switch s {
	case ShapeUnspecified:
		return "unspecified"
	case Circle:
		return "circle"
	case Ellipse:
		return "ellipse"
	case Square:
		return "square"
	case Triangle:
		return "triangle"
	case Tetracuspid:
		return "tetracuspid"
	}
	return "shape(" + strconv.Itoa(int(s)) + ")"
}

// Fold is the order of s's own rotational symmetry: S(θ+2π/m) = e^{2πi/m}·S(θ)
// for m = Fold. It is 0 for Circle (every rotation) and for invalid shapes.
func (s Shape) Fold() int {
	switch s {
	case Ellipse:
		return 2
	case Triangle:
		return 3
	case Square, Tetracuspid:
		return 4
	}
	return 0
}

// At returns the point of s at parameter theta. Every shape is closed
// (At(θ) = At(θ+2π)) and unit-size (max |At| = 1, reached at θ = 0).
// aspect is used by Ellipse only (0 = DefaultAspect). An invalid shape gives 0.
func (s Shape) At(theta, aspect float64) complex128 {
	switch s {
	case Circle:
		sn, cs := math.Sincos(theta)
		return complex(cs, sn)
	case Ellipse:
		if aspect == 0 {
			aspect = DefaultAspect
		}
		sn, cs := math.Sincos(theta)
		return complex(cs, sn/aspect)
	case Square:
		return polygon(4, theta)
	case Triangle:
		return polygon(3, theta)
	case Tetracuspid:
		sn, cs := math.Sincos(theta)
		return complex(cs*cs*cs, sn*sn*sn)
	}
	return 0
}

// polygon is the radial projection of the regular n-gon with vertices on the
// unit circle at angles 2πk/n: argument theta, modulus the distance from the
// centre to the edge in that direction.
func polygon(n int, theta float64) complex128 {
	sector := 2 * math.Pi / float64(n)
	u := math.Mod(theta, sector)
	if u < 0 {
		u += sector
	}
	rho := math.Cos(math.Pi/float64(n)) / math.Cos(u-math.Pi/float64(n))
	sn, cs := math.Sincos(theta)
	return complex(rho*cs, rho*sn)
}

// Outline appends to dst[:0] the points of a closed outline of s (the last
// point is not repeated) and returns it. Polygons give exactly their vertices;
// smooth shapes give segments points (rounded up to a multiple of 4, at least
// 8) evenly spaced in θ, so the tetracuspid's cusps and the ellipse's
// extremes are vertices.
func (s Shape) Outline(aspect float64, segments int, dst []complex128) []complex128 {
	dst = dst[:0]
	n := segments
	switch s {
	case Square:
		n = 4
	case Triangle:
		n = 3
	default:
		if !s.Valid() {
			return dst
		}
		n = max(8, (n+3)/4*4)
	}
	for k := range n {
		theta := 2 * math.Pi * float64(k) / float64(n)
		switch s {
		case Square, Triangle:
			sn, cs := math.Sincos(theta)
			dst = append(dst, complex(cs, sn))
		default:
			dst = append(dst, s.At(theta, aspect))
		}
	}
	return dst
}
