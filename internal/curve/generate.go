package curve

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Bounds on generated curves.
const (
	MinGenWheels = 3  // fewest wheels Generate picks or accepts
	MinGenKFold  = 2  // smallest k_fold Generate picks or accepts
	GenFrequency = 60 // Generate keeps |frequency| <= this when it can
	MinGenAspect = 1.25
	MaxGenAspect = 1.75
)

// pcgStream is the fixed second word of the PCG state; the seed is the first.
// Changing it changes every generated curve.
const pcgStream = 0x7768_6972_6c21_7631 // "whirl!v1"

// Params describes a random curve. Zero fields are picked at random from Seed.
type Params struct {
	// Seed of every random choice: the same Params always give the same curve.
	Seed uint64
	// Wheels is the number of wheels, 3-13; 0 = random (or len(Shapes) when
	// that is 2 or more).
	Wheels int
	// KFold is the order of symmetry, 2-12; 0 = random (greater than
	// Congruency when that is set).
	KFold int
	// Congruency is the residue 0 <= c < KFold of every frequency; nil = a
	// random c coprime to KFold.
	Congruency *int
	// Shapes: empty = random per wheel; one = the same for every wheel;
	// otherwise one per wheel. ShapeUnspecified entries are random.
	Shapes []Shape
}

// Generate returns the curve p describes, or a *ValidationError listing every
// problem with p (fields "wheels", "k_fold", "congruency", "shapes",
// "shapes[i]").
//
// The curve has p.Wheels wheels with distinct non-zero frequencies all ≡ c
// (mod k), |n| <= GenFrequency unless there are too few such frequencies,
// small |n| more likely. Wheels are sorted by |n| and get decreasing radii:
// the first is 1, each next one 45-85% of the one before and at most
// 2·|n₀|/|n| (so no term moves more than twice as fast as the first), so the
// slow terms dominate and the curve reads as k lobes with finer detail.
// Phases are uniform, ellipse aspects uniform in [1.25, 1.75]. The draws are
// made in a fixed order from a PCG seeded with Seed; changing any of this
// changes every saved seed's curve (TestGeneratePinned guards it).
func Generate(p Params) (Curve, error) {
	wheels, err := p.check()
	if err != nil {
		return Curve{}, err
	}
	// The draws below happen in a fixed order: changing it changes every
	// seeded curve (the pinned-seed tests hold it).
	rng := rand.New(rand.NewPCG(p.Seed, pcgStream))
	if wheels == 0 {
		wheels = MinGenWheels + rng.IntN(MaxWheels-MinGenWheels+1)
	}
	k, c := p.symmetry(rng)
	ws := make([]Wheel, wheels)
	r := 1.0
	freqs := pickFrequencies(rng, wheels, k, c)
	for i := range ws {
		ws[i].Frequency = freqs[i]
		// Keep each term's speed r·|n| within twice the first one's, so no
		// fast term turns the curve into noise.
		ws[i].Radius = min(r, 2*float64(abs(freqs[0]))/float64(abs(freqs[i])))
		r = ws[i].Radius * (0.45 + 0.4*rng.Float64())
	}
	for i := range ws {
		ws[i].Phase = 2 * math.Pi * rng.Float64()
	}
	for i := range ws {
		ws[i].Shape, ws[i].Aspect = p.shape(rng, i)
	}
	return Curve{Wheels: ws, KFold: k, Congruency: c}, nil
}

