package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"runtime/debug"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whirl-dev/whirl/internal/encode"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderCall is one admitted RenderAnimation call. The render pipeline runs
// on a goroutine of its own and hands finished MP4 segments over a small
// channel, so a client that stops reading stalls the pipeline instead of
// growing memory. The handler's goroutine, the only one that calls Send,
// turns them into the stream's events: the header before the first chunk,
// chunks with absolute offsets, progress on a timer, then the trailer.
type renderCall struct {
	a     *Animation
	vr    videoRequest
	out   whirlv1.AnimationService_RenderAnimationServer
	start time.Time
	// chunks cuts segments into MediaChunks, counting and hashing them.
	chunks chunker
	// framesDone counts frames ffmpeg accepted; the pipeline adds to it.
	framesDone atomic.Int32
	// segments carries the encoder's output. The pipeline closes it when it
	// has ended, after setting result: result is read only after that.
	segments chan encode.Segment
	result   pipelineResult
}

func (s *Animation) newRenderCall(vr videoRequest, out whirlv1.AnimationService_RenderAnimationServer) *renderCall {
	return &renderCall{
		a:        s,
		vr:       vr,
		out:      out,
		start:    time.Now(),
		chunks:   chunker{out: out, hash: sha256.New()},
		segments: make(chan encode.Segment, 2),
	}
}

// run streams the render until the trailer is sent or the call fails. When
// it returns, the pipeline and its ffmpeg child have ended.
func (c *renderCall) run(ctx context.Context) (err error) {
	defer func() { c.report(ctx, err) }()
	pipelineCtx, cancel := context.WithCancel(ctx)
	go c.pipeline(pipelineCtx)
	defer c.stop(cancel)

	ticker := time.NewTicker(progressEvery)
	defer ticker.Stop()
	for {
		select {
		case seg, ok := <-c.segments:
			if !ok {
				return c.finish(ctx)
			}
			if err := c.segment(seg); err != nil {
				return err
			}
		case <-ticker.C:
			if err := c.progress(); err != nil {
				return err
			}
		}
	}
}

// pipeline renders and encodes, sending segments until ctx ends, then
// records how it went and closes segments.
func (c *renderCall) pipeline(ctx context.Context) {
	defer close(c.segments)
	// This goroutine is outside the recovery interceptor's reach: a panic
	// here must fail this render only, not the process.
	defer func() {
		if p := recover(); p != nil {
			c.a.logger.ErrorContext(ctx, "panic in render pipeline", "panic", p, "stack", string(debug.Stack()))
			c.result = pipelineResult{err: fmt.Errorf("panic in render pipeline: %v", p)}
		}
	}()
	c.result = c.a.runPipeline(ctx, c.vr, &c.framesDone, func(seg encode.Segment) error {
		select {
		case c.segments <- seg:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// stop cancels the pipeline if it is still running and waits until it has
// ended, so no goroutine or ffmpeg child outlives the call.
func (c *renderCall) stop(cancel context.CancelFunc) {
	cancel()
	for range c.segments {
	}
}

// segment sends one encoder segment: the header first if it is the init
// segment, then its bytes as chunks.
func (c *renderCall) segment(seg encode.Segment) error {
	if seg.Init {
		if err := c.header(seg.Data); err != nil {
			return err
		}
	}
	return c.chunks.send(seg.Data)
}

// header sends the RenderHeader, with the MIME type read from the init
// segment.
func (c *renderCall) header(init []byte) error {
	mime, err := encode.MIMEType(init)
	if err != nil {
		return status.Errorf(codes.Internal, "encoder produced an unreadable init segment: %v", err)
	}
	return c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{
		Curve:    curveProto(c.vr.curve),
		Width:    int32(c.vr.render.Width),
		Height:   int32(c.vr.render.Height),
		Fps:      int32(c.vr.fps),
		Frames:   int32(c.vr.render.Frames),
		Style:    styleProto(c.vr.render.Style),
		MimeType: mime,
	}}})
}

func (c *renderCall) progress() error {
	return c.out.Send(progressEvent(&whirlv1.Progress{
		FramesDone:  c.framesDone.Load(),
		FramesTotal: int32(c.vr.render.Frames),
		BytesSent:   c.chunks.offset,
	}))
}

// finish ends a call whose pipeline has ended and delivered every segment:
// a last progress event and the trailer, or the pipeline's failure.
func (c *renderCall) finish(ctx context.Context) error {
	if c.result.err != nil {
		return c.a.pipelineStatus(ctx, c.result.err)
	}
	if err := c.progress(); err != nil {
		return err
	}
	return c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
		TotalBytes: c.chunks.offset,
		Sha256:     hex.EncodeToString(c.chunks.hash.Sum(nil)),
		RenderTime: durationpb.New(c.result.renderTime),
		EncodeTime: durationpb.New(c.result.encodeTime),
		Frames:     int32(c.vr.render.Frames),
		Elapsed:    durationpb.New(time.Since(c.start)),
	}}})
}

// report tells the observer how the call ended; ctx is the call's own, so a
// client's cancellation is told from a failure.
func (c *renderCall) report(ctx context.Context, err error) {
	canceled := ctx.Err() != nil
	outcome := "ok"
	switch {
	case canceled:
		outcome = "canceled"
	case err != nil:
		outcome = "failed"
	}
	c.a.observer.RenderFinished(outcome, c.result.encoderFailed && !canceled, c.result.renderTime, c.result.encodeTime,
		int(c.framesDone.Load()), c.chunks.offset)
}

// chunker cuts segments into MediaChunks with running offsets and hashes
// every byte sent.
type chunker struct {
	out    whirlv1.AnimationService_RenderAnimationServer
	hash   hash.Hash
	offset int64
}

func (c *chunker) send(segment []byte) error {
	for len(segment) > 0 {
		n := min(len(segment), maxChunkBytes)
		data := segment[:n]
		segment = segment[n:]
		if err := c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{
			Offset: c.offset, Data: data, SegmentEnd: len(segment) == 0,
		}}}); err != nil {
			return err
		}
		c.hash.Write(data)
		c.offset += int64(n)
	}
	return nil
}
