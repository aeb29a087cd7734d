package service

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// pipelineResult is how a render pipeline ended.
type pipelineResult struct {
	err error
	// encoderFailed says the error came from ffmpeg, not from drawing.
	encoderFailed bool
	renderTime    time.Duration
	encodeTime    time.Duration
}

// runPipeline renders and encodes vr as the spans of its plan
// (encode.EncodeSpans): each span drawn by its own renderer,
// cold-started at its first frame, into its own ffmpeg, as many at once as
// the server's encoder budget has free, stitched into one stream for sink.
// It returns when the last span has been delivered, or on the first
// error once every encoder has stopped. framesDone counts the frames the
// encoders have accepted.
func (s *Animation) runPipeline(ctx context.Context, vr videoRequest, framesDone *atomic.Int32, sink func(fmp4.Segment) error) (res pipelineResult) {
	frames := func(ctx context.Context, span encode.Span, workers int, write func([]byte) error) error {
		var writeErr error
		err := render.FrameRange(ctx, vr.curve, vr.render, span.First, span.Count, workers, func(_ int, yuv []byte) error {
			if writeErr = write(yuv); writeErr != nil {
				return writeErr
			}
			framesDone.Add(1)
			return nil
		})
		if err != nil && writeErr == nil && ctx.Err() == nil {
			return drawError{err}
		}
		return err
	}
	start := time.Now()
	sink, endStitch := s.tracedStitch(ctx, sink)
	st, err := encode.EncodeSpans(ctx, encode.SpanConfig{
		Options: s.encodeOptionsFor(vr),
		Start: s.tracedStart(func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
			return s.startEncoder(ctx, o, sink)
		}),
		Budget:  s.encoders,
		Workers: s.renderWorkers, // the animation's, shared out among its spans
	}, s.tracedFrames(frames), sink)
	endStitch(err)
	res.encodeTime = time.Since(start)
	res.renderTime = st.Drawing
	res.err = err
	res.encoderFailed = err != nil && !errors.As(err, new(drawError))
	return res
}

// drawError marks a failure of the renderer, as opposed to the encoder's.
type drawError struct{ err error }

func (e drawError) Error() string { return e.err.Error() }
func (e drawError) Unwrap() error { return e.err }

// pipelineStatus maps a pipeline failure to a status: the client's own
// cancellation or deadline keeps its code, a render refused for waiting too
// long for a slot is RESOURCE_EXHAUSTED (its lease stays valid: the call
// unpins it as any other); anything else is the server's fault and is
// logged with its detail.
func (s *Animation) pipelineStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errorStatus(ctx.Err())
	}
	// A render that waited too long for a slot: refused, not failed.
	var refused *queue.RefusedError
	if errors.As(err, &refused) {
		return queueStatus(ctx, err, "render", "animations", s.renders.Limits())
	}
	s.logger.ErrorContext(ctx, "render failed", "err", err)
	return newStatus(codes.Internal, whirlv1.ErrorReason_RENDER_FAILED, "render failed; the video is incomplete")
}

// renderVideo is the render behind a video id: it waits for a render slot,
// then draws and encodes vr, writing each MP4 segment to w. It runs once
// per video however many calls read it, on the cache's goroutine, so it
// reports to the observer itself and never lets a panic out.
func (s *Animation) renderVideo(vr videoRequest, id string) cache.RenderFunc {
	return func(ctx context.Context, w *cache.Writer) (timing cache.Timing, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.logger.ErrorContext(ctx, "panic in render pipeline", "video_id", id, "panic", p, "stack", string(debug.Stack()))
				err = fmt.Errorf("panic in render pipeline: %v", p)
			}
		}()
		queued := time.Now()
		queueCtx, queueSpan := s.tracer.Start(ctx, "render.queue")
		release, err := s.renders.Acquire(queueCtx, func(pos int) {
			w.SetProgress(cache.Progress{QueuePosition: pos})
		}, progressEvery)
		endSpan(queueSpan, err)
		if err != nil {
			return timing, err
		}
		defer release()
		w.SetProgress(cache.Progress{})
		s.observer.RenderQueued(time.Since(queued))

		var frames atomic.Int32
		var bytes int64
		res := s.runPipeline(ctx, vr, &frames, func(seg fmp4.Segment) error {
			w.Segment(seg.Data)
			bytes += int64(len(seg.Data))
			w.SetProgress(cache.Progress{Frames: int(frames.Load())})
			return ctx.Err()
		})
		// Failures are logged by each call that reads them, with its
		// request id.
		canceled := ctx.Err() != nil
		outcome := "ok"
		switch {
		case canceled:
			outcome = "canceled"
		case res.err != nil:
			outcome = "failed"
		}
		s.observer.RenderFinished(outcome, res.encoderFailed && !canceled, res.renderTime, res.encodeTime, int(frames.Load()), bytes)
		return cache.Timing{Render: res.renderTime, Encode: res.encodeTime}, res.err
	}
}
