package service

import (
	"cmp"
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/queue"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Health service names besides the overall "" entry. HealthRender is
// NOT_SERVING when ffmpeg is unusable (leases still work); HealthLeases is
// NOT_SERVING while the lease store is unreachable.
const (
	HealthAnimation = "whirl.v1.AnimationService"
	HealthAdmin     = "whirl.v1.LeaseAdminService"
	HealthRender    = "whirl.render"
	HealthLeases    = "whirl.leases"
)

// FrameEncoder is the encoder as RenderAnimation uses it.
type FrameEncoder interface {
	WriteFrame(yuv []byte) error
	Close() error
}

// StartEncoder starts one encoder per render.
type StartEncoder func(ctx context.Context, o encode.Options, sink func(encode.Segment) error) (FrameEncoder, error)

// Config wires the server's dependencies.
type Config struct {
	Leases Leases
	// AdminToken guards LeaseAdminService; empty refuses every admin call.
	AdminToken string
	Logger     *slog.Logger
	// Encode holds the ffmpeg settings; size, rate and length are per request.
	Encode encode.Options
	// EncoderErr, if set, is why ffmpeg cannot be used: renders are refused
	// with UNAVAILABLE and HealthRender reports NOT_SERVING.
	EncoderErr error
	// StartEncoder overrides how encoders start (tests); nil = encode.Start,
	// or the spare when SpareEncoder is set.
	StartEncoder StartEncoder
	// SpareEncoder keeps one ffmpeg loaded for the default video size
	// (720×720 at 30 fps), so such a render skips ffmpeg's start-up (~0.15 s)
	// on its way to the first fragment. Shutdown stops it.
	SpareEncoder bool
	// RenderSlots bounds concurrent animations (default: number of CPUs).
	RenderSlots int
	// RenderWorkers is goroutines drawing frames per animation (default: CPUs).
	RenderWorkers int
	// MaxPixelFrames bounds width×height×frames (default DefaultMaxPixelFrames).
	MaxPixelFrames int64
	// Observer receives lease-wait and render figures (nil: none).
	Observer Observer
	// GRPCMetrics, if set, counts and times every call.
	GRPCMetrics *grpcprom.ServerMetrics
	// AcquireRate limits AcquireLease calls per client IP per second, with
	// bursts of AcquireBurst; 0 means no limit.
	AcquireRate  float64
	AcquireBurst int
}

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

// Server is a ready-to-serve gRPC server with whirl's services, health and
// reflection registered.
type Server struct {
	GRPC      *grpc.Server
	Health    *health.Server
	logger    *slog.Logger
	animation *Animation
}

// RenderStats reports animations rendering and waiting for a slot.
func (s *Server) RenderStats() (running, queued int) { return s.animation.renders.Stats() }

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
		template.Width, template.Height, template.FPS = defaultSide, defaultSide, defaultFPS
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

var _ whirlv1.AnimationServiceServer = (*Animation)(nil)

// NewServer builds the gRPC server: the request id outermost so every status,
// a recovered panic's too, carries it; then recovery so a panic anywhere
// becomes INTERNAL for that call only, then per-call logging, then admin
// authentication for LeaseAdminService alone. Extra options (TLS credentials,
// say) are appended.
func NewServer(cfg Config, extra ...grpc.ServerOption) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithFieldsFromContext(logFields)}
	isAdmin := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service == whirlv1.LeaseAdminService_ServiceDesc.ServiceName
	})
	authFn := adminAuth(cfg.AdminToken)

	unary := []grpc.UnaryServerInterceptor{
		requestIDUnary,
		recovery.UnaryServerInterceptor(recoverOpt),
		logging.UnaryServerInterceptor(slogAdapter(logger), logOpts...),
	}
	stream := []grpc.StreamServerInterceptor{
		requestIDStream,
		recovery.StreamServerInterceptor(recoverOpt),
		logging.StreamServerInterceptor(slogAdapter(logger), logOpts...),
	}
	if cfg.GRPCMetrics != nil {
		unary = append(unary, cfg.GRPCMetrics.UnaryServerInterceptor())
		stream = append(stream, cfg.GRPCMetrics.StreamServerInterceptor())
	}
	if cfg.AcquireRate > 0 {
		isAcquire := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
			return c.FullMethod() == whirlv1.AnimationService_AcquireLease_FullMethodName
		})
		limiter := newPeerLimiter(cfg.AcquireRate, max(cfg.AcquireBurst, 1))
		unary = append(unary, selector.UnaryServerInterceptor(acquireRateLimit(limiter), isAcquire))
	}
	unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authFn), isAdmin))
	stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(authFn), isAdmin))
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Requests are small; a 1 MiB cap stops oversized messages at the door.
		grpc.MaxRecvMsgSize(1 << 20),
		grpc.MaxConcurrentStreams(64),
		// Detect dead peers so their streams (and render slots) are freed.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	gs := grpc.NewServer(append(opts, extra...)...)

	anim := newAnimation(cfg, logger)
	whirlv1.RegisterAnimationServiceServer(gs, anim)
	whirlv1.RegisterLeaseAdminServiceServer(gs, &Admin{leases: cfg.Leases})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	if cfg.GRPCMetrics != nil {
		cfg.GRPCMetrics.InitializeMetrics(gs)
	}
	for _, name := range []string{"", HealthAnimation, HealthAdmin, HealthLeases, HealthRender} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if cfg.EncoderErr != nil {
		hs.SetServingStatus(HealthRender, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return &Server{GRPC: gs, Health: hs, logger: logger, animation: anim}
}

// Shutdown reports NOT_SERVING at once, lets running calls finish for up to
// grace, then cuts what is left. GracefulStop alone would wait forever for a
// stream whose client stopped reading.
func (s *Server) Shutdown(grace time.Duration) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("grace period over; closing remaining calls", "grace", grace)
		s.GRPC.Stop()
		<-done
	}
	if s.animation.spare != nil {
		s.animation.spare.Close()
	}
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
