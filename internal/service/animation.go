package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Video bounds.
const (
	minVideoSide = 64
	maxVideoSide = 1920
	defaultFPS   = 30
	maxFPS       = 60
	// maxChunkBytes caps MediaChunk.data; a fragment larger than this is
	// split over several chunks.
	maxChunkBytes = 64 << 10
	// progressEvery is how often a render reports progress, queued or not.
	progressEvery = 500 * time.Millisecond
	// DefaultMaxPixelFrames bounds width×height×frames of one animation: one
	// minute of 1080p at 30 fps.
	DefaultMaxPixelFrames = 1920 * 1080 * 30 * 60
)

// videoRequest is a validated RenderAnimation request.
type videoRequest struct {
	curve  curve.Curve
	render render.Options
	fps    int
}

func (s *Animation) validateAnimation(req *whirlv1.RenderAnimationRequest) (videoRequest, error) {
	var v violations
	v.leaseID("lease_id", req.GetLeaseId(), true)
	c, _ := v.curveSource(req.GetCurve(), req.GetGenerate())
	vo := req.GetVideo()
	r := videoRequest{curve: c, render: render.Options{
		Width:  v.evenIn("video.width", vo.GetWidth()),
		Height: v.evenIn("video.height", vo.GetHeight()),
		Frames: v.intIn("video.frames", vo.GetFrames(), 1, maxFrames, defaultFrames),
		Style:  v.style("video.style", vo.GetStyle()),
	}}
	r.fps = v.intIn("video.fps", vo.GetFps(), 1, maxFPS, defaultFPS)
	v.appearance("video.appearance.", vo.GetAppearance(), &r.render)
	if px := int64(r.render.Width) * int64(r.render.Height) * int64(r.render.Frames); px > s.maxPixelFrames {
		v.add("video", fmt.Sprintf("width×height×frames is %d, over this server's budget of %d", px, s.maxPixelFrames))
	}
	return r, v.err()
}

// evenIn checks an even video side in bounds; 0 means the default.
func (v *violations) evenIn(field string, x int32) int {
	n := v.intIn(field, x, minVideoSide, maxVideoSide, defaultSide)
	if n%2 != 0 {
		v.add(field, "must be even (H.264 4:2:0 needs even sizes)")
	}
	return n
}

// RenderAnimation streams a fragmented MP4 while it renders. The handler's
// goroutine is the only one that calls stream.Send; the render pipeline runs
// beside it and hands over finished MP4 segments through a small channel,
// so a client that stops reading stalls the pipeline instead of growing
// memory.
func (s *Animation) RenderAnimation(req *whirlv1.RenderAnimationRequest, stream whirlv1.AnimationService_RenderAnimationServer) error {
	ctx := stream.Context()
	vr, err := s.validateAnimation(req)
	if err != nil {
		return err
	}
	if s.encoderErr != nil {
		return status.Errorf(codes.Unavailable, "renderer unavailable: %v", s.encoderErr)
	}
	_, unpin, err := s.leases.Pin(ctx, req.GetLeaseId())
	if err != nil {
		return leaseStatus(ctx, err)
	}
	// unpin renews the lease: a finished render restarts its TTL.
	defer unpin()

	total := int32(vr.render.Frames)
	queued := time.Now()
	release, err := s.renders.Acquire(ctx, func(pos int) {
		_ = stream.Send(progressEvent(&whirlv1.Progress{FramesTotal: total, QueuePosition: int32(pos)}))
	}, progressEvery)
	if err != nil {
		return contextStatus(err)
	}
	defer release()
	s.observer.RenderQueued(time.Since(queued))
	return s.stream(ctx, vr, stream)
}

// pipelineResult is how a render pipeline ended.
type pipelineResult struct {
	err error
	// encoderFailed says the error came from ffmpeg, not from drawing.
	encoderFailed bool
	renderTime    time.Duration
	encodeTime    time.Duration
}

