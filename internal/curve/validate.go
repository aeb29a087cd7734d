package curve

import (
	"fmt"
	"math"
	"strings"
)

// FieldViolation is one problem with one field. Field is a path in the
// protobuf's snake_case names relative to the message checked ("k_fold",
// "shapes[3]", "wheels[2].radius"); callers prefix it ("curve.", "generate.").
type FieldViolation struct {
	Field       string
	Description string
}

// ValidationError lists every violation found, in field order.
type ValidationError struct {
	Violations []FieldViolation
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid curve: ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.Field)
		b.WriteString(": ")
		b.WriteString(v.Description)
	}
	return b.String()
}

type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &ValidationError{Violations: v}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate checks an explicit curve against the contract: 1-13 wheels, k_fold
// 1-12, 0 <= congruency < k_fold, every radius finite in (0, 1000], every
// frequency non-zero with |f| <= 1000 and ≡ congruency (mod k_fold), every
// phase finite, every shape valid, every ellipse aspect 0 or in [1, 4]. It
// returns nil or a *ValidationError listing every violation.
func (c Curve) Validate() error {
	var v violations
	if n := len(c.Wheels); n < 1 || n > MaxWheels {
		v.add("wheels", "must have 1 to %d wheels, got %d", MaxWheels, n)
	}
	kOK := c.KFold >= 1 && c.KFold <= MaxKFold
	if !kOK {
		v.add("k_fold", "must be 1 to %d, got %d", MaxKFold, c.KFold)
	}
	cOK := c.Congruency >= 0 && (!kOK || c.Congruency < c.KFold)
	if !cOK {
		if kOK {
			v.add("congruency", "must be 0 to k_fold-1 (%d), got %d", c.KFold-1, c.Congruency)
		} else {
			v.add("congruency", "must be 0 to k_fold-1, got %d", c.Congruency)
		}
	}
	// Past MaxWheels the count is already refused: checking every extra
	// wheel would only let a large request buy a much larger error.
	for i, w := range c.Wheels[:min(len(c.Wheels), MaxWheels)] {
		p := fmt.Sprintf("wheels[%d].", i)
		switch {
		case !finite(w.Radius):
			v.add(p+"radius", "must be finite, got %v", w.Radius)
		case w.Radius <= 0 || w.Radius > MaxRadius:
			v.add(p+"radius", "must be > 0 and <= %d, got %v", MaxRadius, w.Radius)
		}
		switch {
		case w.Frequency == 0:
			v.add(p+"frequency", "must be non-zero")
		case w.Frequency < -MaxFrequency || w.Frequency > MaxFrequency:
			v.add(p+"frequency", "|frequency| must be <= %d, got %d", MaxFrequency, w.Frequency)
		case kOK && cOK && mod(w.Frequency, c.KFold) != c.Congruency:
			v.add(p+"frequency", "must be congruent to congruency %d modulo k_fold %d, got %d (≡ %d)",
				c.Congruency, c.KFold, w.Frequency, mod(w.Frequency, c.KFold))
		}
		if !finite(w.Phase) {
			v.add(p+"phase", "must be finite, got %v", w.Phase)
		}
		if !w.Shape.Valid() {
			v.add(p+"shape", "must be a known shape (1-5), got %d", int(w.Shape))
		}
		if w.Shape == Ellipse && w.Aspect != 0 && !(w.Aspect >= MinAspect && w.Aspect <= MaxAspect) {
			v.add(p+"aspect", "must be 0 (default %v) or between %v and %v, got %v", DefaultAspect, MinAspect, MaxAspect, w.Aspect)
		}
	}
	return v.err()
}

// mod is x modulo m in [0, m).
func mod(x, m int) int {
	r := x % m
	if r < 0 {
		r += m
	}
	return r
}
