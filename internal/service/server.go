package service

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/queue"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Config wires the server's dependencies.
type Config struct {
	// Leases is the lease registry. If it also has a
	// Healthy(context.Context) error method (the etcd store does), Serve
	// polls it and keeps the HealthLeases entry in step.
	Leases Leases
	// AdminToken guards LeaseAdminService; empty refuses every admin call.
	AdminToken string
	// AdminTokenFunc, if set, is asked for the admin token on every admin
	// call instead of AdminToken, so the token can change while the server
	// runs (re-read from a file on SIGHUP).
	AdminTokenFunc func() string
	Logger         *slog.Logger
	// Encode holds the ffmpeg settings; size, rate and length are per request.
	Encode encode.Options
	// EncoderErr, if set, is why ffmpeg cannot be used: renders are refused
	// with UNAVAILABLE and HealthRender reports NOT_SERVING.
	EncoderErr error
	// StartEncoder overrides how encoders start (tests); nil = encode.Start,
	// or the spare when SpareEncoder is set.
	StartEncoder StartEncoder
	// SpareEncoder keeps ffmpeg processes loaded for the default video size
	// (720×720 at 30 fps), encode.SpareSize(EncodeParallelism) of them, so
	// each span encoder of such a render skips ffmpeg's start-up
	// (~0.1 s). Serve stops them when it returns.
	SpareEncoder bool
	// EncodeParallelism bounds the span encoders (ffmpeg processes)
	// running at once across all renders (default: GOMAXPROCS; 1 encodes
	// one span at a time). A render uses as many as are free.
	EncodeParallelism int
	// RenderSlots bounds concurrent animations (default: GOMAXPROCS).
	RenderSlots int
	// RenderWorkers is goroutines drawing frames per animation (default:
	// GOMAXPROCS), shared out among its spans that run at once
	// (encode.SpanWorkers).
	RenderWorkers int
	// MaxPixelFrames bounds width×height×frames (default DefaultMaxPixelFrames).
	MaxPixelFrames int64
	// FFmpegVersion names the ffmpeg build in video ids: encode.Version's
	// answer for Encode.FFmpegPath. Servers sharing videos (a cache
	// directory, resumed streams) must only agree on it when their builds
	// give the same bytes.
	FFmpegVersion string
	// Cache holds finished videos; nil means none (renders still share
	// identical videos in flight).
	Cache *cache.Store
	// Observer receives lease-wait and render figures (nil: none).
	Observer Observer
	// GRPCMetrics, if set, counts and times every call.
	GRPCMetrics *grpcprom.ServerMetrics
	// AcquireRate limits AcquireLease calls per client per second, with
	// bursts of AcquireBurst; 0 means no limit.
	AcquireRate  float64
	AcquireBurst int
	// StillLimits and CurveLimits bound each client's RenderStill and
	// GenerateCurve calls (zero: no limit).
	StillLimits, CurveLimits ClientLimits
	// VideoLimits bound each client's GetVideo calls (zero: no limit): a
	// finished video costs a disk or object-store read, not a render.
	VideoLimits ClientLimits
	// ClientHeader, if set, names the request header whose value is the
	// client for the per-client limits (a trusted proxy sets it); empty
	// keys clients on their IP address.
	ClientHeader string
	// StillSlots bounds stills drawn at once (default DefaultStillSlots);
	// StillQueue bounds the line waiting for them (zero: unbounded).
	StillSlots int
	StillQueue queue.Limits
	// StillNice is the niceness above the server's that stills are drawn
	// at (Linux; 0: the server's own).
	StillNice int
	// RenderMaxWait is how long an animation may wait for a render slot
	// before it is refused (0: as long as its client waits).
	RenderMaxWait time.Duration
	// ShutdownGrace is how long running calls may go on once Serve's context
	// ends before they are cut; 0 cuts them at once.
	ShutdownGrace time.Duration
	// OrphanGrace is how long a render goes on after its last reader left,
	// while its lease lives, so a resuming client joins it (0: none; the
	// server's flag defaults to DefaultOrphanGrace).
	OrphanGrace time.Duration
	// AcquireInFlight caps each client's AcquireLease calls under way,
	// waiting ones included (0: no cap).
	AcquireInFlight int
	// MaxConnectionAge closes each client connection this long after it
	// opened (GOAWAY, then the client reconnects, possibly to a replica
	// added since); calls still running then have MaxConnectionAgeGrace
	// more to finish. 0 keeps connections open for ever.
	MaxConnectionAge, MaxConnectionAgeGrace time.Duration
	// DisableReflection leaves the gRPC reflection service out.
	DisableReflection bool
	// TracerProvider, if set, traces every call (a span per call, its
	// parent read from the caller's W3C traceparent by Propagator) and the
	// work inside (spans.go). nil traces nothing.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Server is whirl's gRPC server with its services, health and reflection
// registered. Serve runs it.
type Server struct {
	grpc      *grpc.Server
	health    *health.Server
	logger    *slog.Logger
	animation *Animation
	// leaseHealth is Config.Leases' Healthy method, or nil if it has none.
	leaseHealth func(context.Context) error
	grace       time.Duration
	drainFirst  []func(ctx context.Context)
	draining    *draining
	// limits are the per-client limits (nil: none), which front ends
	// other than gRPC apply through AdmitVideoRead; clientHeader is
	// Config.ClientHeader.
	limits       *clientLimits
	clientHeader string
}

// RenderStats reports animations rendering and waiting for a slot.
func (s *Server) RenderStats() (running, queued int) { return s.animation.renders.Stats() }

// DrainFirst registers drain to run when Serve shuts down, after health
// turns NOT_SERVING and before the gRPC server's graceful stop, with a
// context that ends when the grace does. A front end carrying calls to
// GRPCServer through its ServeHTTP (an HTTP transcoder) needs this:
// grpc-go's graceful stop closes such calls at once instead of letting
// them finish, so the front end stops taking calls and waits for its own
// to end first. Call it before Serve.
func (s *Server) DrainFirst(drain func(ctx context.Context)) {
	s.drainFirst = append(s.drainFirst, drain)
}

// GRPCServer returns the grpc.Server every whirl service is registered on,
// for front ends that carry other protocols to the same handlers (an HTTP
// transcoder such as vanguardgrpc.NewTranscoder serving Connect and
// gRPC-Web). Such a front end gets the same interceptors, so the same
// validation, authentication, limits and logs. Callers must not register
// services on it, nor Serve or Stop it: Serve owns its life, and when Serve
// returns, calls that reached it through another front end have ended too.
func (s *Server) GRPCServer() *grpc.Server { return s.grpc }

// NewServer builds the gRPC server: the request id outermost so every status,
// a recovered panic's too, carries it; then withReason, so every status
// carries an ErrorInfo; then recovery so a panic anywhere
// becomes INTERNAL for that call only, then per-call logging, then the refusal of new calls once shutdown has
// begun, then limits,
// then admin authentication for LeaseAdminService alone. Extra options (TLS
// credentials, say) are appended.
func NewServer(cfg Config, extra ...grpc.ServerOption) *Server {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	drain := &draining{}
	limits := newClientLimits(cfg)
	unary, stream := interceptorChains(cfg, logger, drain, limits)
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Requests are small; a 1 MiB cap stops oversized messages at the door.
		grpc.MaxRecvMsgSize(1 << 20),
		grpc.MaxConcurrentStreams(64),
		// Detect dead peers so their streams (and render slots) are freed.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second,
			MaxConnectionAge: cfg.MaxConnectionAge, MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Through the interceptors like any call, so its status has a reason.
		grpc.UnknownServiceHandler(unknownMethod),
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(cfg.TracerProvider),
			otelgrpc.WithPropagators(cmp.Or[propagation.TextMapPropagator](cfg.Propagator, propagation.TraceContext{})),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's
		)))
	}
	gs := grpc.NewServer(append(opts, extra...)...)

	anim := newAnimation(cfg, logger)
	whirlv1.RegisterAnimationServiceServer(gs, anim)
	whirlv1.RegisterLeaseAdminServiceServer(gs, &Admin{leases: cfg.Leases})
	hs := newHealth(cfg.EncoderErr)
	healthpb.RegisterHealthServer(gs, hs)
	if !cfg.DisableReflection {
		reflection.Register(gs)
	}
	if cfg.GRPCMetrics != nil {
		cfg.GRPCMetrics.InitializeMetrics(gs)
	}
	s := &Server{grpc: gs, health: hs, logger: logger, animation: anim, grace: cfg.ShutdownGrace, draining: drain,
		limits: limits, clientHeader: cfg.ClientHeader}
	if h, ok := cfg.Leases.(healthChecker); ok {
		s.leaseHealth = h.Healthy
	}
	return s
}

