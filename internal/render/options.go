// Package render draws curve.Curve animations: PNG stills and the YUV frames
// of a video. It knows nothing of gRPC or protobuf.
//
// Frame f of F shows the curve's trail for t ∈ [0, 2π·f/(F−1)] (the last
// frame holds the complete curve; frame 0 none of it) and, in the Wheels
// style, every wheel at that t in its own shape turned by the curve's spin
// (see curve.Curve.Outline), the arms from centre to centre and the pen. The
// whole curve, wheel outlines included, is scaled to fit the smaller image
// side with a margin of 4% of it.
//
// The trail is drawn incrementally on a persistent layer: frame f strokes
// only its own new stretch of curve (from the pen at f−1 through the samples
// in between to the pen at f; 1024 samples per period, more when there are
// more frames or very fast terms). The overlay is drawn on a copy of that
// layer. Starting cold at frame f replays exactly the same strokes, so a
// frame is pixel-identical however it was reached (Still, Frames, any worker
// count).
//
// Drawing goes through github.com/fogleman/gg, antialiased. gg cannot turn
// antialiasing off, so Options.Aliased strokes the same paths with the same
// rasteriser gg uses (github.com/golang/freetype/raster) and a painter that
// keeps only pixels at least half covered.
package render

import (
	"fmt"
	"image/color"
)

// Style is what a frame shows. The numbers match the whirl.v1.Style enum.
type Style int

const (
	// StyleUnspecified is taken as Wheels.
	StyleUnspecified Style = iota
	// Trace draws the curve alone, progressively.
	Trace
	// Wheels draws the curve plus every wheel in its own shape at its current
	// angle, the arms from centre to centre, and the pen.
	Wheels
)

// String returns the lower-case name of s.
func (s Style) String() string {
	switch s {
	case StyleUnspecified:
		return "unspecified"
	case Trace:
		return "trace"
	case Wheels:
		return "wheels"
	}
	return fmt.Sprintf("style(%d)", int(s))
}

// Defaults taken by zero Options fields.
const (
	DefaultSize    = 720  // Width and Height
	DefaultFrames  = 300  // Frames
	DefaultSamples = 1024 // curve samples per period, at the least
	// DefaultBackgroundHex and DefaultPenHex are the default colours.
	DefaultBackgroundHex = "#101418"
	DefaultPenHex        = "#f2c14e"
	// MinLineWidth and MaxLineWidth bound an explicit pen width; outside
	// them it is clamped.
	MinLineWidth = 0.5
	MaxLineWidth = 16.0
)

// Bounds on what a caller may ask for, so that the cost of one request is
// known before any drawing starts. The renderer itself draws any size; the
// service refuses requests past these.
const (
	// MinStillSide and MaxStillSide bound a still's width and height.
	MinStillSide = 16
	MaxStillSide = 2048
	// MinVideoSide and MaxVideoSide bound a video's width and height (which
	// must also be even).
	MinVideoSide = 64
	MaxVideoSide = 1920
	// MaxFrames bounds an animation's length.
	MaxFrames = 3600
)

// Options say how to draw a curve. The zero value of every field means its
// default.
type Options struct {
	// Width and Height of the image in pixels; 0 = DefaultSize. Frames (the
	// video path) needs both even.
	Width, Height int
	// Style drawn; 0 = Wheels.
	Style Style
	// Frames in the animation a frame number refers to; 0 = DefaultFrames.
	Frames int
	// Background and Pen colours; the zero color.RGBA means the default
	// (#101418 and #f2c14e). Colours are drawn opaque: alpha is ignored.
	Background, Pen color.RGBA
	// LineWidth of the curve in pixels, MinLineWidth-MaxLineWidth; 0 (or
	// less) = scaled to the
	// image size (min(Width, Height)/360, at least 1).
	LineWidth float64
	// Aliased draws without antialiasing.
	Aliased bool
}

// WithDefaults returns o with every zero (or out-of-range) field replaced by
// what the renderer actually uses.
func (o Options) WithDefaults() Options {
	if o.Width <= 0 {
		o.Width = DefaultSize
	}
	if o.Height <= 0 {
		o.Height = DefaultSize
	}
	if o.Style != Trace {
		o.Style = Wheels
	}
	if o.Frames <= 0 {
		o.Frames = DefaultFrames
	}
	if o.Background == (color.RGBA{}) {
		o.Background = color.RGBA{0x10, 0x14, 0x18, 0xff}
	}
	if o.Pen == (color.RGBA{}) {
		o.Pen = color.RGBA{0xf2, 0xc1, 0x4e, 0xff}
	}
	o.Background.A, o.Pen.A = 0xff, 0xff
	switch {
	case !(o.LineWidth > 0): // also NaN
		o.LineWidth = max(1, float64(min(o.Width, o.Height))/360)
	case o.LineWidth > MaxLineWidth:
		o.LineWidth = MaxLineWidth
	case o.LineWidth < MinLineWidth:
		o.LineWidth = MinLineWidth
	}
	return o
}

// ParseHexColor parses "#rrggbb" (either case) into an opaque colour.
func ParseHexColor(s string) (color.RGBA, error) {
	if len(s) != 7 || s[0] != '#' {
		return color.RGBA{}, fmt.Errorf("colour %q: want #rrggbb", s)
	}
	var v [3]uint8
	for i := range v {
		hi, ok1 := hexDigit(s[1+2*i])
		lo, ok2 := hexDigit(s[2+2*i])
		if !ok1 || !ok2 {
			return color.RGBA{}, fmt.Errorf("colour %q: want #rrggbb", s)
		}
		v[i] = hi<<4 | lo
	}
	return color.RGBA{v[0], v[1], v[2], 0xff}, nil
}

func hexDigit(c byte) (uint8, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
