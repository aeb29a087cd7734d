package service

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// draining refuses new work once shutdown has begun, and tells shutdown
// when the work under way has ended. Calls that free or keep capacity
// (ReleaseLease, RenewLease, the admin calls) and health checks are still
// served until the server stops: a lease released during a shutdown must
// not stay held (on etcd, cluster-wide) for its TTL. grpc-go's graceful
// stop refuses every new call, so it begins only once no work call is left
// (idle) or the grace ends.
type draining struct {
	mu   sync.Mutex
	on   bool
	work int           // work calls under way
	idle chan struct{} // closed when on and work reaches 0
}

// keepsServing reports whether fullMethod is served while draining.
func keepsServing(fullMethod string) bool {
	switch fullMethod {
	case whirlv1.AnimationService_ReleaseLease_FullMethodName, whirlv1.AnimationService_RenewLease_FullMethodName:
		return true
	}
	return strings.HasPrefix(fullMethod, "/"+healthpb.Health_ServiceDesc.ServiceName+"/") ||
		strings.HasPrefix(fullMethod, "/"+whirlv1.LeaseAdminService_ServiceDesc.ServiceName+"/")
}

// enter admits a call, counting work calls; leave must follow an admitted
// call.
func (d *draining) enter(fullMethod string) (admitted, work bool) {
	if keepsServing(fullMethod) {
		return true, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.on {
		return false, false
	}
	d.work++
	return true, true
}

func (d *draining) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.work--
	if d.on && d.work == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// begin starts refusing new work; the channel closes once none is under way.
func (d *draining) begin() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.on = true
	idle := make(chan struct{})
	if d.work == 0 {
		close(idle)
	} else {
		d.idle = idle
	}
	return idle
}

var errDraining = newStatus(codes.Unavailable, whirlv1.ErrorReason_SHUTTING_DOWN, "server is shutting down; retry (another replica will answer)")

func (d *draining) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ok, work := d.enter(info.FullMethod)
	if !ok {
		return nil, errDraining
	}
	if work {
		defer d.leave()
	}
	return handler(ctx, req)
}

func (d *draining) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ok, work := d.enter(info.FullMethod)
	if !ok {
		return errDraining
	}
	if work {
		defer d.leave()
	}
	return handler(srv, ss)
}