// interceptorChains returns the unary and stream interceptors in the order
// NewServer documents.
func interceptorChains(cfg Config, logger *slog.Logger, drain *draining, limits *clientLimits) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return internalError("internal error")
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithFieldsFromContext(logFields)}
	isAdmin := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service == whirlv1.LeaseAdminService_ServiceDesc.ServiceName
	})
	token := cfg.AdminTokenFunc
	if token == nil {
		token = func() string { return cfg.AdminToken }
	}
	authFn := adminAuth(token)

	unary := []grpc.UnaryServerInterceptor{
		requestIDUnary,
		reasonUnary,
		recovery.UnaryServerInterceptor(recoverOpt),
		logging.UnaryServerInterceptor(slogAdapter(logger), logOpts...),
		drain.unary,
	}
	stream := []grpc.StreamServerInterceptor{
		requestIDStream,
		reasonStream,
		recovery.StreamServerInterceptor(recoverOpt),
		logging.StreamServerInterceptor(slogAdapter(logger), logOpts...),
		drain.stream,
	}
	if cfg.GRPCMetrics != nil {
		unary = append(unary, cfg.GRPCMetrics.UnaryServerInterceptor())
		stream = append(stream, cfg.GRPCMetrics.StreamServerInterceptor())
	}
	if limits != nil {
		unary = append(unary, limits.unary)
		stream = append(stream, limits.stream)
	}
	unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authFn), isAdmin))
	stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(authFn), isAdmin))
	return unary, stream
}