func (s *Animation) stream(ctx context.Context, vr videoRequest, stream whirlv1.AnimationService_RenderAnimationServer) (err error) {
	start := time.Now()
	var (
		res        pipelineResult
		out        = &chunker{stream: stream, hash: sha256.New()}
		framesDone atomic.Int32
	)
	defer func(callCtx context.Context) {
		outcome := "ok"
		switch {
		case callCtx.Err() != nil:
			outcome = "canceled"
		case err != nil:
			outcome = "failed"
		}
		s.observer.RenderFinished(outcome, res.encoderFailed && callCtx.Err() == nil, res.renderTime, res.encodeTime, int(framesDone.Load()), out.offset)
	}(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	segments := make(chan encode.Segment, 2)
	done := make(chan pipelineResult, 1)
	go func() {
		// This goroutine is outside the recovery interceptor's reach: a panic
		// here must fail this render only, not the process.
		defer func() {
			if p := recover(); p != nil {
				s.logger.ErrorContext(ctx, "panic in render pipeline", "panic", p, "stack", string(debug.Stack()))
				done <- pipelineResult{err: fmt.Errorf("panic in render pipeline: %v", p)}
			}
		}()
		done <- s.runPipeline(ctx, vr, &framesDone, func(seg encode.Segment) error {
			select {
			case segments <- seg:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()

	total := int32(vr.render.Frames)
	ticker := time.NewTicker(progressEvery)
	defer ticker.Stop()
	progress := func() error {
		return stream.Send(progressEvent(&whirlv1.Progress{FramesDone: framesDone.Load(), FramesTotal: total, BytesSent: out.offset}))
	}
	// fail stops the pipeline and waits for it, so no goroutine or ffmpeg
	// child outlives the call.
	fail := func(err error) error {
		cancel()
		res = <-done
		return err
	}
	handle := func(seg encode.Segment) error {
		if seg.Init {
			mime, err := encode.MIMEType(seg.Data)
			if err != nil {
				return status.Errorf(codes.Internal, "encoder produced an unreadable init segment: %v", err)
			}
			if err := stream.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{
				Curve: curveProto(vr.curve), Width: int32(vr.render.Width), Height: int32(vr.render.Height),
				Fps: int32(vr.fps), Frames: total, Style: styleProto(vr.render.Style), MimeType: mime,
			}}}); err != nil {
				return err
			}
		}
		return out.send(seg.Data)
	}

	for {
		select {
		case seg := <-segments:
			if err := handle(seg); err != nil {
				return fail(err)
			}
		case <-ticker.C:
			if err := progress(); err != nil {
				return fail(err)
			}
		case res = <-done:
			// The encoder delivers every segment before the pipeline ends.
			for drained := false; !drained; {
				select {
				case seg := <-segments:
					if err := handle(seg); err != nil {
						return err
					}
				default:
					drained = true
				}
			}
			if res.err != nil {
				return s.pipelineStatus(ctx, res.err)
			}
			if err := progress(); err != nil {
				return err
			}
			return stream.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
				TotalBytes: out.offset,
				Sha256:     hex.EncodeToString(out.hash.Sum(nil)),
				RenderTime: durationpb.New(res.renderTime),
				EncodeTime: durationpb.New(res.encodeTime),
				Frames:     total,
				Elapsed:    durationpb.New(time.Since(start)),
			}}})
		}
	}
}

// runPipeline renders frames into a fresh ffmpeg child and returns when
// ffmpeg has delivered its last segment to sink, or on the first error.
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
		return contextStatus(ctx.Err())
	}
	s.logger.ErrorContext(ctx, "render failed", "err", err)
	return status.Error(codes.Internal, "render failed; the video is incomplete")
}

func progressEvent(p *whirlv1.Progress) *whirlv1.RenderAnimationResponse {
	return &whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Progress{Progress: p}}
}

func styleProto(s render.Style) whirlv1.Style {
	if s == render.Trace {
		return whirlv1.Style_STYLE_TRACE
	}
	return whirlv1.Style_STYLE_WHEELS
}

// chunker cuts segments into MediaChunks with running offsets and hashes
// every byte sent.
type chunker struct {
	stream whirlv1.AnimationService_RenderAnimationServer
	hash   hash.Hash
	offset int64
}

func (c *chunker) send(segment []byte) error {
	for len(segment) > 0 {
		n := min(len(segment), maxChunkBytes)
		data := segment[:n]
		segment = segment[n:]
		if err := c.stream.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{
			Offset: c.offset, Data: data, SegmentEnd: len(segment) == 0,
		}}}); err != nil {
			return err
		}
		c.hash.Write(data)
		c.offset += int64(n)
	}
	return nil
}
