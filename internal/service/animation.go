package service

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/render"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Video bounds; the others are render's.
const (
	defaultFPS = 30
	maxFPS     = 60
	// maxChunkBytes caps MediaChunk.data; a fragment larger than this is
	// split over several chunks.
	maxChunkBytes = 64 << 10
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

// StartEncoder starts one encoder per render.
type StartEncoder func(ctx context.Context, o encode.Options, sink func(encode.Segment) error) (FrameEncoder, error)

// Observer receives the figures only the service sees.
type Observer interface {
	LeaseWaited(d time.Duration)
	RenderQueued(d time.Duration)
	// RenderFinished reports an animation's end; outcome is ok, canceled or
	// failed.
	RenderFinished(outcome string, ffmpegFailed bool, render, encode time.Duration, frames int, bytes int64)
}

type noObserver struct{}

func (noObserver) LeaseWaited(time.Duration)  {}
func (noObserver) RenderQueued(time.Duration) {}
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
	renderWorkers  int
	maxPixelFrames int64
	observer       Observer
	spare          *encode.Spare // nil unless Config.SpareEncoder
}

var _ whirlv1.AnimationServiceServer = (*Animation)(nil)

func newAnimation(cfg Config, logger *slog.Logger) *Animation {
	cpus := runtime.NumCPU()
	a := &Animation{
		leases:         cfg.Leases,
		logger:         logger,
		encodeOptions:  cfg.Encode,
		encoderErr:     cfg.EncoderErr,
		startEncoder:   cfg.StartEncoder,
		renders:        queue.New(cmp.Or(cfg.RenderSlots, cpus)),
		stills:         queue.New(2 * cpus),
		renderWorkers:  cmp.Or(cfg.RenderWorkers, cpus),
		maxPixelFrames: cmp.Or(cfg.MaxPixelFrames, DefaultMaxPixelFrames),
		observer:       cfg.Observer,
	}
	if a.observer == nil {
		a.observer = noObserver{}
	}
	switch {
	case a.startEncoder != nil:
	case cfg.SpareEncoder && cfg.EncoderErr == nil:
		template := cfg.Encode
		template.Width, template.Height, template.FPS = render.DefaultSize, render.DefaultSize, defaultFPS
		a.spare = encode.NewSpare(template)
		a.startEncoder = func(ctx context.Context, o encode.Options, sink func(encode.Segment) error) (FrameEncoder, error) {
			return a.spare.Start(ctx, o, sink)
		}
	default:
		a.startEncoder = func(ctx context.Context, o encode.Options, sink func(encode.Segment) error) (FrameEncoder, error) {
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

// RenderAnimation streams a fragmented MP4 while it renders: it validates,
// pins the lease, waits for a render slot (reporting its place in line),
// then hands the call to a renderCall.
func (s *Animation) RenderAnimation(req *whirlv1.RenderAnimationRequest, out whirlv1.AnimationService_RenderAnimationServer) error {
	ctx := out.Context()
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
		_ = out.Send(progressEvent(&whirlv1.Progress{FramesTotal: total, QueuePosition: int32(pos)}))
	}, progressEvery)
	if err != nil {
		return errorStatus(err)
	}
	defer release()
	s.observer.RenderQueued(time.Since(queued))
	return s.newRenderCall(vr, out).run(ctx)
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
