package encode

import (
	"context"

	"github.com/whirl-dev/whirl/internal/ffmpeg"
	"github.com/whirl-dev/whirl/internal/fmp4"
)

// Spare keeps ffmpeg processes started ahead of need for the most common
// options (an ffmpeg.Spare of their command), as many as SpareSize says
// for the server's encoders, so every span encoder of a render, not only
// the first, skips the start-up, which is most of the time to a render's
// first fragment.
//
// The spare's output does not depend on when it was started: it is the same
// process with the same arguments Start would run, and the Encoder around it
// is made for the caller, with the caller's context, Frames and sink.
type Spare struct {
	template Options // validated, Frames 0
	procs    *ffmpeg.Spare
}

// SpareSize is the number of spares to keep beside a budget of encoders:
// one per encoder a render can use, and one more, because a spare is only
// replaced once the process it lent exits: without it, the next render
// after a busy one would start its first span cold.
func SpareSize(encoders int) int { return encoders + 1 }

// NewSpare starts n spares (at least 1) for template (Frames is ignored:
// the same process serves any length). Invalid options keep none: Start
// then starts every encoder fresh, and reports the options' error.
func NewSpare(template Options, n int) *Spare {
	template.Frames = 0
	valid, err := template.withDefaults()
	if err != nil {
		return &Spare{}
	}
	return &Spare{template: valid, procs: ffmpeg.NewSpare(command(valid), n)}
}

// Start is like the package's Start, but hands over a spare when o starts
// the same ffmpeg as the template (any Frames) and one is ready. ctx
// governs the handed-over encoder exactly as it would one started fresh.
func (s *Spare) Start(ctx context.Context, o Options, sink func(fmp4.Segment) error) (*Encoder, error) {
	valid, err := o.withDefaults()
	if s.procs == nil || err != nil || sink == nil || ctx.Err() != nil {
		return Start(ctx, o, sink)
	}
	p := s.procs.Take(command(valid))
	if p == nil {
		return Start(ctx, o, sink)
	}
	return newEncoder(ctx, valid, p, sink), nil
}

// Close kills the idle spares, reaps them, and waits for spares being
// started.
func (s *Spare) Close() {
	if s.procs != nil {
		s.procs.Close()
	}
}
