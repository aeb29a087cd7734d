package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/lease"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderCall is one admitted RenderAnimation call. It streams one video
// from a cache reader, whatever feeds it: a cache entry, a render this call
// started, or one it joined. The handler's goroutine is the only one that calls Send;
// the reader never makes the render wait, so a client that reads slowly
// only falls behind.
type renderCall struct {
	a      *Animation
	vr     videoRequest
	id     string
	source cache.Source
	r      *cache.Reader
	// pin is the call's hold on its lease: when it is lost the call ends.
	pin    *lease.Pin
	out    whirlv1.AnimationService_RenderAnimationServer
	start  time.Time
	ticker *time.Ticker
	// queuePos is the queue position last sent.
	queuePos int
}

func (s *Animation) newRenderCall(vr videoRequest, id string, source cache.Source, r *cache.Reader, pin *lease.Pin, out whirlv1.AnimationService_RenderAnimationServer) *renderCall {
	return &renderCall{a: s, vr: vr, id: id, source: source, r: r, pin: pin, out: out, start: time.Now()}
}

// run sends the header, the chunks from the reader's offset on, progress
// on a timer, then the trailer; or fails the call.
func (c *renderCall) run(ctx context.Context) error {
	c.ticker = time.NewTicker(progressEvery)
	defer c.ticker.Stop()
	if err := c.header(ctx); err != nil {
		return err
	}
	for {
		chunk, wake, err := c.r.Next()
		switch {
		case errors.Is(err, io.EOF):
			return c.finish()
		case errors.Is(err, cache.ErrOutOfRange):
			return newStatus(codes.OutOfRange, whirlv1.ErrorReason_RESUME_OUT_OF_RANGE, fmt.Sprintf("resume.offset %d is past the end of the video", c.r.Offset()))
		case err != nil:
			return c.a.pipelineStatus(ctx, err)
		case wake != nil:
			if err := c.wait(ctx, wake); err != nil {
				return err
			}
			continue
		}
		if err := c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Chunk{Chunk: &whirlv1.MediaChunk{
			Offset: chunk.Offset, Data: chunk.Data, SegmentEnd: chunk.SegmentEnd,
		}}}); err != nil {
			return err
		}
		select {
		case <-c.pin.Lost():
			return leaseEndedStatus(c.pin.Err())
		case <-c.ticker.C:
			if err := c.progress(); err != nil {
				return err
			}
		default:
		}
	}
}

// wait blocks until the reader may have more, sending progress on the
// timer and as soon as the queue position changes.
func (c *renderCall) wait(ctx context.Context, wake <-chan struct{}) error {
	select {
	case <-wake:
		if c.r.Progress().QueuePosition != c.queuePos {
			return c.progress()
		}
		return nil
	case <-c.ticker.C:
		return c.progress()
	case <-c.pin.Lost():
		return leaseEndedStatus(c.pin.Err())
	case <-ctx.Done():
		return errorStatus(ctx.Err())
	}
}

// header waits for the init segment and sends the RenderHeader, with the
// MIME type read from it.
func (c *renderCall) header(ctx context.Context) error {
	for {
		init, wake, err := c.r.Init()
		if err != nil {
			return c.a.pipelineStatus(ctx, err)
		}
		if wake != nil {
			if err := c.wait(ctx, wake); err != nil {
				return err
			}
			continue
		}
		mime, err := fmp4.MIMEType(init)
		if err != nil {
			return internalError(fmt.Sprintf("encoder produced an unreadable init segment: %v", err))
		}
		return c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Header{Header: &whirlv1.RenderHeader{
			Curve:    curveProto(c.vr.curve),
			Width:    int32(c.vr.render.Width),
			Height:   int32(c.vr.render.Height),
			Fps:      int32(c.vr.fps),
			Frames:   int32(c.vr.render.Frames),
			Style:    styleProto(c.vr.render.Style),
			MimeType: mime,
			VideoId:  c.id,
		}}})
	}
}

func (c *renderCall) progress() error {
	p := c.r.Progress()
	c.queuePos = p.QueuePosition
	frames := p.Frames
	if c.source == cache.Cached {
		frames = c.vr.render.Frames
	}
	return c.out.Send(progressEvent(&whirlv1.Progress{
		FramesDone:    int32(frames),
		FramesTotal:   int32(c.vr.render.Frames),
		QueuePosition: int32(p.QueuePosition),
		BytesSent:     c.r.Offset(),
	}))
}

// finish sends a last progress event and the trailer, which describes the
// whole file even when the call resumed part-way.
func (c *renderCall) finish() error {
	if err := c.progress(); err != nil {
		return err
	}
	res := c.r.Result()
	return c.out.Send(&whirlv1.RenderAnimationResponse{Event: &whirlv1.RenderAnimationResponse_Trailer{Trailer: &whirlv1.RenderTrailer{
		TotalBytes: res.Size,
		Sha256:     res.SHA256,
		RenderTime: durationpb.New(res.Timing.Render),
		EncodeTime: durationpb.New(res.Timing.Encode),
		Frames:     int32(c.vr.render.Frames),
		Elapsed:    durationpb.New(time.Since(c.start)),
		VideoId:    c.id,
		Source:     sourceProto(c.source),
	}}})
}

func sourceProto(s cache.Source) whirlv1.VideoSource {
	switch s {
	case cache.Rendered:
		return whirlv1.VideoSource_VIDEO_SOURCE_RENDERED
	case cache.Cached:
		return whirlv1.VideoSource_VIDEO_SOURCE_CACHED
	case cache.Shared:
		return whirlv1.VideoSource_VIDEO_SOURCE_SHARED
	}
	return whirlv1.VideoSource_VIDEO_SOURCE_UNSPECIFIED
}