// check validates p and returns the number of wheels it fixes (0: random).
func (p Params) check() (int, error) {
	var v violations
	wheels := p.Wheels
	switch {
	case wheels == 0 && len(p.Shapes) >= 2:
		wheels = len(p.Shapes)
		if wheels < MinGenWheels || wheels > MaxWheels {
			v.add("shapes", "with wheels unset, must list 0, 1 or %d to %d shapes, got %d", MinGenWheels, MaxWheels, wheels)
		}
	case wheels != 0 && (wheels < MinGenWheels || wheels > MaxWheels):
		v.add("wheels", "must be 0 (random) or %d to %d, got %d", MinGenWheels, MaxWheels, wheels)
	case wheels != 0 && len(p.Shapes) > 1 && len(p.Shapes) != wheels:
		v.add("shapes", "must list 0, 1 or wheels (%d) shapes, got %d", wheels, len(p.Shapes))
	}
	if p.KFold != 0 && (p.KFold < MinGenKFold || p.KFold > MaxKFold) {
		v.add("k_fold", "must be 0 (random) or %d to %d, got %d", MinGenKFold, MaxKFold, p.KFold)
	}
	if p.Congruency != nil {
		c := *p.Congruency
		switch {
		case c < 0:
			v.add("congruency", "must be >= 0, got %d", c)
		case p.KFold == 0 && c >= MaxKFold:
			v.add("congruency", "must be below k_fold (at most %d when k_fold is random), got %d", MaxKFold-1, c)
		case p.KFold >= MinGenKFold && p.KFold <= MaxKFold && c >= p.KFold:
			v.add("congruency", "must be below k_fold (%d), got %d", p.KFold, c)
		}
	}
	for i, s := range p.Shapes {
		if s != ShapeUnspecified && !s.Valid() {
			v.add(fmt.Sprintf("shapes[%d]", i), "must be a known shape (0-5), got %d", int(s))
		}
	}
	return wheels, v.err()
}

// symmetry returns k_fold and the congruency, drawing what p leaves random;
// a random congruency is coprime to k so the symmetry is exactly k-fold.
func (p Params) symmetry(rng *rand.Rand) (k, c int) {
	k = p.KFold
	if k == 0 {
		lo := MinGenKFold
		if p.Congruency != nil {
			lo = max(lo, *p.Congruency+1)
		}
		k = lo + rng.IntN(MaxKFold-lo+1)
	}
	if p.Congruency != nil {
		return k, *p.Congruency
	}
	var coprime []int
	for x := 1; x < k; x++ {
		if gcd(x, k) == 1 {
			coprime = append(coprime, x)
		}
	}
	return k, coprime[rng.IntN(len(coprime))]
}

// shape returns wheel i's shape (p's choice, else random) and, for an
// ellipse, its aspect ratio.
func (p Params) shape(rng *rand.Rand, i int) (Shape, float64) {
	s := ShapeUnspecified
	switch len(p.Shapes) {
	case 0:
	case 1:
		s = p.Shapes[0]
	default:
		s = p.Shapes[i]
	}
	if s == ShapeUnspecified {
		s = Shape(1 + rng.IntN(int(Tetracuspid)))
	}
	if s != Ellipse {
		return s, 0
	}
	return s, MinGenAspect + (MaxGenAspect-MinGenAspect)*rng.Float64()
}

// pickFrequencies draws n distinct non-zero frequencies ≡ c (mod k), weight
// 1/|f| so small ones are likelier, from |f| <= GenFrequency widened by steps
// of k until there are at least 1.5·n candidates, sorted by |f| (then
// positive first).
func pickFrequencies(rng *rand.Rand, n, k, c int) []int {
	var cands []int
	for bound := GenFrequency; ; bound += k {
		cands = cands[:0]
		for f := -bound; f <= bound; f++ {
			if f != 0 && mod(f, k) == c {
				cands = append(cands, f)
			}
		}
		if 2*len(cands) >= 3*n {
			break
		}
	}
	weights := make([]float64, len(cands))
	total := 0.0
	for i, f := range cands {
		weights[i] = 1 / float64(abs(f))
		total += weights[i]
	}
	out := make([]int, 0, n)
	for range n {
		x := rng.Float64() * total
		i := 0
		for ; i < len(cands)-1; i++ {
			if weights[i] > 0 && x < weights[i] {
				break
			}
			x -= weights[i]
		}
		for weights[i] == 0 { // float round-off landed past the end
			i--
		}
		out = append(out, cands[i])
		total -= weights[i]
		weights[i] = 0
	}
	slices.SortFunc(out, func(a, b int) int {
		if d := cmp.Compare(abs(a), abs(b)); d != 0 {
			return d
		}
		return cmp.Compare(b, a)
	})
	return out
}
