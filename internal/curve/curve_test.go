package curve

import (
	"errors"
	"math"
	"math/cmplx"
	"reflect"
	"testing"
)

func intp(x int) *int { return &x }

// samples returns n evaluations of c evenly spaced over one period.
func samples(c Curve, n int) []complex128 {
	out := make([]complex128, n)
	for i := range out {
		out[i] = c.Eval(2 * math.Pi * float64(i) / float64(n))
	}
	return out
}

// nearest is the distance from p to the closest point of set.
func nearest(p complex128, set []complex128) float64 {
	best := math.Inf(1)
	for _, q := range set {
		best = min(best, cmplx.Abs(p-q))
	}
	return best
}

// maxSetDistance is how far the image of a under rotation by angle strays
// from the point set b (the largest nearest-neighbour distance).
func maxSetDistance(a, b []complex128, angle float64) float64 {
	rot := cmplx.Rect(1, angle)
	worst := 0.0
	for _, p := range a {
		worst = max(worst, nearest(p*rot, b))
	}
	return worst
}

func TestGeneratedCurvesAreKFoldSymmetric(t *testing.T) {
	cases := []struct {
		name string
		p    Params
	}{
		{"random", Params{}},
		{"squares k5", Params{KFold: 5, Shapes: []Shape{Square}}},
		{"tetracuspids k7", Params{KFold: 7, Shapes: []Shape{Tetracuspid}}},
		{"triangles k4", Params{KFold: 4, Shapes: []Shape{Triangle}}},
		{"ellipses k3", Params{KFold: 3, Shapes: []Shape{Ellipse}}},
		{"circles k12", Params{KFold: 12, Shapes: []Shape{Circle}, Wheels: 13}},
		{"congruency not coprime", Params{KFold: 6, Congruency: intp(2), Wheels: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(8) {
				p := tc.p
				p.Seed = seed*7919 + 1
				c, err := Generate(p)
				if err != nil {
					t.Fatal(err)
				}
				k := c.KFold
				if gcd(c.Congruency, k) == 1 && c.Symmetry()%k != 0 {
					t.Errorf("seed %d: Symmetry %d not a multiple of k_fold %d", p.Seed, c.Symmetry(), k)
				}
				// With a congruency sharing a factor d with k the curve is
				// traced d times and is k/d-fold.
				if d := gcd(c.Congruency, k); d != 1 {
					if c.Symmetry()%(k/d) != 0 {
						t.Errorf("seed %d: Symmetry %d not a multiple of %d", p.Seed, c.Symmetry(), k/d)
					}
					k /= d
				}
				// A sample count that is a multiple of k puts the rotated
				// samples exactly on other samples; comparing as point
				// sets keeps the test independent of that bookkeeping.
				pts := samples(c, 48*k)
				scale := c.Bounds()
				if d := maxSetDistance(pts, pts, 2*math.Pi/float64(k)); d > 1e-9*scale {
					t.Errorf("seed %d (k=%d, wheels %v): rotation by 2π/k moves the samples %g off the curve", p.Seed, k, c.Wheels, d)
				}
				// Control: a rotation that is not a symmetry must be caught.
				if d := maxSetDistance(pts, pts, 0.5*2*math.Pi/float64(c.Symmetry())); d < 1e-3*scale {
					t.Errorf("seed %d: rotation by half a symmetry step also maps the curve onto itself (%g)", p.Seed, d)
				}
			}
		})
	}
}

