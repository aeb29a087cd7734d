package service

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"strings"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// curveSource resolves the request's oneof source into a validated curve,
// adding violations under prefix ("curve" or "generate").
func (v *violations) curveSource(explicit *whirlv1.Curve, generate *whirlv1.GenerateCurveRequest) (curve.Curve, bool) {
	switch {
	case explicit != nil:
		c := curveFromProto(explicit)
		return c, v.domain("curve.", c.Validate())
	case generate != nil:
		return v.generate("generate.", generate)
	}
	v.add("source", "one of curve or generate is required")
	return curve.Curve{}, false
}

// generate turns a GenerateCurveRequest into a curve, reporting field errors
// under prefix.
func (v *violations) generate(prefix string, req *whirlv1.GenerateCurveRequest) (curve.Curve, bool) {
	if n := len(req.GetShapes()); n > curve.MaxWheels {
		v.add(prefix+"shapes", fmt.Sprintf("at most %d entries, got %d", curve.MaxWheels, n))
		return curve.Curve{}, false
	}
	p := curve.Params{Seed: req.GetSeed(), Wheels: int(req.GetWheels()), KFold: int(req.GetKFold())}
	if req.Congruency != nil {
		c := int(req.GetCongruency())
		p.Congruency = &c
	}
	for _, s := range req.GetShapes() {
		p.Shapes = append(p.Shapes, curve.Shape(s))
	}
	c, err := curve.Generate(p)
	return c, v.domain(prefix, err)
}

// domain folds a curve validation error into field violations under prefix.
func (v *violations) domain(prefix string, err error) bool {
	if err == nil {
		return true
	}
	var ve *curve.ValidationError
	if !errors.As(err, &ve) {
		v.add(cmp.Or(strings.TrimSuffix(prefix, "."), "request"), err.Error())
		return false
	}
	for _, fv := range ve.Violations {
		v.add(prefix+fv.Field, fv.Description)
	}
	return false
}

// appearance checks colours and pen into o.
func (v *violations) appearance(prefix string, a *whirlv1.Appearance, o *render.Options) {
	parse := func(field, s string, dst *color.RGBA) {
		if s == "" {
			return
		}
		c, err := render.ParseHexColor(s)
		if err != nil {
			v.add(prefix+field, "must be #rrggbb")
			return
		}
		*dst = c
	}
	parse("background", a.GetBackground(), &o.Background)
	parse("pen", a.GetPen(), &o.Pen)
	if w := a.GetLineWidth(); w != 0 && (math.IsNaN(w) || w < render.MinLineWidth || w > render.MaxLineWidth) {
		v.add(prefix+"line_width", fmt.Sprintf("must be 0 (automatic) or %g-%g", render.MinLineWidth, render.MaxLineWidth))
	} else {
		o.LineWidth = w
	}
	o.Aliased = a.GetAliased()
}

// style maps the proto style; unset means wheels.
func (v *violations) style(field string, s whirlv1.Style) render.Style {
	switch s {
	case whirlv1.Style_STYLE_UNSPECIFIED, whirlv1.Style_STYLE_WHEELS:
		return render.Wheels
	case whirlv1.Style_STYLE_TRACE:
		return render.Trace
	}
	v.add(field, "unknown style")
	return render.Wheels
}

// intIn checks lo <= x <= hi, with 0 meaning def.
func (v *violations) intIn(field string, x, lo, hi, def int32) int {
	if x == 0 {
		return int(def)
	}
	if x < lo || x > hi {
		v.add(field, fmt.Sprintf("must be %d-%d (or 0 for %d), got %d", lo, hi, def, x))
	}
	return int(x)
}

func curveFromProto(p *whirlv1.Curve) curve.Curve {
	c := curve.Curve{KFold: int(p.GetKFold()), Congruency: int(p.GetCongruency())}
	for _, w := range p.GetWheels() {
		c.Wheels = append(c.Wheels, curve.Wheel{
			Radius:    w.GetRadius(),
			Frequency: int(w.GetFrequency()),
			Phase:     w.GetPhase(),
			Shape:     curve.Shape(w.GetShape()),
			Aspect:    w.GetAspect(),
		})
	}
	return c
}

func curveProto(c curve.Curve) *whirlv1.Curve {
	p := &whirlv1.Curve{KFold: int32(c.KFold), Congruency: int32(c.Congruency)}
	for _, w := range c.Wheels {
		p.Wheels = append(p.Wheels, &whirlv1.Wheel{
			Radius:    w.Radius,
			Frequency: int32(w.Frequency),
			Phase:     w.Phase,
			Shape:     whirlv1.Shape(w.Shape),
			Aspect:    w.Aspect,
		})
	}
	s := c.Summary()
	p.Summary = &whirlv1.CurveSummary{
		Wheels:     int32(s.Wheels),
		KFold:      int32(s.KFold),
		Congruency: int32(s.Congruency),
		Symmetry:   int32(s.Symmetry),
	}
	for _, sh := range s.Shapes {
		p.Summary.Shapes = append(p.Summary.Shapes, whirlv1.Shape(sh))
	}
	return p
}
