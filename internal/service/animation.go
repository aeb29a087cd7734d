package service

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Video bounds; the others are render's.
const (
	defaultFPS = 30
	maxFPS     = 60
	// progressEvery is how often a render reports progress, queued or not.
	progressEvery = 500 * time.Millisecond
	// DefaultMaxPixelFrames bounds width×height×frames of one animation: one
	// minute of 1080p at 30 fps.
	DefaultMaxPixelFrames = 1920 * 1080 * 30 * 60
)

// FrameEncoder is the encoder as RenderAnimation uses it.
type FrameEncoder interface {
	WriteFrame(yuv []byte) error
	Close() error
}

// StartEncoder starts one encoder per segment of a render.
type StartEncoder func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (FrameEncoder, error)

// Observer receives the figures only the service sees.
type Observer interface {
	LeaseWaited(d time.Duration)
	RenderQueued(d time.Duration)
	// RenderFinished reports an animation's end; outcome is ok, canceled or
	// failed.
	RenderFinished(outcome string, ffmpegFailed bool, render, encode time.Duration, frames int, bytes int64)
	// StreamResumed counts a RenderAnimation call that resumed a stream.
	StreamResumed()
}

type noObserver struct{}

func (noObserver) LeaseWaited(time.Duration)  {}
func (noObserver) RenderQueued(time.Duration) {}
func (noObserver) StreamResumed()             {}
func (noObserver) RenderFinished(string, bool, time.Duration, time.Duration, int, int64) {
}

// Animation implements whirl.v1.AnimationService.
type Animation struct {
	whirlv1.UnimplementedAnimationServiceServer
	leases         Leases
	logger         *slog.Logger
	encodeOptions  encode.Options
	encoderErr     error
	startEncoder   StartEncoder
	renders        *queue.Semaphore
	stills         *queue.Semaphore
	stillNice      int
	renderWorkers  int
	maxPixelFrames int64
	observer       Observer
	spare          *encode.Spare  // nil unless Config.SpareEncoder
	encoders       *encode.Budget // segment encoders running at once, all renders
	videos         *cache.Group
	orphans        *orphans
	store          *cache.Store // the finished videos of videos, for GetVideo
	// ffmpegVersion names the ffmpeg build in video ids.
	ffmpegVersion string
	tracer        trace.Tracer // spans.go; a no-op one unless Config.TracerProvider
}

var _ whirlv1.AnimationServiceServer = (*Animation)(nil)