// Serve accepts calls on lis until ctx ends or lis fails, then shuts down:
// health reports NOT_SERVING at once, running calls may finish for up to
// Config.ShutdownGrace, and what is left is cut (GracefulStop alone would
// wait forever for a stream whose client stopped reading). It returns once
// every call and the spare encoder have stopped: nil after ctx ended, or the
// listener's error. A Server serves once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if s.leaseHealth != nil {
		go watchLeaseHealth(watchCtx, s.health, s.leaseHealth, leaseHealthEvery, s.logger)
	}
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	var err error
	select {
	case err = <-served:
		// The listener failed: nothing new arrives, so stop what is running.
		s.stop(0)
	case <-ctx.Done():
		s.logger.Info("shutting down", "grace", s.grace)
		s.stop(s.grace)
		<-served
	}
	if s.animation.spare != nil {
		s.animation.spare.Close()
	}
	return err
}

// stop reports NOT_SERVING, lets running calls finish for up to grace, then
// cuts what is left.
func (s *Server) stop(grace time.Duration) {
	s.health.Shutdown()
	idle := s.draining.begin()
	deadline := time.Now().Add(grace)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for _, drain := range s.drainFirst {
		wg.Go(func() { drain(ctx) })
	}
	wg.Wait()
	// Lease calls go on being served until the work calls have ended.
	select {
	case <-idle:
	case <-ctx.Done():
	}
	// Renders kept for a resume have no reader left to wait for.
	s.animation.orphans.close()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.logger.Warn("grace period over; closing remaining calls", "grace", grace)
		s.grpc.Stop()
		<-done
	}
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
