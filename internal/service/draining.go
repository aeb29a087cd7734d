package service

import (
	"context"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// draining refuses new calls once shutdown has begun. grpc-go's graceful
// stop does this by itself, but a front end registered with DrainFirst
// keeps the server running while it drains, and a call that arrives then
// must not start work the grace may cut. Health calls still pass, so
// probes see NOT_SERVING rather than an error.
type draining struct{ on atomic.Bool }

func (d *draining) refuses(fullMethod string) bool {
	return d.on.Load() && !strings.HasPrefix(fullMethod, "/"+healthpb.Health_ServiceDesc.ServiceName+"/")
}

var errDraining = newStatus(codes.Unavailable, whirlv1.ErrorReason_SHUTTING_DOWN, "server is shutting down; retry (another replica will answer)")

func (d *draining) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if d.refuses(info.FullMethod) {
		return nil, errDraining
	}
	return handler(ctx, req)
}

func (d *draining) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if d.refuses(info.FullMethod) {
		return errDraining
	}
	return handler(srv, ss)
}
