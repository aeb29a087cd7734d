package service

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/lease"
)

// The spans whirl adds inside a traced call (Config.TracerProvider), below
// the gRPC server span otelgrpc makes:
//
//	lease.acquire   AcquireLease's registry call, its wait for a slot included
//	cache.lookup    RenderAnimation finding its video: cached, shared or to render
//	cache.fill      the render that fills the cache entry, under the call that started it
//	  render.queue    waiting for a render slot
//	  frames.draw     one planned span of frames drawn and written to its encoder
//	  frames.encode   one span's encoder, from its start until it has flushed
//	  render.stitch   the segments delivered in order, from the first to the end
const tracerName = "github.com/whirl-dev/whirl/internal/service"

// endSpan records err, if any, on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}

// acquireLease is the registry's Acquire in a lease.acquire span.
func (s *Animation) acquireLease(ctx context.Context, req lease.AcquireRequest) (lease.Lease, error) {
	ctx, span := s.tracer.Start(ctx, "lease.acquire", trace.WithAttributes(attribute.Bool("whirl.lease.wait", req.Wait)))
	l, err := s.leases.Acquire(ctx, req)
	endSpan(span, err)
	return l, err
}

// openVideo looks id up in a cache.lookup span; a render it starts runs in
// a cache.fill span under ctx's.
func (s *Animation) openVideo(ctx context.Context, id string, offset int64, render cache.RenderFunc) (*cache.Reader, cache.Source) {
	_, span := s.tracer.Start(ctx, "cache.lookup", trace.WithAttributes(attribute.String("whirl.video_id", id)))
	r, source := s.videos.Open(id, offset, s.tracedFill(ctx, id, render))
	span.SetAttributes(attribute.String("whirl.video_source", sourceProto(source).String()))
	span.End()
	return r, source
}

// tracedFill runs render in a cache.fill span that is a child of call's
// span: the render runs on the cache's goroutine, under a context of its
// own, and may outlive the call.
func (s *Animation) tracedFill(call context.Context, id string, render cache.RenderFunc) cache.RenderFunc {
	parent := trace.SpanContextFromContext(call)
	return func(ctx context.Context, w *cache.Writer) (cache.Timing, error) {
		ctx, span := s.tracer.Start(trace.ContextWithSpanContext(ctx, parent), "cache.fill",
			trace.WithAttributes(attribute.String("whirl.video_id", id)))
		timing, err := render(ctx, w)
		endSpan(span, err)
		return timing, err
	}
}

// tracedFrames draws each planned span of frames in a frames.draw trace span.
func (s *Animation) tracedFrames(frames encode.FrameSource) encode.FrameSource {
	return func(ctx context.Context, fs encode.Span, workers int, write func([]byte) error) error {
		ctx, span := s.tracer.Start(ctx, "frames.draw", trace.WithAttributes(
			attribute.Int("whirl.frame.first", fs.First), attribute.Int("whirl.frame.count", fs.Count)))
		err := frames(ctx, fs, workers, write)
		endSpan(span, err)
		return err
	}
}

// tracedStart runs each span's encoder in a frames.encode trace span,
// ended when the encoder has closed.
func (s *Animation) tracedStart(start encode.StartFunc) encode.StartFunc {
	return func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
		ctx, span := s.tracer.Start(ctx, "frames.encode", trace.WithAttributes(attribute.Int("whirl.frame.count", o.Frames)))
		enc, err := start(ctx, o, sink)
		if err != nil {
			endSpan(span, err)
			return nil, err
		}
		return &tracedEncoder{FrameWriter: enc, span: span}, nil
	}
}

type tracedEncoder struct {
	encode.FrameWriter
	span trace.Span
}

func (e *tracedEncoder) Close() error {
	err := e.FrameWriter.Close()
	endSpan(e.span, err)
	return err
}

// tracedStitch wraps the sink of stitched segments in a render.stitch span
// begun at the first segment; end ends it with the pipeline's error.
func (s *Animation) tracedStitch(ctx context.Context, sink func(fmp4.Segment) error) (traced func(fmp4.Segment) error, end func(error)) {
	var once sync.Once
	var span trace.Span
	traced = func(seg fmp4.Segment) error {
		once.Do(func() { _, span = s.tracer.Start(ctx, "render.stitch") })
		return sink(seg)
	}
	end = func(err error) {
		once.Do(func() {}) // no segment: no span
		if span != nil {
			endSpan(span, err)
		}
	}
	return traced, end
}
