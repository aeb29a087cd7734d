package service

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

// leaseHealthEvery is how often Serve asks a lease store that can tell
// whether it is reachable.
const leaseHealthEvery = time.Second

// healthChecker is a lease store that can tell whether it is reachable.
type healthChecker interface {
	Healthy(ctx context.Context) error
}

// newHealth returns the health service with every entry SERVING, except
// HealthRender when encoderErr says ffmpeg is unusable.
func newHealth(encoderErr error) *health.Server {
	hs := health.NewServer()
	for _, name := range []string{"", HealthAnimation, HealthAdmin, HealthLeases, HealthRender} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if encoderErr != nil {
		hs.SetServingStatus(HealthRender, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return hs
}

// watchLeaseHealth keeps the HealthLeases entry in step with healthy until
// ctx ends. Lease RPCs fail UNAVAILABLE on their own while the store is
// down; this tells load balancers and operators too.
func watchLeaseHealth(ctx context.Context, hs *health.Server, healthy func(context.Context) error, every time.Duration, logger *slog.Logger) {
	last := healthpb.HealthCheckResponse_SERVING
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := healthpb.HealthCheckResponse_SERVING
		if err := healthy(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			now = healthpb.HealthCheckResponse_NOT_SERVING
			if now != last {
				logger.ErrorContext(ctx, "lease store unreachable", "err", err)
			}
		} else if now != last {
			logger.InfoContext(ctx, "lease store reachable again")
		}
		if now != last {
			hs.SetServingStatus(HealthLeases, now)
			last = now
		}
	}
}
