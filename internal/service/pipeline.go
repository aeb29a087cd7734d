package service

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/queue"
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
	enc, err := s.startEncoder(ctx, s.encodeOptionsFor(vr), sink)
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
	return status.Error(codes.Internal, "render failed; the video is incomplete")
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
		release, err := s.renders.Acquire(ctx, func(pos int) {
			w.SetProgress(cache.Progress{QueuePosition: pos})
		}, progressEvery)
		if err != nil {
			return timing, err
		}
		defer release()
		w.SetProgress(cache.Progress{})
		s.observer.RenderQueued(time.Since(queued))

		var frames atomic.Int32
		var bytes int64
		res := s.runPipeline(ctx, vr, &frames, func(seg encode.Segment) error {
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
