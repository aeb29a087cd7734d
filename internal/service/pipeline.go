package service

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/render"
)

// pipelineResult is how a render pipeline ended.
type pipelineResult struct {
	err error
	// encoderFailed says the error came from ffmpeg, not from drawing.
	encoderFailed bool
	renderTime    time.Duration
	encodeTime    time.Duration
}

// runPipeline renders frames into a fresh ffmpeg child and returns when
// ffmpeg has delivered its last segment to sink, or on the first error.
// framesDone counts the frames ffmpeg has accepted.
func (s *Animation) runPipeline(ctx context.Context, vr videoRequest, framesDone *atomic.Int32, sink func(encode.Segment) error) (res pipelineResult) {
	opts := s.encodeOptions
	opts.Width, opts.Height, opts.FPS, opts.Frames = vr.render.Width, vr.render.Height, vr.fps, vr.render.Frames
	enc, err := s.startEncoder(ctx, opts, sink)
	if err != nil {
		res.err, res.encoderFailed = err, true
		return res
	}
	encStart := time.Now()
	var (
		writing  time.Duration
		writeErr error
	)
	err = render.Frames(ctx, vr.curve, vr.render, s.renderWorkers, func(_ int, yuv []byte) error {
		t := time.Now()
		writeErr = enc.WriteFrame(yuv)
		writing += time.Since(t)
		if writeErr == nil {
			framesDone.Add(1)
		}
		return writeErr
	})
	closeErr := enc.Close()
	res.encodeTime = time.Since(encStart)
	// Time not spent blocked on ffmpeg's pipe was spent rendering.
	res.renderTime = res.encodeTime - writing
	res.encoderFailed = writeErr != nil || closeErr != nil
	res.err = errors.Join(err, closeErr)
	return res
}

// pipelineStatus maps a pipeline failure to a status: the client's own
// cancellation or deadline keeps its code; anything else is the server's
// fault and is logged with its detail.
func (s *Animation) pipelineStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errorStatus(ctx.Err())
	}
	s.logger.ErrorContext(ctx, "render failed", "err", err)
	return status.Error(codes.Internal, "render failed; the video is incomplete")
}