func newAnimation(cfg Config, logger *slog.Logger) *Animation {
	cpus := runtime.GOMAXPROCS(0) // the CPUs this process may use, container limits included
	a := &Animation{
		leases:         cfg.Leases,
		logger:         logger,
		encodeOptions:  cfg.Encode,
		encoderErr:     cfg.EncoderErr,
		startEncoder:   cfg.StartEncoder,
		renders:        queue.NewBounded(cmp.Or(cfg.RenderSlots, cpus), queue.Limits{MaxWait: cfg.RenderMaxWait}),
		stills:         queue.NewBounded(cmp.Or(cfg.StillSlots, DefaultStillSlots()), cfg.StillQueue),
		stillNice:      cfg.StillNice,
		renderWorkers:  cmp.Or(cfg.RenderWorkers, cpus),
		maxPixelFrames: cmp.Or(cfg.MaxPixelFrames, DefaultMaxPixelFrames),
		observer:       cfg.Observer,
		ffmpegVersion:  cfg.FFmpegVersion,
		encoders:       encode.NewBudget(cmp.Or(cfg.EncodeParallelism, cpus)),
		orphans:        newOrphans(cfg.OrphanGrace),
	}
	if a.observer == nil {
		a.observer = noObserver{}
	}
	a.tracer = cmp.Or[trace.TracerProvider](cfg.TracerProvider, noop.NewTracerProvider()).Tracer(tracerName)
	store := cfg.Cache
	if store == nil {
		store = cache.Open("", 0, logger, nil)
	}
	a.videos = cache.NewGroup(context.Background(), store)
	a.store = store
	switch {
	case a.startEncoder != nil:
	case cfg.SpareEncoder && cfg.EncoderErr == nil:
		template := cfg.Encode
		template.Width, template.Height, template.FPS = render.DefaultSize, render.DefaultSize, defaultFPS
		template.Threads = cmp.Or(template.Threads, encode.SpanThreads) // as spans run
		a.spare = encode.NewSpare(template, encode.SpareSize(a.encoders.Size()))
		a.startEncoder = func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (FrameEncoder, error) {
			return a.spare.Start(ctx, o, sink)
		}
	default:
		a.startEncoder = func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (FrameEncoder, error) {
			return encode.Start(ctx, o, sink)
		}
	}
	return a
}

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
		Frames: v.intIn("video.frames", vo.GetFrames(), 1, render.MaxFrames, render.DefaultFrames),
		Style:  v.style("video.style", vo.GetStyle()),
	}}
	r.fps = v.intIn("video.fps", vo.GetFps(), 1, maxFPS, defaultFPS)
	v.appearance("video.appearance.", vo.GetAppearance(), &r.render)
	if rs := req.GetResume(); rs != nil {
		if !cache.ValidID(rs.GetVideoId()) {
			v.add("resume.video_id", "must be the 64 lowercase hex digits of a RenderHeader.video_id")
		}
		if rs.GetOffset() < 0 {
			v.add("resume.offset", fmt.Sprintf("must not be negative, got %d", rs.GetOffset()))
		}
	}
	if px := int64(r.render.Width) * int64(r.render.Height) * int64(r.render.Frames); px > s.maxPixelFrames {
		v.add("video", fmt.Sprintf("width×height×frames is %d, over this server's budget of %d", px, s.maxPixelFrames))
	}
	return r, v.err()
}

// evenIn checks an even video side in bounds; 0 means the default.
func (v *violations) evenIn(field string, x int32) int {
	n := v.intIn(field, x, render.MinVideoSide, render.MaxVideoSide, render.DefaultSize)
	if n%2 != 0 {
		v.add(field, "must be even (H.264 4:2:0 needs even sizes)")
	}
	return n
}

// RenderAnimation streams a fragmented MP4 of the video the request names:
// from the cache when it is there, else from the render of that video
// already running (joined), else from a new render, which waits for a
// render slot. A cache hit needs the lease but no render slot and no
// ffmpeg. The call itself is a renderCall.
func (s *Animation) RenderAnimation(req *whirlv1.RenderAnimationRequest, out whirlv1.AnimationService_RenderAnimationServer) error {
	ctx := out.Context()
	vr, err := s.validateAnimation(req)
	if err != nil {
		return err
	}
	if s.encoderErr != nil {
		return newStatus(codes.Unavailable, whirlv1.ErrorReason_RENDERER_UNAVAILABLE, fmt.Sprintf("renderer unavailable: %v", s.encoderErr))
	}
	id, err := s.videoID(vr)
	if err != nil {
		s.logger.ErrorContext(ctx, "video id", "err", err)
		return internalError("cannot name the video")
	}
	logVideoID(ctx, id)
	resume := req.GetResume()
	if resume != nil && resume.GetVideoId() != id {
		return videoChanged(resume.GetVideoId(), id)
	}
	pin, adopted, done, err := s.pinFor(ctx, req.GetLeaseId(), id)
	if err != nil {
		return leaseStatus(ctx, err)
	}
	defer done()
	if resume != nil {
		s.observer.StreamResumed()
	}
	s.describe(id, vr)
	r, source := s.openVideo(ctx, id, resume.GetOffset(), s.renderVideo(vr, id))
	if adopted != nil {
		adopted()
	}
	own := ownership{pin: pin, r: r}
	err = s.newRenderCall(vr, id, source, r, pin, out).run(ctx)
	if ctx.Err() != nil {
		// The client went away: keep an unfinished render for a resume.
		// (Unpinning renews the lease: a finished render restarts its TTL.)
		s.orphans.keep(req.GetLeaseId(), id, own)
	} else {
		own.release()
	}
	return err
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