func TestCurveCloses(t *testing.T) {
	for seed := range uint64(50) {
		c, err := Generate(Params{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		scale := c.Bounds()
		z0, z1 := c.Eval(0), c.Eval(2*math.Pi)
		if d := cmplx.Abs(z0 - z1); d > 1e-12*scale {
			t.Errorf("seed %d: z(0)=%v, z(2π)=%v", seed, z0, z1)
		}
		// Periodicity holds everywhere, including for t outside [0, 2π].
		for _, tt := range []float64{0.3, 1.7, 4} {
			a, b := c.Eval(tt), c.Eval(tt+2*math.Pi)
			if d := cmplx.Abs(a - b); d > 1e-9*scale {
				t.Errorf("seed %d: z(%v)=%v but z(%v+2π)=%v", seed, tt, a, tt, b)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	for seed := range uint64(30) {
		for _, p := range []Params{
			{Seed: seed},
			{Seed: seed, Wheels: 7, KFold: 5, Congruency: intp(3), Shapes: []Shape{Square, ShapeUnspecified, Circle, Ellipse, ShapeUnspecified, Triangle, Tetracuspid}},
		} {
			a, err1 := Generate(p)
			b, err2 := Generate(p)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d: two curves from the same params differ:\n%+v\n%+v", seed, a, b)
			}
		}
	}
	a, _ := Generate(Params{Seed: 1})
	b, _ := Generate(Params{Seed: 2})
	if reflect.DeepEqual(a, b) {
		t.Error("seeds 1 and 2 gave the same curve")
	}
}

// TestGeneratePinned fixes the curve of one seed: a change here means every
// seed a user ever saved now draws something else.
func TestGeneratePinned(t *testing.T) {
	got, err := Generate(Params{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	want := pinned42()
	if got.KFold != want.KFold || got.Congruency != want.Congruency || len(got.Wheels) != len(want.Wheels) {
		t.Fatalf("Generate(seed 42) = %#v\nwant %#v", got, want)
	}
	for i := range want.Wheels {
		g, w := got.Wheels[i], want.Wheels[i]
		if g.Frequency != w.Frequency || g.Shape != w.Shape ||
			math.Abs(g.Radius-w.Radius) > 1e-15 || math.Abs(g.Phase-w.Phase) > 1e-14 || math.Abs(g.Aspect-w.Aspect) > 1e-15 {
			t.Errorf("wheel %d = %#v, want %#v", i, g, w)
		}
	}
}

func TestGenerateHonoursParams(t *testing.T) {
	for seed := range uint64(40) {
		c, err := Generate(Params{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("seed %d: generated curve invalid: %v", seed, err)
		}
		if n := len(c.Wheels); n < 3 || n > 13 {
			t.Errorf("seed %d: %d wheels", seed, n)
		}
		if c.KFold < 2 || c.KFold > 12 || gcd(c.Congruency, c.KFold) != 1 {
			t.Errorf("seed %d: k=%d c=%d", seed, c.KFold, c.Congruency)
		}
		seen := map[int]bool{}
		for i, w := range c.Wheels {
			if seen[w.Frequency] {
				t.Errorf("seed %d: frequency %d repeated", seed, w.Frequency)
			}
			seen[w.Frequency] = true
			if i > 0 && w.Radius >= c.Wheels[i-1].Radius {
				t.Errorf("seed %d: radii not decreasing: %v", seed, c.Wheels)
			}
			if w.Shape == Ellipse && (w.Aspect < 1.25 || w.Aspect > 1.75) {
				t.Errorf("seed %d: ellipse aspect %v", seed, w.Aspect)
			}
			if w.Shape != Ellipse && w.Aspect != 0 {
				t.Errorf("seed %d: %v with aspect %v", seed, w.Shape, w.Aspect)
			}
		}
	}

	c, err := Generate(Params{Seed: 9, Wheels: 5, KFold: 7, Congruency: intp(0), Shapes: []Shape{Triangle}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Wheels) != 5 || c.KFold != 7 || c.Congruency != 0 {
		t.Errorf("got %d wheels k=%d c=%d", len(c.Wheels), c.KFold, c.Congruency)
	}
	for _, w := range c.Wheels {
		if w.Shape != Triangle || w.Frequency%7 != 0 {
			t.Errorf("wheel %+v", w)
		}
	}

	shapes := []Shape{Circle, ShapeUnspecified, Square, Tetracuspid}
	c, err = Generate(Params{Seed: 3, Shapes: shapes})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Wheels) != 4 {
		t.Fatalf("wheels from shapes: got %d", len(c.Wheels))
	}
	for i, s := range shapes {
		if s != ShapeUnspecified && c.Wheels[i].Shape != s {
			t.Errorf("wheel %d shape %v, want %v", i, c.Wheels[i].Shape, s)
		}
		if !c.Wheels[i].Shape.Valid() {
			t.Errorf("wheel %d shape %v", i, c.Wheels[i].Shape)
		}
	}

	// Congruency given, k_fold random: k_fold must exceed it.
	for seed := range uint64(20) {
		c, err := Generate(Params{Seed: seed, Congruency: intp(9)})
		if err != nil {
			t.Fatal(err)
		}
		if c.KFold <= 9 || c.Congruency != 9 {
			t.Errorf("seed %d: k=%d c=%d", seed, c.KFold, c.Congruency)
		}
	}
}

func violationFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is %T, want *ValidationError", err, err)
	}
	out := []string{}
	for _, v := range ve.Violations {
		if v.Description == "" {
			t.Errorf("violation of %s has no description", v.Field)
		}
		out = append(out, v.Field)
	}
	return out
}

func TestGenerateRejects(t *testing.T) {
	cases := []struct {
		name string
		p    Params
		want []string
	}{
		{"ok", Params{}, nil},
		{"too few wheels", Params{Wheels: 2}, []string{"wheels"}},
		{"too many wheels", Params{Wheels: 100}, []string{"wheels"}},
		{"negative wheels", Params{Wheels: -1}, []string{"wheels"}},
		{"k_fold 1", Params{KFold: 1}, []string{"k_fold"}},
		{"k_fold 1000", Params{KFold: 1000}, []string{"k_fold"}},
		{"congruency = k", Params{KFold: 5, Congruency: intp(5)}, []string{"congruency"}},
		{"congruency negative", Params{KFold: 5, Congruency: intp(-1)}, []string{"congruency"}},
		{"congruency too big for random k", Params{Congruency: intp(12)}, []string{"congruency"}},
		{"shape count", Params{Wheels: 4, Shapes: []Shape{Circle, Square}}, []string{"shapes"}},
		{"shapes imply too many wheels", Params{Shapes: make([]Shape, 14)}, []string{"shapes"}},
		{"unknown shape", Params{Wheels: 4, Shapes: []Shape{Circle, Square, 9, -1}}, []string{"shapes[2]", "shapes[3]"}},
		{"everything", Params{Wheels: 1, KFold: 13, Congruency: intp(-2), Shapes: []Shape{7}},
			[]string{"wheels", "k_fold", "congruency", "shapes[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.p)
			if got := violationFields(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("violations %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func validCurve() Curve {
	return Curve{
		KFold: 5, Congruency: 1,
		Wheels: []Wheel{
			{Radius: 1, Frequency: 1, Shape: Circle},
			{Radius: 0.5, Frequency: 6, Phase: 1, Shape: Ellipse, Aspect: 2},
			{Radius: 0.3, Frequency: -14, Phase: -2, Shape: Square},
			{Radius: 0.2, Frequency: 11, Shape: Triangle},
			{Radius: 0.1, Frequency: -4, Shape: Tetracuspid},
		},
	}
}

func TestValidate(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	type edit func(*Curve)
	wheel := func(i int, f func(*Wheel)) edit { return func(c *Curve) { f(&c.Wheels[i]) } }
	cases := []struct {
		name string
		edit edit
		want []string
	}{
		{"valid", func(*Curve) {}, nil},
		{"k_fold 1 any frequencies", func(c *Curve) { c.KFold, c.Congruency = 1, 0; c.Wheels[1].Frequency = 2 }, nil},
		{"ellipse aspect default", wheel(1, func(w *Wheel) { w.Aspect = 0 }), nil},
		{"ellipse aspect 1 and 4", func(c *Curve) {
			c.Wheels[1].Aspect = 1
			c.Wheels = append(c.Wheels, Wheel{Radius: 1, Frequency: 21, Shape: Ellipse, Aspect: 4})
		}, nil},
		{"aspect ignored off ellipses", wheel(0, func(w *Wheel) { w.Aspect = nan }), nil},
		{"radius 1000", wheel(0, func(w *Wheel) { w.Radius = 1000 }), nil},
		{"NaN radius", wheel(2, func(w *Wheel) { w.Radius = nan }), []string{"wheels[2].radius"}},
		{"+Inf radius", wheel(2, func(w *Wheel) { w.Radius = inf }), []string{"wheels[2].radius"}},
		{"-Inf radius", wheel(0, func(w *Wheel) { w.Radius = -inf }), []string{"wheels[0].radius"}},
		{"zero radius", wheel(1, func(w *Wheel) { w.Radius = 0 }), []string{"wheels[1].radius"}},
		{"negative radius", wheel(1, func(w *Wheel) { w.Radius = -1 }), []string{"wheels[1].radius"}},
		{"radius 1000.5", wheel(1, func(w *Wheel) { w.Radius = 1000.5 }), []string{"wheels[1].radius"}},
		{"no wheels", func(c *Curve) { c.Wheels = nil }, []string{"wheels"}},
		{"100 wheels", func(c *Curve) {
			c.Wheels = make([]Wheel, 100)
			for i := range c.Wheels {
				c.Wheels[i] = Wheel{Radius: 1, Frequency: 1 + 5*i, Shape: Circle}
			}
		}, []string{"wheels"}},
		{"k_fold 0", func(c *Curve) { c.KFold = 0 }, []string{"k_fold"}},
		{"k_fold 1", func(c *Curve) { c.KFold = 1 }, []string{"congruency"}},
		{"k_fold 1000", func(c *Curve) { c.KFold = 1000 }, []string{"k_fold"}},
		{"k_fold 0, congruency -1", func(c *Curve) { c.KFold, c.Congruency = 0, -1 }, []string{"k_fold", "congruency"}},
		{"congruency = k_fold", func(c *Curve) { c.Congruency = 5 }, []string{"congruency"}},
		{"congruency negative", func(c *Curve) { c.Congruency = -1 }, []string{"congruency"}},
		{"wrong residue", wheel(3, func(w *Wheel) { w.Frequency = 12 }), []string{"wheels[3].frequency"}},
		{"zero frequency", wheel(3, func(w *Wheel) { w.Frequency = 0 }), []string{"wheels[3].frequency"}},
		{"frequency 1001", wheel(3, func(w *Wheel) { w.Frequency = 1001 }), []string{"wheels[3].frequency"}},
		{"frequency -1004", wheel(3, func(w *Wheel) { w.Frequency = -1004 }), []string{"wheels[3].frequency"}},
		{"NaN phase", wheel(4, func(w *Wheel) { w.Phase = nan }), []string{"wheels[4].phase"}},
		{"Inf phase", wheel(4, func(w *Wheel) { w.Phase = -inf }), []string{"wheels[4].phase"}},
		{"unspecified shape", wheel(0, func(w *Wheel) { w.Shape = ShapeUnspecified }), []string{"wheels[0].shape"}},
		{"unknown shape", wheel(0, func(w *Wheel) { w.Shape = 6 }), []string{"wheels[0].shape"}},
		{"aspect 0.5", wheel(1, func(w *Wheel) { w.Aspect = 0.5 }), []string{"wheels[1].aspect"}},
		{"aspect 4.5", wheel(1, func(w *Wheel) { w.Aspect = 4.5 }), []string{"wheels[1].aspect"}},
		{"aspect NaN", wheel(1, func(w *Wheel) { w.Aspect = nan }), []string{"wheels[1].aspect"}},
		{"all at once", func(c *Curve) {
			c.Wheels[0].Radius = nan
			c.Wheels[1].Phase = inf
			c.Wheels[2].Frequency = 0
			c.Wheels[2].Shape = 0
			c.Wheels[4].Aspect = 9 // tetracuspid: ignored
			c.Wheels[3].Frequency = 2
			c.Congruency = 7
		}, []string{"congruency", "wheels[0].radius", "wheels[1].phase", "wheels[2].frequency", "wheels[2].shape"}},
		{"all at once, residues", func(c *Curve) {
			c.Wheels[0].Radius = inf
			c.Wheels[3].Frequency = 2
			c.Wheels[4].Frequency = 3
		}, []string{"wheels[0].radius", "wheels[3].frequency", "wheels[4].frequency"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validCurve()
			tc.edit(&c)
			if got := violationFields(t, c.Validate()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("violations %v (%v), want %v", got, c.Validate(), tc.want)
			}
		})
	}
}

func TestShapesAreClosedUnitCurves(t *testing.T) {
	for _, s := range AllShapes() {
		for _, aspect := range []float64{0, 1, 1.5, 4} {
			const n = 4096
			maxR, minR := 0.0, math.Inf(1)
			for i := range n {
				th := 2 * math.Pi * float64(i) / n
				z := s.At(th, aspect)
				r := cmplx.Abs(z)
				maxR, minR = max(maxR, r), min(minR, r)
				if d := cmplx.Abs(z - s.At(th+2*math.Pi, aspect)); d > 1e-12 {
					t.Errorf("%v(aspect %v): not periodic at %v: %g", s, aspect, th, d)
				}
				// Each shape's own symmetry: S(θ+2π/m) = e^{2πi/m}·S(θ).
				if m := s.Fold(); m > 0 {
					want := s.At(th, aspect) * cmplx.Rect(1, 2*math.Pi/float64(m))
					if d := cmplx.Abs(s.At(th+2*math.Pi/float64(m), aspect) - want); d > 1e-12 {
						t.Errorf("%v: no %d-fold symmetry at %v", s, m, th)
					}
				}
				// Polygons and the circle are parametrised by angle.
				if s == Circle || s == Square || s == Triangle {
					if d := math.Abs(math.Remainder(cmplx.Phase(z)-th, 2*math.Pi)); d > 1e-12 {
						t.Errorf("%v: arg S(%v) = %v", s, th, cmplx.Phase(z))
					}
				}
			}
			if math.Abs(maxR-1) > 1e-9 {
				t.Errorf("%v(aspect %v): max |S| = %v, want 1", s, aspect, maxR)
			}
			wantMin := map[Shape]float64{Circle: 1, Square: math.Sqrt2 / 2, Triangle: 0.5, Tetracuspid: 0.5}[s]
			if s == Ellipse {
				a := aspect
				if a == 0 {
					a = DefaultAspect
				}
				wantMin = 1 / a
			}
			if math.Abs(minR-wantMin) > 1e-6 {
				t.Errorf("%v(aspect %v): min |S| = %v, want %v", s, aspect, minR, wantMin)
			}
		}
	}
	// Vertices of the polygons on the unit circle, edges straight.
	for _, tc := range []struct {
		s Shape
		n int
	}{{Square, 4}, {Triangle, 3}} {
		for k := range tc.n {
			v0 := cmplx.Rect(1, 2*math.Pi*float64(k)/float64(tc.n))
			v1 := cmplx.Rect(1, 2*math.Pi*float64(k+1)/float64(tc.n))
			if d := cmplx.Abs(tc.s.At(cmplx.Phase(v0), 0) - v0); d > 1e-12 {
				t.Errorf("%v vertex %d off by %g", tc.s, k, d)
			}
			mid := (v0 + v1) / 2
			if d := cmplx.Abs(tc.s.At(cmplx.Phase(mid), 0) - mid); d > 1e-12 {
				t.Errorf("%v edge %d midpoint off by %g", tc.s, k, d)
			}
		}
		if got := tc.s.Outline(0, 100, nil); len(got) != tc.n {
			t.Errorf("%v outline has %d points", tc.s, len(got))
		}
	}
	if ShapeUnspecified.At(1, 0) != 0 || Shape(42).At(1, 0) != 0 || len(Shape(42).Outline(0, 10, nil)) != 0 {
		t.Error("invalid shapes should evaluate to nothing")
	}
}

func TestCentersAndOutlines(t *testing.T) {
	c := validCurve()
	var buf []complex128
	for _, tt := range []float64{0, 0.1, 1, 2.5, 6} {
		buf = c.Centers(tt, buf)
		if len(buf) != len(c.Wheels)+1 || buf[0] != 0 {
			t.Fatalf("Centers(%v) = %v", tt, buf)
		}
		if buf[len(buf)-1] != c.Eval(tt) {
			t.Errorf("pen %v != Eval %v", buf[len(buf)-1], c.Eval(tt))
		}
		for j := range c.Wheels {
			// The next centre (the arm's tip) lies on wheel j's outline,
			// turned by the orientation: check against a dense outline.
			out := c.Outline(j, tt, 4096, nil)
			r := c.Wheels[j].Radius
			if d := nearest(buf[j+1], out); d > 2e-3*r && c.Wheels[j].Shape != Square && c.Wheels[j].Shape != Triangle {
				t.Errorf("t=%v wheel %d (%v): arm tip %g off its outline", tt, j, c.Wheels[j].Shape, d)
			}
			// Polygon outlines are just vertices: check on the edges.
			if s := c.Wheels[j].Shape; s == Square || s == Triangle {
				if d := polygonDistance(buf[j+1], out); d > 1e-9*r {
					t.Errorf("t=%v wheel %d (%v): arm tip %g off its outline", tt, j, s, d)
				}
			}
		}
	}
	if b, ob := c.Bounds(), c.OutlineBounds(); !(b > 0 && ob >= b) {
		t.Errorf("Bounds %v, OutlineBounds %v", b, ob)
	}
}

// polygonDistance is the distance from p to the closed polygon through vs.
func polygonDistance(p complex128, vs []complex128) float64 {
	best := math.Inf(1)
	for i := range vs {
		a, b := vs[i], vs[(i+1)%len(vs)]
		ab := b - a
		u := real((p-a)*cmplx.Conj(ab)) / real(ab*cmplx.Conj(ab))
		u = min(1, max(0, u))
		best = min(best, cmplx.Abs(p-(a+complex(u, 0)*ab)))
	}
	return best
}

func TestSummaryAndSpin(t *testing.T) {
	cases := []struct {
		freqs          []int
		symmetry, spin int
	}{
		{[]int{1, 6, -14}, 5, 1},
		{[]int{-1, 4, 9}, 5, -1},
		{[]int{1, 11, 21}, 10, 1},
		{[]int{3}, 1, 0},
		{[]int{2, 2}, 1, 0},
		{[]int{-4, 6}, 5, -4},
		{[]int{2, 6, 10}, 2, 2},
		{[]int{2, 8, 14}, 3, 2},
		{[]int{3, 6}, 1, 0},
	}
	for _, tc := range cases {
		c := Curve{KFold: 1}
		for _, f := range tc.freqs {
			c.Wheels = append(c.Wheels, Wheel{Radius: 1, Frequency: f, Shape: Square})
		}
		s := c.Summary()
		if s.Symmetry != tc.symmetry || c.Spin() != tc.spin {
			t.Errorf("%v: symmetry %d spin %d, want %d %d", tc.freqs, s.Symmetry, c.Spin(), tc.symmetry, tc.spin)
		}
		if s.Wheels != len(tc.freqs) || len(s.Shapes) != len(tc.freqs) || s.Shapes[0] != Square {
			t.Errorf("summary %+v", s)
		}
	}
}

// TestCirclesMatchClassicFormula: with circles only the model is the plain
// Σ r·e^{i(n·t+φ)}.
func TestCirclesMatchClassicFormula(t *testing.T) {
	c := validCurve()
	for i := range c.Wheels {
		c.Wheels[i].Shape = Circle
	}
	for _, tt := range []float64{0, 0.4, 3, 5.9} {
		var want complex128
		for _, w := range c.Wheels {
			want += complex(w.Radius, 0) * cmplx.Rect(1, float64(w.Frequency)*tt+w.Phase)
		}
		if d := cmplx.Abs(c.Eval(tt) - want); d > 1e-12 {
			t.Errorf("t=%v: %v, want %v", tt, c.Eval(tt), want)
		}
	}
}

func TestEvalNonFinite(t *testing.T) {
	c := validCurve()
	if z := c.Eval(math.NaN()); !cmplx.IsNaN(z) {
		t.Errorf("Eval(NaN) = %v", z)
	}
	if z := c.Eval(1e300); cmplx.IsNaN(z) || cmplx.IsInf(z) {
		t.Errorf("Eval(1e300) = %v", z)
	}
}

// FuzzEval: a curve that validates never evaluates to NaN or Inf, and nothing
// panics.
func FuzzEval(f *testing.F) {
	f.Add(5, 1, 1.0, 1, 0.0, uint8(1), 0.0, 0.5, 6, uint8(3), 2.0, 1.0)
	f.Add(1, 0, 1000.0, -1000, 1e300, uint8(5), 0.0, 1e-300, 999, uint8(2), 4.0, 1e300)
	f.Fuzz(func(t *testing.T, k, c int, r1 float64, f1 int, p1 float64, s1 uint8, a1 float64,
		r2 float64, f2 int, s2 uint8, a2 float64, tt float64) {
		cv := Curve{KFold: k, Congruency: c, Wheels: []Wheel{
			{Radius: r1, Frequency: f1, Phase: p1, Shape: Shape(s1), Aspect: a1},
			{Radius: r2, Frequency: f2, Phase: -p1, Shape: Shape(s2), Aspect: a2},
		}}
		if cv.Validate() != nil {
			return
		}
		if !finite(tt) {
			tt = 1
		}
		z := cv.Eval(tt)
		if cmplx.IsNaN(z) || cmplx.IsInf(z) {
			t.Fatalf("Eval(%v) = %v for %+v", tt, z, cv)
		}
		for _, p := range cv.Centers(tt, nil) {
			if cmplx.IsNaN(p) || cmplx.IsInf(p) {
				t.Fatalf("Centers(%v) has %v for %+v", tt, p, cv)
			}
		}
		if lim := r1 + r2; cmplx.Abs(z) > lim*(1+1e-9) {
			t.Fatalf("|Eval| = %v beyond the radii sum %v", cmplx.Abs(z), lim)
		}
		_ = cv.Summary()
	})
}
