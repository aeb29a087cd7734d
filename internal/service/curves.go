package service

import (
	"bytes"
	"context"
	"image/png"

	"github.com/whirl-dev/whirl/internal/nice"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// GenerateCurve returns the curve a seed and constraints describe.
func (s *Animation) GenerateCurve(_ context.Context, req *whirlv1.GenerateCurveRequest) (*whirlv1.Curve, error) {
	var v violations
	c, _ := v.generate("", req)
	if err := v.err(); err != nil {
		return nil, err
	}
	return curveProto(c), nil
}

// RenderStill draws one PNG. Stills have slots of their own, fewer than the
// CPUs by default, and a bounded line: a burst of them can neither exhaust
// memory nor take every core from the cheap calls, and does not queue
// behind animations.
func (s *Animation) RenderStill(ctx context.Context, req *whirlv1.RenderStillRequest) (*whirlv1.RenderStillResponse, error) {
	var v violations
	c, _ := v.curveSource(req.GetCurve(), req.GetGenerate())
	o := render.Options{
		Width:  v.intIn("width", req.GetWidth(), render.MinStillSide, render.MaxStillSide, render.DefaultSize),
		Height: v.intIn("height", req.GetHeight(), render.MinStillSide, render.MaxStillSide, render.DefaultSize),
		Frames: v.intIn("frames", req.GetFrames(), 1, render.MaxFrames, render.DefaultFrames),
		Style:  v.style("style", req.GetStyle()),
	}
	v.appearance("appearance.", req.GetAppearance(), &o)
	frame := -1
	if req.Frame != nil {
		frame = int(req.GetFrame())
		if frame < 0 || frame >= o.Frames {
			v.add("frame", "must be 0 <= frame < frames")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}

	release, err := s.stills.Acquire(ctx, nil, 0)
	if err != nil {
		return nil, queueStatus(ctx, err, "still", "stills", s.stills.Limits())
	}
	defer release()
	// Drawing and compressing are bulk work: at a raised niceness the
	// kernel runs RPC handling first, as it does before ffmpeg.
	var buf bytes.Buffer
	if err := nice.Run(s.stillNice, func() error { return png.Encode(&buf, render.Still(c, o, frame)) }); err != nil {
		return nil, errorStatus(err)
	}
	return &whirlv1.RenderStillResponse{
		Png:    buf.Bytes(),
		Curve:  curveProto(c),
		Width:  int32(o.Width),
		Height: int32(o.Height),
	}, nil
}
